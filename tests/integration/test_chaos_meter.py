"""The hostile meter (``bijli meter --chaos``) against real head-end clients on real sockets.

Each kind of misbehaviour is shown by a real ``bijli meter`` process started with
``--chaos SEED --chaos-kinds KIND --chaos-rate 1`` and met by two clients: ours
(:class:`bijli.dlms.client.Client` over ``tools.node.client_transports``), which
must fail with a typed error of our own (the one each kind calls for) and never hang,
and the gurux-dlms client, which must fail too (it raises its own exceptions), each
run bounded by its time-out. A mixed run of every kind at a lower rate checks the same
over many sessions, on the wrapper and on HDLC over TCP. Finally the bytes: two meters
with the same seed, asked the same requests on a raw socket, send the same octets, and
another seed sends others.
"""

from __future__ import annotations

import re
import socket
import time

import pytest
from gurux_dlms import GXDLMSClient
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.objects import GXDLMSClock

from bijli.dlms import apdu
from bijli.dlms.apdu import AttributeDescriptor
from bijli.dlms.client import ClientSession, ClientSettings
from bijli.dlms.errors import (DecodeError, DlmsError, RemoteProtocolError, ReplayError, SecurityError,
                               ServiceError, WrapperError)
from bijli.dlms.link import wrapper
from bijli.dlms.obis import Obis
from bijli.hal.errors import HalError, InactivityTimeout, LineError
from bijli.tools.chaos import Misbehaviour
from bijli.tools.testing import RunningMeter
from tests.conftest import ROOT
from tests.peers.gurux_client import GuruxPeer, TcpTransport

K = Misbehaviour
TIMEOUT = 1.0  # what each client waits for one answer
BOUND = 12.0  # no session of a few requests may take longer than this, whatever the meter does

#: kind -> (association that meets it, the typed error our client must raise)
OUR_CLIENT = {
    K.TRUNCATED: (16, InactivityTimeout),
    K.OVERSIZE: (16, DecodeError),
    K.WRONG_LENGTH: (16, (InactivityTimeout, WrapperError, DecodeError)),
    K.BAD_BLOCK_NUMBER: (32, RemoteProtocolError),
    K.EXCEPTION: (16, ServiceError),
    K.SLOW: (16, InactivityTimeout),
    K.STALL: (16, InactivityTimeout),
    K.DROP_MID_BLOCK: (32, LineError),
    K.WRONG_INVOCATION_COUNTER: (48, ReplayError),
    K.BAD_GCM_TAG: (48, SecurityError),
}
assert set(OUR_CLIENT) == set(Misbehaviour)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """``hostile(kind)``: a meter showing that kind on every answer it applies to (one per kind)."""
    started: dict[Misbehaviour, RunningMeter] = {}

    def get(kind: Misbehaviour) -> RunningMeter:
        if kind not in started:
            started[kind] = RunningMeter.start(tmp_path_factory.mktemp(f"chaos-{kind.value}"), hdlc=True,
                                               serial=False, optical=False, console=False, chaos=13,
                                               chaos_kinds=kind.value, chaos_rate=1.0)
        return started[kind]

    yield get
    for meter in started.values():
        meter.stop()


def head_end_session(meter: RunningMeter, sap: int, *, timeout: float = TIMEOUT, hdlc: bool = False) -> None:
    """What a head-end does on a visit: associate, read the object list (long, in blocks for
    the reader) and the clock, release."""
    with meter.client(sap, hdlc=hdlc, timeout=timeout) as client:
        client.object_list()
        client.read_clock()


@pytest.mark.parametrize("hdlc", (False, True), ids=("wrapper", "hdlc-tcp"))
@pytest.mark.parametrize("kind", list(Misbehaviour), ids=lambda k: k.value)
def test_our_client_fails_with_the_typed_error_each_misbehaviour_calls_for(hostile, kind, hdlc):
    meter = hostile(kind)
    assert meter.chaos_banner is not None and f"kinds {kind.value}," in meter.chaos_banner
    sap, expected = OUR_CLIENT[kind]
    started = time.monotonic()
    with pytest.raises(expected):
        head_end_session(meter, sap, hdlc=hdlc)
    assert time.monotonic() - started < BOUND
    assert meter.running  # the hostile meter itself survives its own misbehaviour


def test_a_slow_answer_does_come_to_a_patient_client(hostile):
    head_end_session(hostile(K.SLOW), 16, timeout=5.0)


def gurux_session(meter: RunningMeter, sap: int, *, hdlc: bool = False) -> None:
    kw: dict = {}
    if sap == 32:
        kw = {"authentication": Authentication.LOW, "password": meter.keys["reader_password"].encode("latin-1")}
    elif sap == 48:
        with meter.client(16, hdlc=hdlc) as public:  # the invocation counter the meter expects next
            ic = public.get(1, "0.0.43.1.3.255", 2).to_python()
        kw = {"authentication": Authentication.HIGH_GMAC, "invocation_counter": ic,
              "block_cipher_key": bytes.fromhex(meter.keys["encryption_key"]),
              "authentication_key": bytes.fromhex(meter.keys["authentication_key"])}
    target = meter.endpoints.hdlc if hdlc else meter.endpoints.wrapper
    port = int(target.rsplit(":", 1)[1])
    if hdlc:
        kw.update(interface=InterfaceType.HDLC, server_address=GXDLMSClient.getServerAddress(1, 16))
    peer = GuruxPeer(TcpTransport("127.0.0.1", port, timeout=TIMEOUT), client_sap=sap, timeout=TIMEOUT, **kw)
    try:
        peer.connect()
        peer.client.parseObjects(peer.exchange(peer.client.getObjectsRequest()).data, True)
        clock = GXDLMSClock("0.0.1.0.0.255")
        peer.read(clock, 2)
    finally:
        peer.transport.close()


GURUX_MISSES = {
    # gurux-dlms (python, 1.0.203) builds its GCM stream for decryption with encrypt=True
    # (GXDLMSChippering.decryptAesGcm), so flushFinalBlock never compares the tag: a
    # corrupted tag goes unnoticed. The hostile mode is what shows it.
    K.BAD_GCM_TAG: "gurux-dlms does not verify the GCM tag of a ciphered answer",
}


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=GURUX_MISSES[k]))
                                  if k in GURUX_MISSES else k for k in Misbehaviour], ids=lambda k: k.value)
def test_the_gurux_client_fails_too_and_within_its_time_out(hostile, kind):
    meter = hostile(kind)
    sap = OUR_CLIENT[kind][0]
    started = time.monotonic()
    with pytest.raises(Exception) as err:  # gurux's own errors: ValueError, TimeoutError, GXDLMSExceptionResponse
        gurux_session(meter, sap)
    assert time.monotonic() - started < BOUND, err.value
    assert meter.running


@pytest.mark.parametrize("hdlc", (False, True), ids=("wrapper", "hdlc-tcp"))
def test_a_mixed_hostile_run_gives_our_client_typed_errors_only(bijli_meter_factory, hdlc):
    """Every kind, one answer in three: each visit either works or fails with our own error."""
    meter = bijli_meter_factory(hdlc=True, serial=False, optical=False, console=False, chaos=2024, chaos_rate=0.35)
    assert "seed 2024" in meter.chaos_banner
    outcomes = []
    for visit in range(8):
        sap = (16, 32, 48)[visit % 3]
        started = time.monotonic()
        try:
            head_end_session(meter, sap, timeout=0.7, hdlc=hdlc)
            outcomes.append("ok")
        except (DlmsError, HalError) as exc:  # anything else propagates and fails the test
            outcomes.append(type(exc).__name__)
        assert time.monotonic() - started < BOUND
    assert meter.running
    assert any(o != "ok" for o in outcomes), outcomes


@pytest.mark.parametrize("hdlc", (False, True), ids=("wrapper", "hdlc-tcp"))
def test_a_mixed_hostile_run_never_hangs_the_gurux_client(bijli_meter_factory, hdlc):
    kinds = [k.value for k in Misbehaviour if k is not K.BAD_GCM_TAG]  # the one gurux does not see
    meter = bijli_meter_factory(hdlc=True, serial=False, optical=False, console=False, chaos=31, chaos_kinds=kinds,
                                chaos_rate=0.35)
    failures = 0
    for visit in range(6):
        started = time.monotonic()
        try:
            gurux_session(meter, (16, 32)[visit % 2], hdlc=hdlc)
        except Exception:  # noqa: BLE001 - gurux's own exceptions; what matters is that it ends
            failures += 1
        assert time.monotonic() - started < BOUND
    assert failures and meter.running


# --- the same seed, the same bytes ----------------------------------------------------------------


def _requests() -> list[bytes]:
    """A fixed visit in the reader association, as wrapper frames: AARQ, three GETs, the
    object list's next blocks (whatever came back), release."""
    session = ClientSession(ClientSettings.for_association(32))
    iid = 0xC1

    def get(class_id: int, obis: str, attr: int) -> bytes:
        return apdu.GetRequestNormal(iid, AttributeDescriptor(class_id, Obis.parse(obis), attr), None).encode()

    apdus = [session.aarq(), get(1, "0.0.42.0.0.255", 2), get(8, "0.0.1.0.0.255", 2), get(15, "0.0.40.0.0.255", 2)]
    apdus += [apdu.GetRequestNext(iid, n).encode() for n in (1, 2, 3)]
    apdus.append(session.rlrq())
    return [wrapper.encode_frame(32, 1, a) for a in apdus]


def _receive(sock: socket.socket, got: bytearray, quiet: float, whole_frame: bool) -> bool:
    """Read into ``got`` until a whole wrapper frame has come (``whole_frame``), the peer
    closes (False), or it stays quiet for ``quiet`` seconds."""
    start = len(got)
    while True:
        have = len(got) - start
        if whole_frame and have >= 8 and have >= 8 + int.from_bytes(got[start + 6:start + 8], "big"):
            return True
        sock.settimeout(quiet)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return True
        except OSError:
            data = b""
        if not data:
            return False
        got += data


def _capture(port: int, connections: int = 4, quiet: float = 0.2) -> list[bytes]:
    """Everything the meter sent on each connection, in order, for the same requests. The
    meter answers requests in order whatever the timing, so a late answer only moves
    where it is read, not what the stream holds; the last ones are drained at the end."""
    streams = []
    for _ in range(connections):
        got = bytearray()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            open_ = True
            for frame in _requests():
                try:
                    sock.sendall(frame)
                except OSError:
                    open_ = False  # the meter dropped the connection
                    break
                if not _receive(sock, got, quiet, True):
                    open_ = False
                    break
            if open_:
                _receive(sock, got, 0.6, False)  # whatever is still on its way
        streams.append(bytes(got))
    return streams


def test_the_same_seed_and_requests_give_the_same_bytes_on_the_wire(bijli_meter_factory):
    kinds = [k.value for k in Misbehaviour if k is not K.SLOW]  # slow changes when, not what: it only costs time

    def run(seed: int) -> list[bytes]:
        meter = bijli_meter_factory(hdlc=False, serial=False, optical=False, console=False, chaos=seed,
                                    chaos_kinds=kinds, chaos_rate=0.5)
        try:
            return _capture(meter.endpoints.wrapper_port)
        finally:
            meter.stop()

    first, second, other = run(77), run(77), run(78)
    assert first == second
    assert first != other
    assert len(set(first)) > 1  # the connections did not all get the same treatment


def test_the_banner_names_the_seed_even_when_it_is_random(bijli_meter_factory):
    meter = bijli_meter_factory(hdlc=False, serial=False, optical=False, console=False, chaos="random")
    seed = int(meter.chaos_banner.split("seed ", 1)[1].split(",", 1)[0])
    assert f"--chaos {seed} " in meter.chaos_banner


def test_a_normal_meter_is_not_hostile(bijli_meter_factory):
    meter = bijli_meter_factory(hdlc=False, serial=False, optical=False, console=False)
    assert meter.chaos_banner is None
    with meter.client(32, timeout=TIMEOUT) as client:
        assert len(client.object_list()) > 6


# --- the README's word for it ------------------------------------------------------------------------

README = ROOT / "README.md"


def _hostile_section() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## bijli in your CI"):]
    return section[section.index("**A hostile meter.**"):section.index("\n## ", 1)]


def test_the_readme_lists_every_kind():
    section = _hostile_section()
    assert {k.value for k in Misbehaviour} == set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M))


def test_the_readme_hostile_example_runs(bijli_meter_factory):
    """README's hostile-mode example, executed as written."""
    section = _hostile_section()
    code = section[section.index("```python\n") + 10:]
    code = code[:code.index("```")]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    started = time.monotonic()
    namespace["test_my_head_end_survives_a_hostile_meter"](bijli_meter_factory)
    assert time.monotonic() - started < 4 * 2 * 3 + 10  # four visits, each bounded by its time-outs


def test_a_slow_answer_is_not_overtaken_by_the_next(bijli_meter_factory):
    """Two GETs sent at once; the plan (run here, offline, as the meter runs it) makes the
    first answer slow and not the second: the second still comes after the first."""
    from bijli.tools.chaos import ChaosPlan

    def slow_answers(seed: int) -> list[bool]:
        c = ChaosPlan(seed, (K.SLOW,), 0.5).connection(1)
        flags = []
        for _ in range(3):
            c.answer(b"\xc4\x01\xc1\x00\x00")
            flags.append(c._pending is not None)
            c.output(b"", 0.0)
        return flags

    seed = next(s for s in range(1000) if slow_answers(s) == [False, True, False])
    meter = bijli_meter_factory(hdlc=False, serial=False, optical=False, console=False, chaos=seed,
                                chaos_kinds="slow", chaos_rate=0.5)
    session = ClientSession(ClientSettings())

    def get(iid: int, obis: str) -> bytes:
        return wrapper.encode_frame(16, 1, apdu.GetRequestNormal(iid, AttributeDescriptor(1, Obis.parse(obis), 2),
                                                                 None).encode())

    with socket.create_connection(("127.0.0.1", meter.endpoints.wrapper_port), timeout=10) as sock:
        sock.sendall(wrapper.encode_frame(16, 1, session.aarq()))
        aare = bytearray()
        _receive(sock, aare, 5.0, True)
        started = time.monotonic()
        sock.sendall(get(0xC1, "0.0.42.0.0.255") + get(0xC2, "0.0.96.1.0.255"))
        conn = wrapper.WrapperConnection(16)
        answers = []
        while len(answers) < 2 and time.monotonic() - started < 8:
            sock.settimeout(8)
            conn.receive_data(sock.recv(65536))
            while (ev := conn.next_event()) is not wrapper.NEED_DATA:
                answers.append(apdu.decode(ev.apdu).invoke_id)
    assert answers == [0xC1, 0xC2]
    assert time.monotonic() - started >= 1.0  # the slow one did wait
