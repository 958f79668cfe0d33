"""OBIS codes (IEC 62056-6-1): the six-group logical names of COSEM objects.

An :class:`Obis` is a frozen value of six integers A.B.C.D.E.F, parsed from the
dotted form ("1.0.1.8.0.255") or the reduced IEC form ("1-0:1.8.0*255", where
F defaults to 255 and A-B to 0-0 for abstract codes when omitted), formatted
back, and turned into the 6-octet logical name the protocol carries.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from bijli.dlms.errors import ObisError

# [0-9], not \d: \d also matches other scripts' digits, which int() would then accept.
_DOTTED = re.compile(r"^\s*([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\s*$")
# A-B:C.D.E*F with A-B: and *F optional (IEC 62056-6-1 clause 5.2 reduced display);
# "A-B:C.D.E.F" (a dot before F) is common in tools and accepted too.
_IEC = re.compile(
    r"^\s*(?:([0-9]{1,3})-([0-9]{1,3}):)?([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})(?:[*&.]([0-9]{1,3}))?\s*$"
)


class Obis(NamedTuple):
    """A logical name. A NamedTuple so it hashes and compares fast as a dict key."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255

    @classmethod
    def parse(cls, text: "str | Obis | bytes") -> "Obis":
        if isinstance(text, Obis):
            return text
        if isinstance(text, (bytes, bytearray)):
            return cls.from_bytes(text)
        if not isinstance(text, str):
            raise ObisError(f"not an OBIS code: {text!r}")
        return _parse_text(text)

    @classmethod
    def _parse(cls, text: str) -> "Obis":
        m = _DOTTED.match(text)
        if m:
            groups = [int(g) for g in m.groups()]
        else:
            m = _IEC.match(text)
            if not m:
                raise ObisError(f"not an OBIS code: {text!r}")
            a, b, c, d, e, f = m.groups()
            groups = [int(a or 0), int(b or 0), int(c), int(d), int(e), int(f) if f is not None else 255]
        if any(g > 255 for g in groups):
            raise ObisError(f"OBIS group above 255 in {text!r}")
        return cls(*groups)

    @classmethod
    def from_bytes(cls, raw: bytes) -> "Obis":
        if len(raw) != 6:
            raise ObisError(f"a logical name is 6 octets, got {len(raw)}")
        return cls(*raw)

    def to_bytes(self) -> bytes:
        return bytes(self)

    def __str__(self) -> str:
        return "%d.%d.%d.%d.%d.%d" % self

    def iec(self) -> str:
        """The IEC reduced form, e.g. ``1-0:1.8.0*255``."""
        return "%d-%d:%d.%d.%d*%d" % self


@lru_cache(maxsize=4096)
def _parse_text(text: str) -> Obis:
    """Parsing is pure and an object list names the same few hundred codes every time it
    is built (a fleet builds one per association): parse each text once. A bad text
    raises every time (exceptions are not cached)."""
    return Obis._parse(text)
