"""Opening one DLMS association from the command line, and saying why a meter refused it.

Shared by every command that talks to a meter as a client (``objects``,
``read``, ``write``, ``call``, ``profile``, ``token deliver``, ``upgrade``): the
connection arguments, :func:`connect` (transport from ``tools.node.client_transports``, a
:class:`dlms.client.Client`, the association of IEC 62056-5-3 clause 7.2.4), the
invocation-counter journal a ciphered client keeps between runs, and
:func:`explain_refusal`, which turns a refused association into the typed
:mod:`bijli.tools.errors` error that says what to do.

A refusal is read from the AARE itself (IEC 62056-5-3 / Green Book 9.4: result,
acse-service-user diagnostic, and the xDLMS confirmed-service-error in its
user-information), as the first answer the transport carried. A meter answers a
stale invocation counter and a wrong key alike (it cannot decipher our
glo-initiate-request), so for that refusal we ask the meter, over the public
association (client SAP 16), which counter it expects next: the invocation
counter object 0.0.43.1.3.255 (IEC 62056-6-2 clause 4.4.8, class 1 Data). Ours
below it means stale; otherwise the keys are wrong.

The heavy modules (the DLMS client, the transports) are imported inside the
functions, so building a command's parser costs nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bijli.tools.errors import (AssociationRefused, ConnectionFailed, LockedOut, StaleInvocationCounter, UsageError,
                                WrongSecret)

DEMO_EK = "000102030405060708090A0B0C0D0E0F"
DEMO_AK = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
INVOCATION_COUNTER = "0.0.43.1.3.255"  # the utility association's, IEC 62056-6-2 4.4.8
PUBLIC_SAP = 16

_EPOCH = 1704067200  # 2024-01-01T00:00:00Z: the clock floor of our invocation counters
_CONFIRMED_SERVICE_ERROR = 0x0E  # xDLMS confirmed-service-error tag, in an AARE's user-information


def add_association_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("connection")
    g.add_argument("--target", default="tcp://127.0.0.1:4059",
                   help="tcp://HOST:PORT or serial://DEVICE-OR-PYSERIAL-URL (default tcp://127.0.0.1:4059)")
    g.add_argument("--hdlc", action="store_true", help="HDLC over TCP instead of the wrapper")
    g.add_argument("--mode-e", action="store_true", help="serial: IEC 62056-21 mode E opening at 300 baud first")
    g.add_argument("--physical", type=int, default=16, help="HDLC server lower (physical) address (default 16)")
    g.add_argument("--client", type=int, choices=(16, 32, 48), default=16,
                   help="association: 16 public, 32 meter reader (LLS), 48 utility (HLS-GMAC, ciphered)")
    g.add_argument("--password", default="12345678", help="LLS password for --client 32 (default the demo's)")
    g.add_argument("--key", default=DEMO_EK, help="global unicast encryption key, hex (default the demo's)")
    g.add_argument("--auth-key", default=DEMO_AK, help="authentication key, hex (default the demo's)")
    g.add_argument("--system-title", default="424A4C434C543031", help="our system title, 8 octets hex")
    g.add_argument("--ic", type=int, default=None,
                   help="first invocation counter (default: above the meter's expectation, from a clock-derived value)")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    p.add_argument("--json", action="store_true", help="print JSON")


class _FirstAnswer:
    """The transport, remembering the first answer it carried (the AARE) while associating."""

    def __init__(self, transport):
        self.transport = transport
        self.first: bytes | None = None

    def request(self, data: bytes) -> bytes:
        answer = self.transport.request(data)
        if self.first is None:
            self.first = answer
        return answer

    def close(self) -> None:
        self.transport.close()


def _secrets(args) -> tuple[bytes, bytes, bytes]:
    try:
        ek, ak, title = bytes.fromhex(args.key), bytes.fromhex(args.auth_key), bytes.fromhex(args.system_title)
    except ValueError as exc:
        raise UsageError(f"keys and system title are hex: {exc}") from None
    if len(ek) != 16 or len(ak) != 16 or len(title) != 8:
        raise UsageError("keys are 16 octets, the system title 8")
    return ek, ak, title


def _open(args, client_sap: int):
    """A connected transport, or ConnectionFailed saying where we could not get to."""
    from bijli.dlms.errors import LinkError
    from bijli.tools.node.client_transports import open_client_transport

    try:
        return open_client_transport(args.target, client_sap, hdlc_over_tcp=args.hdlc, use_mode_e=args.mode_e,
                                     physical_address=args.physical, timeout=args.timeout)
    except ValueError as exc:  # a target that is not tcp://... or serial://...
        raise UsageError(str(exc)) from None
    except (OSError, LinkError) as exc:
        raise ConnectionFailed(f"cannot reach the meter at {args.target}: {exc}") from None


def connect(args):
    """An associated :class:`dlms.client.Client` for the command line's connection arguments."""
    from bijli.dlms.client import Client, ClientSettings
    from bijli.dlms.errors import AssociationError, LinkError

    ek, ak, title = _secrets(args)
    ic = args.ic if args.ic is not None else _load_ic(title)
    settings = ClientSettings.for_association(args.client, password=args.password.encode(), encryption_key=ek,
                                              authentication_key=ak, system_title=title, invocation_counter=ic)
    transport = _open(args, args.client)
    recorder = _FirstAnswer(transport)
    client = Client(recorder, settings)
    try:
        try:
            client.associate()
        finally:
            if settings.ciphered:
                save_invocation_counter(title, settings.invocation_counter)
    except AssociationError as exc:
        transport.close()
        raise explain_refusal(args, recorder.first, exc, ic) from None
    except (OSError, LinkError) as exc:
        transport.close()
        raise ConnectionFailed(f"{args.target}: the link failed while associating: {exc}") from None
    except BaseException:
        transport.close()
        raise
    client.transport = transport  # associated: the recorder has done its job
    return client


def close_client(client) -> None:
    """Release, close the connection and keep a ciphered client's invocation counter for next time."""
    client.close()
    settings = client.session.settings
    if settings.ciphered:
        save_invocation_counter(settings.system_title, settings.invocation_counter)


# --- why a meter said no ----------------------------------------------------------------------


def explain_refusal(args, aare_bytes: bytes | None, exc: Exception, our_ic: int) -> AssociationRefused:
    """The typed error for a refused association, with what to do about it."""
    from bijli.dlms.acse import AARE, AcseServiceUser, AssociationResult
    from bijli.dlms.errors import AuthenticationError, DlmsError

    sap = args.client
    kind = {16: "public", 32: "meter reader, LLS", 48: "utility, HLS-GMAC"}.get(sap)
    who = f"client SAP {sap}" + (f" ({kind})" if kind else "")
    try:
        aare = AARE.decode(aare_bytes) if aare_bytes else None
    except DlmsError:
        aare = None
    if aare is None or aare.result == AssociationResult.ACCEPTED:
        # accepted, then the HLS exchange failed: the meter did not accept f(StoC)
        if isinstance(exc, AuthenticationError):
            return WrongSecret(f"the meter refused {who}: {exc}; check --key and --auth-key")
        return AssociationRefused(f"the meter refused {who}: {exc}")
    try:
        diag = AcseServiceUser(aare.diagnostic)
    except ValueError:
        diag = None
    if aare.result == AssociationResult.REJECTED_TRANSIENT and diag == AcseServiceUser.AUTHENTICATION_FAILURE:
        return LockedOut(f"{who} is locked out for this address after its repeated failed authentications "
                         f"(other addresses are not); the meter backs off from 5 s, doubling up to its lockout "
                         f"time (dlms.lockout_minutes, 5 by default): wait, then use the right "
                         f"{'password' if sap == 32 else 'keys'}")
    if diag == AcseServiceUser.AUTHENTICATION_FAILURE:
        if sap == 32:
            return WrongSecret(f"wrong password for {who} (authentication failure); after a few wrong tries "
                               f"(dlms.lockout_after, 3 by default) the meter locks the SAP out for this address "
                               f"for a while")
        return LockedOut(f"{who} is locked out after repeated failed authentications; wait for the meter's "
                         f"lockout time, then use the right keys")
    ui = aare.user_information or b""
    if args.client == 48 and diag == AcseServiceUser.NO_REASON_GIVEN and ui[:1] == bytes((_CONFIRMED_SERVICE_ERROR,)):
        return _deciphering_refused(args, who, our_ic)
    name = diag.name if diag is not None else str(aare.diagnostic)
    return AssociationRefused(f"the meter refused {who}: {aare.result.name.lower()}, diagnostic "
                              f"{aare.diagnostic} ({name.lower().replace('_', ' ')})")


def _deciphering_refused(args, who: str, our_ic: int) -> AssociationRefused:
    """The meter could not take our glo-initiate-request: a stale counter or wrong keys. Ask it."""
    resync = (f"resynchronise: `bijli read {INVOCATION_COUNTER} --client {PUBLIC_SAP} --target {args.target}` "
              f"gives the lowest counter the meter accepts; pass it as --ic N (later runs keep counting from there)")
    expected = _expected_ic(args)
    if expected is None:
        return AssociationRefused(f"the meter could not decipher the request of {who}: either our invocation "
                                  f"counter {our_ic} is stale ({resync}) or --key/--auth-key are wrong")
    if our_ic < expected:
        return StaleInvocationCounter(f"{who}: our invocation counter {our_ic} is stale, the meter expects at "
                                      f"least {expected}; {resync}")
    return WrongSecret(f"the meter could not decipher the request of {who} although our invocation counter "
                       f"{our_ic} is current (it expects {expected}): --key or --auth-key is wrong for this meter")


def _expected_ic(args) -> int | None:
    """The invocation counter the meter expects next, read over the public association; None
    when the meter does not tell (no such object, no public association)."""
    from bijli.dlms.client import Client, ClientSettings
    from bijli.dlms.errors import DlmsError

    try:
        transport = _open(args, PUBLIC_SAP)
    except ConnectionFailed:
        return None
    try:
        with Client(transport, ClientSettings.for_association(PUBLIC_SAP)) as client:
            client.associate()
            return int(client.get(1, INVOCATION_COUNTER, 2).value)
    except (DlmsError, OSError, TypeError, ValueError):
        return None


# --- the invocation-counter journal --------------------------------------------------------------


def _counter_file() -> Path:
    base = os.environ.get("BIJLI_CLIENT_STATE") or os.path.join(os.path.expanduser("~"), ".cache", "bijli")
    return Path(base) / "client-counters.json"


def _load_ic(title: bytes) -> int:
    """Our next invocation counter for this system title: the one saved after the last run,
    and never below 20 per second since 2024 (so a fresh machine starts above old runs)."""
    floor = max(0, int(time.time()) - _EPOCH) * 20
    try:
        saved = int(json.loads(_counter_file().read_text()).get(title.hex(), 0))
    except (OSError, ValueError, AttributeError):
        saved = 0
    return min(max(saved, floor), 0xFFFFFFFF)


def save_invocation_counter(title: bytes, value: int) -> None:
    path = _counter_file()
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[title.hex()] = max(int(data.get(title.hex(), 0) or 0), value)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:
        pass  # the clock floor still keeps us ahead in most cases
