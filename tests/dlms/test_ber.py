"""The ACSE TLV split (dlms.ber.read_tlvs, over Reader.ber_tlvs) reads X.690 as written.

The split is a loop on local variables for speed; this holds it to the definition, read
octet by octet here: a single-octet tag (low five bits not all set), a definite length
(short form below 0x80, else 0x81 or 0x82 and that many big-endian octets), then that
many value octets; the buffer used whole. Any buffer, valid or not, splits the same way
or is refused with a BerError by both.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bijli.dlms import ber
from bijli.dlms.errors import BerError


def by_the_book(buf: bytes) -> list[tuple[int, bytes]] | None:
    """The split octet by octet, or None where X.690 (as ACSE uses it) refuses the buffer."""
    out, pos = [], 0
    while pos < len(buf):
        tag = buf[pos]
        if tag & 0x1F == 0x1F or pos + 1 >= len(buf):
            return None
        first = buf[pos + 1]
        pos += 2
        if first < 0x80:
            size = first
        elif first in (0x81, 0x82):
            n = first - 0x80
            if pos + n > len(buf):
                return None
            size = 0
            for octet in buf[pos:pos + n]:
                size = size * 256 + octet
            pos += n
        else:
            return None
        if pos + size > len(buf):
            return None
        out.append((tag, buf[pos:pos + size]))
        pos += size
    return out


def tlv_bytes():
    """Mostly well-formed TLV runs (short and long length forms), sometimes cut or padded."""
    one = st.builds(lambda tag, value, long: bytes((tag,)) + (bytes((0x82,)) + len(value).to_bytes(2, "big")
                                                             if long else ber.length(len(value))) + value,
                    st.integers(0, 255), st.binary(max_size=140), st.booleans())
    run = st.lists(one, max_size=4).map(b"".join)
    return run | st.tuples(run, st.integers(0, 8), st.binary(max_size=3)).map(lambda t: t[0][: len(t[0]) - t[1]] + t[2])


@given(tlv_bytes() | st.binary(max_size=40))
def test_the_split_is_the_octet_by_octet_reading_or_both_refuse(buf):
    expected = by_the_book(buf)
    try:
        got = ber.read_tlvs(buf)
    except BerError:
        assert expected is None
    else:
        assert got == expected
        assert all(value.__class__ is bytes for _, value in got)


def test_a_view_of_the_octets_splits_into_bytes_values():
    buf = bytearray(ber.tlv(0xA1, b"\x06\x01\x02") + ber.tlv(0x80, b""))
    assert ber.read_tlvs(buf) == [(0xA1, b"\x06\x01\x02"), (0x80, b"")]
    assert all(value.__class__ is bytes for _, value in ber.read_tlvs(buf))
