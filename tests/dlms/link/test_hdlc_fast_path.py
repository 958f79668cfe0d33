"""The server's one-pass path for a whole I frame (``HdlcConnection._receive_whole_i``)
does exactly what the general path (frame reader, ``_on_frame``, the table's action for
(NRM, I)) does: the same events, the same bytes out, the same sequence numbers.

The general path is forced by putting one more flag in front of a chunk: a run of
flags is allowed between frames (IEC 62056-46 clause 6.4.1) and the reader skips it,
but the one-pass path takes only a chunk that is exactly one frame. Two servers are
fed the same client traffic, one of them always through the general path; the
traffic is mostly the common case (requests in sequence, acknowledging everything)
mixed with what must leave the one-pass path: wrong N(S) or N(R), segments, no
LLC header, a damaged check sequence, two frames in one chunk, a frame cut in two,
another address form, another client, RR, DISC, a new SNRM, time passing beyond the
inactivity limit.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms.link.hdlc import (
    NEED_DATA,
    ApduReceived,
    Frame,
    FrameType,
    HdlcAddress,
    HdlcConnection,
    HdlcParameters,
    Role,
    encode_frame,
    encode_parameters,
)
from tests.dlms.link.test_hdlc_connection import split_frames

SERVER = HdlcAddress(1, 16)
LLC_REQ = b"\xe6\xe6\x00"


class CountingServer(HdlcConnection):
    """A server that counts the chunks its one-pass path took (so the test knows it ran)."""

    def __init__(self, **kw):
        super().__init__(Role.SERVER, server_address=SERVER, inactivity_timeout=5.0, **kw)
        self.taken = 0

    def _receive_whole_i(self, data) -> bool:
        taken = super()._receive_whole_i(data)
        self.taken += taken
        return taken


def drain(conn):
    out = []
    while (ev := conn.next_event()) is not NEED_DATA:
        out.append(ev)
    return out


STEPS = ["request"] * 8 + ["unpolled", "bad_ns", "bad_nr", "segmented", "no_llc", "damaged", "two", "cut",
                            "short_address", "stranger", "rr", "disc", "snrm", "wait", "long"]


@settings(max_examples=120, deadline=None)
@given(st.data())
def test_the_one_pass_path_does_what_the_general_path_does(data):
    window = data.draw(st.integers(1, 7))
    max_info = data.draw(st.sampled_from([32, 128, 512]))
    fast, general = CountingServer(window=window, max_info_length=max_info), CountingServer(
        window=window, max_info_length=max_info)
    client = HdlcAddress(data.draw(st.sampled_from([16, 32, 48])))
    now = 0.0
    # what the client believes: the next N(S) to send, the next N(S) it expects from us
    vs = vr = 0

    def frame(kind=FrameType.I, info=b"", pf=True, ns=None, nr=None, seg=False, dest=SERVER, src=None):
        if kind is not FrameType.I:
            ns = 0
        return encode_frame(Frame(kind, dest, src or client, info, pf, vs if ns is None else ns,
                                  (vr if nr is None else nr) if kind in (FrameType.I, FrameType.RR) else 0, seg))

    snrm = frame(FrameType.SNRM, encode_parameters(HdlcParameters(max_info, max_info, window, window)))
    steps = ["snrm"] + data.draw(st.lists(st.sampled_from(STEPS), max_size=25))
    for step in steps:
        apdu = LLC_REQ + data.draw(st.binary(min_size=1, max_size=40))
        chunks = []
        if step == "snrm":
            chunks, vs, vr = [snrm], 0, 0
        elif step in ("request", "unpolled", "short_address", "long"):
            if step == "long":
                apdu = LLC_REQ + bytes(range(256)) * 2  # more than a small information field
            dest = HdlcAddress(1) if step == "short_address" else SERVER
            chunks = [frame(info=apdu, pf=step != "unpolled", dest=dest)]
            vs = (vs + 1) % 8
        elif step == "bad_ns":
            chunks = [frame(info=apdu, ns=(vs + data.draw(st.integers(1, 7))) % 8)]
        elif step == "bad_nr":
            chunks = [frame(info=apdu, nr=(vr + data.draw(st.integers(1, 7))) % 8)]
        elif step == "segmented":
            chunks = [frame(info=apdu[:3], seg=True)]
            vs = (vs + 1) % 8
            chunks.append(frame(info=apdu[3:] or b"\x00", ns=vs))
            vs = (vs + 1) % 8
        elif step == "no_llc":
            chunks = [frame(info=b"\x01\x02\x03" + apdu[3:])]
            vs = (vs + 1) % 8
        elif step == "damaged":
            bad = bytearray(frame(info=apdu))
            bad[data.draw(st.integers(1, len(bad) - 2))] ^= 1 << data.draw(st.integers(0, 7))
            chunks = [bytes(bad)]
        elif step == "two":
            one = frame(info=apdu, pf=False)
            vs = (vs + 1) % 8
            chunks = [one + frame(info=apdu)]
            vs = (vs + 1) % 8
        elif step == "cut":
            whole = frame(info=apdu)
            cut = data.draw(st.integers(1, len(whole) - 1))
            chunks = [whole[:cut], whole[cut:]]
            vs = (vs + 1) % 8
        elif step == "stranger":
            chunks = [frame(info=apdu, src=HdlcAddress(client.logical + 1))]
        elif step == "rr":
            chunks = [frame(FrameType.RR)]
        elif step == "disc":
            chunks = [frame(FrameType.DISC)]
        elif step == "wait":
            now += 6.0  # past the inactivity limit: the next frame meets a disconnected server
            continue
        for i, chunk in enumerate(chunks):
            now += 0.01
            fast.receive_data(chunk, now)
            # the extra flag goes between frames, not into the middle of a cut one
            general.receive_data(chunk if step == "cut" and i else b"\x7e" + chunk, now)
            got, expected = drain(fast), drain(general)
            assert got == expected, step
            for ev in got:
                if isinstance(ev, ApduReceived):
                    fast.send_apdu(ev.apdu * 2, now)
                    general.send_apdu(ev.apdu * 2, now)
            out = fast.data_to_send()
            assert out == general.data_to_send(), step
            assert (fast.state, fast.send_sequence, fast.receive_sequence) == (
                general.state, general.send_sequence, general.receive_sequence)
            # the client takes the answer: its N(R) follows our I frames (the last one's N(S) + 1)
            for f in split_frames(out):
                if f.kind is FrameType.I:
                    vr = (f.send_sequence + 1) % 8
    assert general.taken == 0


def test_the_one_pass_path_serves_the_common_case():
    s = CountingServer()
    client = HdlcAddress(16)
    s.receive_data(encode_frame(Frame(FrameType.SNRM, SERVER, client)), 0.0)
    s.data_to_send()
    drain(s)
    for n in range(20):
        s.receive_data(encode_frame(Frame(FrameType.I, SERVER, client, LLC_REQ + bytes([n]), True, n % 8, n % 8)),
                       1.0 + n)
        assert drain(s) == [ApduReceived(16, bytes([n]))]
        s.send_apdu(b"\xc4" + bytes([n]), 1.0 + n)
        (answer,) = split_frames(s.data_to_send())
        assert (answer.kind, answer.send_sequence, answer.receive_sequence) == (FrameType.I, n % 8, (n + 1) % 8)
    assert s.taken == 20
