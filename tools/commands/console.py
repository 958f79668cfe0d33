"""`bijli console`: talk to a meter's service console on a serial line, UART or pty.

A rig engineer can use any terminal program on the port; this command is for
scripts and quick checks: with commands on the command line it sends each,
prints the meter's reply and exits (status 1 if a reply is an error, or if a
``token`` the meter answers with any word but ``accepted``), and without them
it relays this terminal's lines until end of input.

The meter's serial console answers every line with its reply and a ``> ``
prompt (``tools/commands/meter.py``), which is how a reply's end is found here.
"""

from __future__ import annotations

import secrets
import sys
import time

from bijli.tools.errors import ConnectionFailed, RefusedByMeter

PROMPT = b"\r\n> "
ACCEPTED = "accepted"  # the decoder's word for a token it took (README, console commands)


class ConsoleLine:
    """One serial console: send a command, get its reply text. The line is
    :class:`bijli.hal.serial.SerialLine`; this finds where a reply ends."""

    def __init__(self, port: str, baud: int = 9600, timeout: float = 10.0):
        from bijli.hal.errors import LineError
        from bijli.hal.serial import SerialLine

        self._line_error = LineError
        try:
            self.line = SerialLine(port, baud)
        except LineError as exc:
            raise ConnectionFailed(str(exc)) from None
        self.timeout = timeout
        self._synchronise()

    def _synchronise(self) -> None:
        """Consume whatever the line holds before our first command.

        The meter greets a freshly opened console with a banner and a prompt, which may or
        may not still be waiting in the line when we open it. Counting prompts therefore
        cannot tell where we stand: one prompt left unread is read later as the start of a
        reply (a loaded machine showed ``> accepted`` and ``> {...`` where a reply was expected).
        So we send a line whose answer is ours alone (a word no console knows, with a
        nonce) and read until that answer and the prompt after it: every byte before it is
        the greeting or an earlier prompt, and nothing of ours is left in flight."""
        nonce = f"sync-{secrets.token_hex(6)}".encode("ascii")
        self._send(nonce + b"\r")
        buf = b""
        deadline = time.monotonic() + self.timeout
        while not _answered(buf, nonce):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionFailed(f"no prompt from the meter within {self.timeout:g} s (got {buf[-60:]!r})")
            try:
                buf += self.line.recv(min(left, 0.1)) or b""
            except self._line_error as exc:
                raise ConnectionFailed(f"the console closed the line ({exc})") from None

    def _send(self, data: bytes) -> None:
        try:
            self.line.send(data)
        except self._line_error as exc:
            raise ConnectionFailed(str(exc)) from None

    def _read_until(self, marker: bytes) -> bytes:
        buf = b""
        deadline = time.monotonic() + self.timeout
        while not buf.endswith(marker):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionFailed(f"no prompt from the meter within {self.timeout:g} s (got {buf[-60:]!r})")
            try:
                chunk = self.line.recv(min(left, 0.1))
            except self._line_error:
                return buf  # the meter closed the line (after quit)
            buf += chunk or b""
        return buf

    def ask(self, command: str) -> str:
        try:
            self.line.discard_input()
        except self._line_error as exc:
            raise ConnectionFailed(str(exc)) from None
        self._send(command.encode("utf-8") + b"\r")
        raw = self._read_until(PROMPT if command.strip() != "quit" else b"bye\r\n")
        text = raw.decode("utf-8", "replace").replace("\r\n", "\n")
        return text.removesuffix("\n> ").rstrip("\n")

    def close(self) -> None:
        self.line.close()


def _answered(buf: bytes, nonce: bytes) -> bool:
    """``buf`` ends with the reply line naming ``nonce`` and the prompt after it."""
    if not buf.endswith(PROMPT):
        return False
    body = buf[: -len(PROMPT)]
    return nonce in body[body.rfind(b"\n") + 1:]


def register(subparsers) -> None:
    p = subparsers.add_parser("console")
    p.add_argument("--port", required=True, help="device, pty path or pyserial URL of the console")
    p.add_argument("--baud", type=int, default=9600)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each reply")
    p.add_argument("commands", nargs="*", help="commands to run (default: relay this terminal's lines)")
    p.set_defaults(func=_main)


def refused(command: str, reply: str) -> bool:
    """An error reply, or a token the meter did not take (its answer is the decoder's word)."""
    if reply.startswith("error:"):
        return True
    words = command.split()
    return bool(words) and words[0].lower() == "token" and reply.split(":", 1)[0].strip() != ACCEPTED


def _typed_lines():
    """This terminal's lines: with line editing and history (standard library readline) when
    a person types them, plain lines when they come from a pipe or file."""
    if not sys.stdin.isatty():
        yield from (raw.rstrip("\n") for raw in sys.stdin)
        return
    try:
        import readline  # noqa: F401 - importing it gives input() editing and history
    except ImportError:  # pragma: no cover - a Python built without it
        pass
    while True:
        try:
            yield input("> ")
        except EOFError:
            print()
            return


def _main(args) -> int:
    line = ConsoleLine(args.port, args.baud, args.timeout)
    refusals = []
    try:
        commands = args.commands or _typed_lines()
        for command in commands:
            if not command.strip():
                continue
            reply = line.ask(command)
            if reply:
                print(reply, flush=True)
            if refused(command, reply):
                refusals.append(command.split()[0])
            if command.strip() == "quit":
                break
    finally:
        line.close()
    if refusals:
        raise RefusedByMeter(f"error reply or token refused: {', '.join(refusals)}")
    return 0
