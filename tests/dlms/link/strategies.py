"""Hypothesis strategies for HDLC frames and addresses, shared by the link tests."""

from hypothesis import strategies as st

from bijli.dlms.link.hdlc_frame import Frame, FrameType, HdlcAddress

addresses = st.one_of(
    st.builds(HdlcAddress, st.integers(0, 0x7F), st.none(), st.just(1)),
    st.builds(HdlcAddress, st.integers(0, 0x7F), st.integers(0, 0x7F), st.just(2)),
    st.builds(HdlcAddress, st.integers(0, 0x3FFF), st.integers(0, 0x3FFF), st.just(4)),
)


@st.composite
def frames(draw, kinds=tuple(FrameType), max_info=300):
    kind = draw(st.sampled_from(kinds))
    ns = draw(st.integers(0, 7)) if kind is FrameType.I else 0
    nr = draw(st.integers(0, 7)) if kind in (FrameType.I, FrameType.RR, FrameType.RNR) else 0
    return Frame(
        kind,
        draw(addresses),
        draw(addresses),
        draw(st.binary(max_size=max_info)),
        draw(st.booleans()),
        ns,
        nr,
        draw(st.booleans()),
    )
