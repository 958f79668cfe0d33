"""The one bounded reader over received octets, for A-XDR (IEC 62056-6-2 clause 4.1.5,
the xDLMS APDUs of IEC 62056-5-3) and for the BER of the ACSE APDUs (ITU-T X.690).

Every decoder of received bytes in :mod:`dlms` reads through a :class:`Reader`: a
cursor that never reads past the end of its buffer and raises the caller's error
class (``ApduError`` for xDLMS, ``BerError`` for ACSE) instead of an ``IndexError``,
so a truncated or lying length from a peer is always a typed decode error. The two
encodings differ only in how many length octets they allow, hence
:meth:`Reader.length` (A-XDR: up to four) and :meth:`Reader.ber_length` (BER
definite form: the one or two an ACSE APDU can need).
"""

from __future__ import annotations

from bijli.dlms.errors import DecodeError


class Reader:
    """A bounded cursor over one received buffer."""

    __slots__ = ("buf", "pos", "error")

    def __init__(self, buf: bytes, pos: int = 0, error: type[DecodeError] = DecodeError):
        self.buf = buf
        self.pos = pos
        self.error = error

    @property
    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def u8(self) -> int:
        try:
            v = self.buf[self.pos]
        except IndexError:
            raise self.error("truncated: one more octet expected") from None
        self.pos += 1
        return v

    def i8(self) -> int:
        v = self.u8()
        return v - 256 if v > 127 else v

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise self.error(f"truncated: {n} octets expected, {len(self.buf) - self.pos} left")
        v = bytes(self.buf[self.pos : end])
        self.pos = end
        return v

    def length(self, max_octets: int = 4) -> int:
        """A length: one octet below 0x80, else 0x8n and n octets. A-XDR allows up to
        four length octets; a BER definite length in ACSE never needs more than two."""
        first = self.u8()
        if first < 0x80:
            return first
        size = first & 0x7F
        if size == 0 or size > max_octets:
            raise self.error(f"unsupported length form 0x{first:02x}")
        return int.from_bytes(self.take(size), "big")

    def ber_length(self) -> int:
        return self.length(2)

    def ber_tlvs(self) -> list[tuple[int, bytes]]:
        """Every (tag, value) from here to the end of the buffer, single-octet tags and
        definite lengths of one or two octets (what ACSE uses), the buffer used whole.

        The same reading as ``u8`` / ``ber_length`` / ``take`` in a loop, with the same
        errors, done on local variables: an AARQ or AARE is a dozen nested TLVs, and the
        method calls per octet were most of what decoding one cost (a storm decodes
        three per meter on each side)."""
        buf, pos, error = self.buf, self.pos, self.error
        end = len(buf)
        out = []
        while pos < end:
            tag = buf[pos]
            if tag & 0x1F == 0x1F:
                raise error(f"multi-byte BER tag 0x{tag:02x} not used by ACSE")
            if pos + 1 >= end:
                raise error("truncated: one more octet expected")
            size = buf[pos + 1]
            pos += 2
            if size >= 0x80:
                first, n = size, size & 0x7F
                if n == 0 or n > 2:
                    raise error(f"unsupported length form 0x{first:02x}")
                if pos + n > end:
                    raise error(f"truncated: {n} octets expected, {end - pos} left")
                size = int.from_bytes(buf[pos:pos + n], "big")
                pos += n
            if size > end - pos:
                raise error(f"BER value of tag 0x{tag:02x} claims {size} bytes, {end - pos} left")
            value = buf[pos:pos + size]
            out.append((tag, value if value.__class__ is bytes else bytes(value)))
            pos += size
        self.pos = pos
        return out

    def octets(self) -> bytes:
        """A length-prefixed OCTET STRING (A-XDR)."""
        return self.take(self.length())

    def optional(self) -> bool:
        """An OPTIONAL/DEFAULT presence octet: 0 absent, 1 present, anything else an error."""
        flag = self.u8()
        if flag > 1:
            raise self.error(f"presence flag {flag} is neither 0 nor 1")
        return bool(flag)

    def boolean(self) -> bool:
        return self.u8() != 0

    def count(self) -> int:
        """A SEQUENCE OF quantity; each element takes at least one octet, so a count
        above the octets left is a lie caught before anything is allocated."""
        n = self.length()
        if n > len(self.buf) - self.pos:
            raise self.error(f"SEQUENCE OF claims {n} elements, {len(self.buf) - self.pos} octets left")
        return n

    def end(self, what: str = "APDU") -> None:
        if self.pos != len(self.buf):
            raise self.error(f"{len(self.buf) - self.pos} trailing octets in {what}")
