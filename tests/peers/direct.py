"""An in-process client transport: each request APDU straight into ``Server.handle``.

One transport for every test that drives our own client against a server in the same
process (no sockets): it queues every APDU a request produces, so a GBT window of
several blocks is read one ``receive`` at a time, as over a real link.
"""


class Direct:
    def __init__(self, server, sap, now=lambda: 0.0):
        self.server, self.session, self.now = server, server.new_session(sap), now
        self.sent = []
        self.answers = []
        self.queue = []

    def request(self, data):
        self.sent.append(data)
        self.queue.extend(self.server.handle(self.session, data, self.now()))
        return self.receive()

    def receive(self):
        answer = self.queue.pop(0)
        self.answers.append(answer)
        return answer

    def close(self):
        pass
