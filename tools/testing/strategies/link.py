"""Strategies for the DLMS link layers: HDLC frames and IEC 62056-47 wrapper frames.

HDLC (IEC 62056-46, frame format type 3): :data:`hdlc_addresses` in each of the
three sizes of clause 6.4.2.2 (one octet: upper address only; two and four
octets: upper and lower address), :func:`hdlc_frames` any I, RR, RNR, SNRM, DISC,
UA, DM, FRMR or UI frame with N(S)/N(R) where the frame carries them, and
:func:`hdlc_octets` the same frames as they go on the line (flags, HCS, FCS).

Wrapper (IEC 62056-47 clause 5.5: version 1, source and destination wPort, length,
APDU): :func:`wrapper_messages` as :class:`bijli.dlms.link.wrapper.ApduReceived`, and
:func:`wrapper_frames` as octets. Both take the APDU octets to carry (random by
default; pass ``encoded_apdus`` from :mod:`.apdu` for real ones).
"""

from __future__ import annotations

from hypothesis import strategies as st

from bijli.dlms.link import wrapper
from bijli.dlms.link.hdlc_frame import Frame, FrameType, HdlcAddress, encode_frame

hdlc_addresses = st.one_of(
    st.builds(HdlcAddress, st.integers(0, 0x7F), st.none(), st.just(1)),
    st.builds(HdlcAddress, st.integers(0, 0x7F), st.integers(0, 0x7F), st.just(2)),
    st.builds(HdlcAddress, st.integers(0, 0x3FFF), st.integers(0, 0x3FFF), st.just(4)),
)

_SEQUENCED = (FrameType.I, FrameType.RR, FrameType.RNR)


@st.composite
def hdlc_frames(draw, kinds=tuple(FrameType), max_info: int = 300) -> Frame:
    """A frame of one of ``kinds`` with at most ``max_info`` octets of information field."""
    kind = draw(st.sampled_from(kinds))
    ns = draw(st.integers(0, 7)) if kind is FrameType.I else 0
    nr = draw(st.integers(0, 7)) if kind in _SEQUENCED else 0
    return Frame(
        kind,
        draw(hdlc_addresses),
        draw(hdlc_addresses),
        draw(st.binary(max_size=max_info)),
        draw(st.booleans()),
        ns,
        nr,
        draw(st.booleans()),
    )


def hdlc_octets(kinds=tuple(FrameType), max_info: int = 300) -> st.SearchStrategy:
    """:func:`hdlc_frames` encoded for the line, from opening flag to closing flag."""
    return hdlc_frames(kinds, max_info).map(encode_frame)


_wports = st.integers(0, 0xFFFF)


def wrapper_messages(payloads: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """Wrapper frames as (source wPort, destination wPort, APDU)."""
    return st.builds(wrapper.ApduReceived, _wports, _wports, payloads if payloads is not None else st.binary(max_size=300))


def wrapper_frames(payloads: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """Wrapper frames as the octets on a TCP stream or in a UDP datagram."""
    return wrapper_messages(payloads).map(lambda m: wrapper.encode_frame(m.source_wport, m.destination_wport, m.apdu))
