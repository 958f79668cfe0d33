"""Hostile DLMS over the TCP wrapper, HDLC over TCP and HDLC on a serial pty.

An adversary on a meter's port (IEC 62056-47 wrapper, IEC 62056-46 HDLC) tries every
association (public 16, meter reader 32 with LLS, utility 48 with HLS-GMAC and suite 0
ciphering) before associating and after: requests from :mod:`.hostile` plain and
mutated; AARQs with wrong passwords, keys, counters and titles; in the ciphered
association replays of requests the meter accepted, lower invocation counters, and
fresh requests with a mutated GCM tag, counter, security control, system title
(general-glo-ciphering) or length; plain requests where ciphering is required; now and
then a broken wrapper header or a raw broken HDLC frame. Each input is judged:

- *unauthorised*: a SET or ACTION that succeeded in the public or reader association,
  a GET that succeeded on an object the public client may not see, data before any
  association, an AARQ with a wrong LLS password accepted, a key of the meter in a
  plain response;
- *replay*: a ciphered answer to a replayed, lower-counter or forged request;
- *crash, hang, traceback*: checked on the process every second (:mod:`.subject`).

The meter runs with ``dlms.lockout_minutes = 0`` so that its own lockout does not turn
the campaign into a test of the lockout (issue 14 item 5 is a part of its own).
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

from bijli.dlms import apdu
from bijli.dlms.acse import AARE, AssociationResult
from bijli.dlms.client import Client, ClientSession, ClientSettings
from bijli.dlms.errors import DlmsError
from bijli.dlms.obis import Obis
from bijli.dlms.protection import PROTECTED_TAGS
from bijli.firmware.cosem.catalogue import PUBLIC_ASSOCIATION, PUBLIC_OBJECTS
from bijli.hal.errors import HalError
from bijli.tools.node.client_transports import WrapperTransport, open_client_transport
from bijli.tools.soak.hostile import Corpus, aarq, mutate, references_from
from bijli.tools.soak.report import SoakRow
from bijli.tools.soak.subject import SoakMeter

CONFIG = "[dlms]\nlockout_minutes = 0\n"
LINKS = ("wrapper", "hdlc", "serial")
SAPS = (16, 32, 48)
EPISODE = {"wrapper": 400, "hdlc": 120, "serial": 40}  # inputs per connection
# a forged or replayed ciphered APDU costs the meter a logged security event (a commit
# each, about 10 ms here): the utility association's turns are shorter, so the time
# goes to every association rather than mostly to that one
CIPHERED_EPISODE = {"wrapper": 50, "hdlc": 20, "serial": 10}
TIMEOUT = {"wrapper": 0.5, "hdlc": 1.5, "serial": 2.0}  # a silent answer is not a failure; the probe decides
_PUBLIC = {o if isinstance(o, Obis) else Obis.parse(o) for o in (*PUBLIC_OBJECTS, PUBLIC_ASSOCIATION)}
_LOST = (OSError, HalError, DlmsError, TimeoutError, ConnectionError)


def _success(response: bytes) -> list[int] | bool:
    """Whether a plain response reports a SET or ACTION done (True), or which of the
    attributes a GET asked for it answered with data (their positions)."""
    try:
        resp = apdu.decode(response)
    except DlmsError:
        return False
    if isinstance(resp, apdu.SetResponseNormal) or isinstance(resp, apdu.SetResponseLastDatablock):
        return resp.result == apdu.DataAccessResult.SUCCESS
    if isinstance(resp, apdu.SetResponseWithList):
        return any(r == apdu.DataAccessResult.SUCCESS for r in resp.results)
    if isinstance(resp, apdu.ActionResponseNormal):
        return resp.result == apdu.ActionResult.SUCCESS
    if isinstance(resp, apdu.ActionResponseWithList):
        return any(r == apdu.ActionResult.SUCCESS for r, _ in resp.results)
    if isinstance(resp, apdu.ActionResponseWithPblock):
        return True
    if isinstance(resp, apdu.GetResponseNormal):
        return [0] if not isinstance(resp.result, apdu.DataAccessResult) else []
    if isinstance(resp, apdu.GetResponseWithDatablock):
        return [0] if not isinstance(resp.raw_data, apdu.DataAccessResult) else []
    if isinstance(resp, apdu.GetResponseWithList):
        return [i for i, r in enumerate(resp.results) if not isinstance(r, apdu.DataAccessResult)]
    return False


def _asked(request: bytes) -> list[apdu.AttributeDescriptor]:
    try:
        req = apdu.decode(request)
    except DlmsError:
        return []
    if isinstance(req, apdu.GetRequestNormal):
        return [req.attribute]
    if isinstance(req, apdu.GetRequestWithList):
        return [d for d, _ in req.attributes]
    return []


class Campaign:
    """The DLMS fuzz of one link against one meter."""

    def __init__(self, link: str, row: SoakRow, rng: random.Random, work: Path, seed: int):
        self.link, self.row, self.rng, self.seed = link, row, rng, seed
        self.meter = SoakMeter(work / f"dlms-{link}", CONFIG, hdlc=link == "hdlc", serial=link == "serial",
                               optical=False, console=False)
        m = self.meter.meter
        self.keys = m.keys
        with m.client(32) as reader:
            self.corpus = Corpus(references_from(reader.object_list()))
        self.secrets = [bytes.fromhex(self.keys[k]) for k in ("encryption_key", "authentication_key")]
        self.secrets.append(self.keys["reader_password"].encode("latin-1"))
        self.accepted: list[bytes] = []  # ciphered requests the meter answered: replay material
        self.high_ic = 0  # the highest invocation counter the meter accepted from us

    # --- links ----------------------------------------------------------------------
    def _open(self, sap: int):
        ep = self.meter.meter.endpoints
        t = TIMEOUT[self.link]
        if self.link == "wrapper":
            from bijli.hal.tcp_line import SocketLine, parse_endpoint
            host, port = parse_endpoint(ep.wrapper.removeprefix("tcp://"))
            return WrapperTransport(SocketLine(host, port, 5.0), sap, 1, t)
        if self.link == "hdlc":
            return open_client_transport(ep.hdlc, sap, hdlc_over_tcp=True, timeout=max(t, 5.0))
        return open_client_transport("serial://" + ep.serial, sap, timeout=max(t, 5.0))

    def _settings(self, sap: int, **kw) -> ClientSettings:
        keys = self.keys
        kw.setdefault("password", keys["reader_password"].encode("latin-1"))
        kw.setdefault("encryption_key", bytes.fromhex(keys["encryption_key"]))
        kw.setdefault("authentication_key", bytes.fromhex(keys["authentication_key"]))
        return ClientSettings.for_association(sap, **kw)

    def _utility_ic(self) -> int:
        with self.meter.meter.client(16) as public:
            return public.get(1, "0.0.43.1.3.255", 2).to_python()

    # --- one connection -----------------------------------------------------------------
    def episode(self, sap: int, after: bool, budget: int) -> int:
        """Up to ``budget`` hostile inputs on one connection; how many were sent. On the
        wrapper the public and reader associations get their inputs in pipelined batches
        (a wrapper server answers each APDU of a chunk in order, one answer each)."""
        ic = self._utility_ic() if sap == 48 and after else 0
        try:
            transport = self._open(sap)
        except _LOST as exc:
            self.meter.check(self.row, f"{self.link} connect for SAP {sap}: {exc}")
            return 0
        client = None
        sent = 0
        batch = 32 if self.link == "wrapper" and sap != 48 else 1
        try:
            if after:
                client = Client(transport, self._settings(sap, invocation_counter=ic))
                client.associate()
                self.high_ic = client.session.settings.invocation_counter - 1
            if self.link != "wrapper":
                transport.timeout = TIMEOUT[self.link]
            associated = after
            while sent < budget:
                inputs = [self._input(sap, after, client) for _ in range(min(batch, budget - sent))]
                frame = next((i for i, (kind, _, _) in enumerate(inputs) if kind == "frame"), None)
                if frame is not None:
                    inputs, frame = inputs[:frame], inputs[frame]
                responses = self._exchange(transport, [wire for _, wire, _ in inputs])
                for (kind, wire, valid), response in zip(inputs, responses):
                    if not valid:
                        self.row.inputs += 1
                        sent += 1
                    where = (f"seed {self.seed} {self.link} input {self.row.inputs} SAP {sap} "
                             f"{'after' if after else 'before'} association, {kind}: {wire[:48].hex()}")
                    associated = self._judge(sap, associated, kind, wire, response, where, client)
                    if kind == "fresh" and response[:1] and response[0] in PROTECTED_TAGS:
                        self.accepted.append(wire)
                        del self.accepted[:-64]
                        self.high_ic = max(self.high_ic, int.from_bytes(wire[3:7], "big") if wire[1] < 0x80 else 0)
                if len(responses) < len(inputs):  # the meter closed the connection
                    lost = inputs[len(responses)]
                    if not lost[2]:
                        self.row.inputs += 1
                        sent += 1
                    return sent
                if frame is not None:
                    self._raw_frame(transport, frame[1])
                    self.row.inputs += 1
                    return sent + 1
        except _LOST as exc:
            if after and sent == 0:
                self.meter.check(self.row, f"{self.link} association {sap} refused: {exc}")
        finally:
            try:
                transport.close()
            except _LOST:
                pass
        return sent

    def _exchange(self, transport, wires: list[bytes]) -> list[bytes]:
        """The answers to ``wires`` in order (b"" for one that got none in time); shorter
        when the connection closed."""
        out: list[bytes] = []
        if not wires:
            return out
        try:
            if len(wires) == 1:
                try:
                    return [transport.request(wires[0])]
                except TimeoutError:
                    return [b""]
            transport.line.send(b"".join(transport.conn.send(w) for w in wires))
            for _ in wires:
                try:
                    out.append(transport.receive())
                except TimeoutError:
                    out.append(b"")
                    break  # the order is lost: the rest of this batch is not judged
        except _LOST:
            pass
        return out

    def _raw_frame(self, transport, wire: bytes) -> None:
        try:
            transport.line.send(wire)
            transport.line.recv(0.05)
        except _LOST:
            pass

    # --- inputs ---------------------------------------------------------------------
    def _input(self, sap: int, after: bool, client: Client | None) -> tuple[str, bytes, bool]:
        """(kind, bytes, valid): one input; valid ones are what a real client sends
        (material for replays), not counted as hostile."""
        rng, corpus = self.rng, self.corpus
        r = rng.random()
        if r < (0.005 if after else 0.02):
            return "frame", self._broken_frame(rng, sap, corpus.any(rng)), False
        if not after or client is None:
            # an AARQ that fails authentication is logged as a security event (a commit):
            # a few percent of the inputs are enough to reach every ACSE path
            if r < 0.07:
                return "aarq", mutate(rng, aarq(rng, sap, self.keys, right=rng.random() < 0.3)), False
            if r < 0.09:
                return "wrong-aarq", aarq(rng, sap, self.keys, right=False), False
            if r < 0.11:
                return "rlrq", mutate(rng, bytes.fromhex("6200")) if rng.random() < 0.5 else bytes.fromhex("6200"), False
            plain = corpus.any(rng)
            return ("plain", plain, False) if r < 0.6 else ("mutated", mutate(rng, plain, corpus.any(rng)), False)
        if sap != 48:
            if r < 0.45:
                plain = corpus.any(rng)
                return "plain", plain, plain[0] == 0xC0  # a GET is what this association is for
            if r < 0.47:
                return "aarq", mutate(rng, aarq(rng, sap, self.keys, right=False)), False
            return "mutated", mutate(rng, corpus.any(rng), corpus.any(rng)), False
        session = client.session
        if r < 0.20 or not self.accepted:
            return "fresh", session.protect(corpus.get(rng)), True
        if r < 0.32:
            return "replay", rng.choice(self.accepted), False
        if r < 0.42:
            saved = session.settings.invocation_counter
            session.settings.invocation_counter = rng.randrange(max(1, self.high_ic + 1))
            wire = session.protect(corpus.get(rng))
            session.settings.invocation_counter = saved
            return "lower-counter", wire, False
        wire = bytearray(session.protect(corpus.get(rng)))
        head = 2 if wire[1] < 0x80 else 2 + (wire[1] & 0x7F)
        if r < 0.52:
            wire[rng.randrange(len(wire) - 12, len(wire))] ^= 1 << rng.randrange(8)
            return "tag", bytes(wire), False
        if r < 0.60:
            wire[rng.randrange(head + 1, head + 5)] ^= 1 << rng.randrange(8)
            return "counter", bytes(wire), False
        if r < 0.64:
            wire[head] = rng.choice((0x00, 0x10, 0x20, 0x30 ^ (1 << rng.randrange(8)), 0xB0))
            return "control", bytes(wire), False
        if r < 0.70:
            wire[1:head] = bytes((rng.choice((0x00, 0x01, 0x7F, 0x81, 0x82, 0xFF)),))
            return "length", bytes(wire), False
        if r < 0.76:
            return "title", self._general_glo(session, rng), False
        if r < 0.84:
            plain = corpus.any(rng)
            return "unciphered", plain, False
        return "mutated", mutate(rng, bytes(wire), corpus.any(rng)), False

    def _general_glo(self, session: ClientSession, rng: random.Random) -> bytes:
        """A general-glo-ciphering request whose system title is not the one associated."""
        settings = dataclasses.replace(session.settings, general_ciphering=True,
                                       system_title=bytes(b ^ (rng.getrandbits(8) or 1) if i == rng.randrange(8) else b
                                                          for i, b in enumerate(session.settings.system_title)))
        other = ClientSession(settings, server_system_title=session.server_system_title)
        wire = other.protect(self.corpus.get(rng))
        session.settings.invocation_counter = settings.invocation_counter
        if wire[2:10] == session.settings.system_title:  # the flip missed: force a difference
            wire = wire[:2] + bytes((wire[2] ^ 0xFF,)) + wire[3:]
        return wire

    def _broken_frame(self, rng: random.Random, sap: int, payload: bytes) -> bytes:
        if self.link == "wrapper":
            head = bytes((0, 1, 0, sap, 0, 1)) + len(payload).to_bytes(2, "big")
            return mutate(rng, head + payload)[: rng.choice((3, 8, 9, 4096))] if rng.random() < 0.5 \
                else mutate(rng, head) + payload
        raw = bytes((0x7E, 0xA0, 0x10 + len(payload) % 0x7F)) + payload[:60] + b"\x7E"
        return mutate(rng, raw) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 300))

    # --- judging --------------------------------------------------------------------
    def _judge(self, sap: int, associated: bool, kind: str, wire: bytes, response: bytes, where: str,
               client: Client | None) -> bool:
        row = self.row
        if not response:
            return associated
        tag = response[0]
        if tag == 0x61:  # AARE
            try:
                aare = AARE.decode(response)
            except DlmsError:
                return associated
            if aare.result == AssociationResult.ACCEPTED:
                if kind == "wrong-aarq" and sap == 32:
                    row.fail("unauthorised", f"{where}: AARQ with a wrong LLS password accepted")
                return sap != 48  # a utility association still needs its HLS reply
            return False
        if tag == 0x63:  # RLRE
            return False
        if sap == 48 and client is not None:
            if tag in PROTECTED_TAGS and kind not in ("fresh",):
                kind_of = "replays" if kind in ("replay", "lower-counter", "tag", "counter", "title", "control") \
                    else "wrong"
                row.fail(kind_of, f"{where}: answered ciphered ({response[:16].hex()})")
            elif tag not in PROTECTED_TAGS and tag != apdu.Tag.EXCEPTION_RESPONSE and _success(response):
                row.fail("unauthorised", f"{where}: plain answer {response[:16].hex()} in a ciphered association")
            return associated
        if any(secret in response for secret in self.secrets):
            row.fail("unauthorised", f"{where}: a key or password of the meter in the answer")
        done = _success(response)
        if done is True:
            row.fail("unauthorised", f"{where}: SET or ACTION done: {response[:16].hex()}")
        elif done:
            asked = _asked(wire)
            if not associated:
                row.fail("unauthorised", f"{where}: data before association: {response[:16].hex()}")
            elif sap == 16:
                hidden = [asked[i] for i in done if i < len(asked) and asked[i].instance not in _PUBLIC]
                if hidden:
                    row.fail("unauthorised", f"{where}: the public client read {hidden[0]}: {response[:16].hex()}")
        return associated

    # --- the part ---------------------------------------------------------------------
    def run(self, deadline: float, target: int) -> None:
        checked = time.monotonic()
        plan = [(sap, after) for sap in SAPS for after in (False, True)]
        turn = 0
        while self.row.inputs < target and time.monotonic() < deadline:
            sap, after = plan[turn % len(plan)]
            turn += 1
            size = CIPHERED_EPISODE[self.link] if sap == 48 and after else EPISODE[self.link]
            self.episode(sap, after, min(size, target - self.row.inputs))
            if time.monotonic() - checked > 1.0:
                self.meter.check(self.row, f"seed {self.seed} {self.link} after input {self.row.inputs}")
                checked = time.monotonic()
        self.meter.check(self.row, f"seed {self.seed} {self.link} at the end")

    def close(self) -> None:
        self.meter.check(self.row, f"{self.link} before stop", probe=False)
        self.meter.stop()


def run(link: str, row: SoakRow, seed: int, work: Path, deadline: float) -> SoakRow:
    rng = random.Random(f"dlms-{link}-{seed}")
    campaign = Campaign(link, row, rng, work, seed)
    try:
        campaign.run(deadline, row.target)
    finally:
        campaign.close()
    return row
