"""Hostile DLMS inputs: a corpus of well-formed requests and the mutations that break them.

What an adversary on a meter's port sends: valid xDLMS APDUs (IEC 62056-5-3: GET,
SET, ACTION in their normal, list and block forms; AARQ and RLRQ of IEC 62056-5-3
clause 9.3 / ISO 8650 ACSE; general-block-transfer) aimed at every object and
attribute the meter lists, and the same bytes mutated: bits flipped, bytes set to the
values an A-XDR or BER length takes at its edges (0x00, 0x7F, 0x80-0x84, 0xFF), runs
inserted, deleted, duplicated, cut, two requests spliced. The corpus is built with the
project's own encoders (:mod:`bijli.dlms.apdu`, :class:`bijli.dlms.client.ClientSession`),
so a mutation starts from what a real client sends. Everything is drawn from one
``random.Random``: the same seed gives the same inputs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from bijli.dlms import apdu, axdr
from bijli.dlms.apdu import AccessSelection, AttributeDescriptor
from bijli.dlms.client import ClientSession, ClientSettings
from bijli.dlms.obis import Obis

#: the octets a length or count takes at its edges (A-XDR, BER, wrapper, HDLC)
EDGE_OCTETS = (0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFE, 0xFF)


@dataclass(frozen=True)
class Reference:
    """One attribute or method of a listed object."""

    class_id: int
    obis: Obis
    attributes: int
    methods: int


def random_data(rng: random.Random, depth: int = 0) -> axdr.Data:
    """A small A-XDR value of a random type (nested up to three deep)."""
    pick = rng.randrange(10 if depth < 3 else 8)
    if pick == 0:
        return axdr.OctetString(rng.randbytes(rng.choice((0, 1, 8, 16, 20, 64, 300))))
    if pick == 1:
        return axdr.DoubleLongUnsigned(rng.getrandbits(32))
    if pick == 2:
        return axdr.Unsigned(rng.getrandbits(8))
    if pick == 3:
        return axdr.LongUnsigned(rng.getrandbits(16))
    if pick == 4:
        return axdr.Boolean(rng.random() < 0.5)
    if pick == 5:
        return axdr.NullData()
    if pick == 6:
        return axdr.Integer(rng.randrange(-128, 128))
    if pick == 7:
        return axdr.VisibleString("".join(rng.choice("0123456789AZaz ") for _ in range(rng.randrange(24))))
    if pick == 8:
        return axdr.Structure(tuple(random_data(rng, depth + 1) for _ in range(rng.randrange(5))))
    return axdr.Array(tuple(random_data(rng, depth + 1) for _ in range(rng.randrange(4))))


class Corpus:
    """Well-formed plain request APDUs for the objects the meter lists."""

    def __init__(self, references: list[Reference]):
        if not references:
            raise ValueError("a corpus needs at least one listed object")
        self.references = references
        self.profiles = [r for r in references if r.class_id == 7]

    def _desc(self, rng: random.Random, method: bool = False) -> AttributeDescriptor:
        ref = rng.choice(self.references)
        top = max(1, ref.methods if method else ref.attributes)
        return AttributeDescriptor(ref.class_id, ref.obis, rng.randint(1, top + (1 if rng.random() < 0.1 else 0)))

    def get(self, rng: random.Random) -> bytes:
        """A GET that only reads (safe to send validly ciphered in the utility association)."""
        iid = 0xC0 | rng.randrange(16)
        if rng.random() < 0.15:
            items = tuple((self._desc(rng), None) for _ in range(rng.randint(1, 6)))
            return apdu.GetRequestWithList(iid, items).encode()
        if self.profiles and rng.random() < 0.1:
            ref = rng.choice(self.profiles)
            entries = axdr.Structure((axdr.DoubleLongUnsigned(rng.randint(0, 3)), axdr.DoubleLongUnsigned(rng.randint(0, 5)),
                                      axdr.LongUnsigned(1), axdr.LongUnsigned(0)))
            return apdu.GetRequestNormal(iid, AttributeDescriptor(7, ref.obis, 2), AccessSelection(2, entries)).encode()
        if rng.random() < 0.05:
            return apdu.GetRequestNext(iid, rng.getrandbits(32)).encode()
        return apdu.GetRequestNormal(iid, self._desc(rng)).encode()

    def any(self, rng: random.Random) -> bytes:
        """Any request: reads, writes and methods of every kind."""
        pick = rng.random()
        iid = 0xC0 | rng.randrange(16)
        if pick < 0.45:
            return self.get(rng)
        if pick < 0.65:
            return apdu.SetRequestNormal(iid, self._desc(rng), random_data(rng)).encode()
        if pick < 0.70:
            n = rng.randint(1, 4)
            return apdu.SetRequestWithList(iid, tuple((self._desc(rng), None) for _ in range(n)),
                                           tuple(random_data(rng) for _ in range(n))).encode()
        if pick < 0.90:
            params = None if rng.random() < 0.3 else random_data(rng)
            return apdu.ActionRequestNormal(iid, self._desc(rng, method=True), params).encode()
        if pick < 0.93:
            n = rng.randint(1, 4)
            return apdu.ActionRequestWithList(iid, tuple(self._desc(rng, method=True) for _ in range(n)),
                                              tuple(random_data(rng) for _ in range(n))).encode()
        if pick < 0.96:
            return bytes((0xE0, rng.getrandbits(8))) + rng.randbytes(rng.randrange(12))  # general-block-transfer
        return rng.randbytes(rng.randint(1, 40))


def aarq(rng: random.Random, sap: int, keys: dict, *, right: bool) -> bytes:
    """An AARQ for association ``sap``: with the right secrets (``right``) or wrong ones
    (a wrong LLS password, HLS-GMAC keys the meter does not hold, a stale counter)."""
    kw = {"password": keys["reader_password"].encode("latin-1"),
          "encryption_key": bytes.fromhex(keys["encryption_key"]),
          "authentication_key": bytes.fromhex(keys["authentication_key"])}
    if not right:
        if sap == 32:
            kw["password"] = rng.randbytes(rng.choice((0, 1, 8, 9, 64)))
        else:
            kw["encryption_key"] = rng.randbytes(16)
            kw["invocation_counter"] = rng.choice((0, 1, rng.getrandbits(32)))
            kw["system_title"] = rng.randbytes(8)
    return ClientSession(ClientSettings.for_association(sap, **kw)).aarq()


def mutate(rng: random.Random, data: bytes, other: bytes = b"") -> bytes:
    """``data`` broken in one to three places."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(9)
        n = len(buf)
        if op == 0 and n:
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[rng.randrange(n)] = rng.choice(EDGE_OCTETS)
        elif op == 2 and n:
            buf[rng.randrange(n)] = rng.getrandbits(8)
        elif op == 3:
            at = rng.randrange(n + 1)
            buf[at:at] = rng.randbytes(rng.choice((1, 2, 4, 16, 200)))
        elif op == 4 and n > 1:
            at = rng.randrange(n)
            del buf[at:at + rng.randint(1, 8)]
        elif op == 5 and n > 1:
            del buf[rng.randrange(1, n):]
        elif op == 6 and n:
            at = rng.randrange(n)
            chunk = buf[at:at + rng.randint(1, 16)]
            buf[at:at] = chunk * rng.randint(1, 8)
        elif op == 7 and other:
            buf = buf[:rng.randrange(n + 1)] + bytearray(other[rng.randrange(len(other)):])
        else:
            buf += rng.randbytes(rng.randint(1, 8))
    if bytes(buf) == data and buf:  # two edits that undid each other, a byte set to its own value
        buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
    return bytes(buf) or b"\x00"


def references_from(entries) -> list[Reference]:
    """The corpus's targets from an object list (:meth:`bijli.dlms.client.Client.object_list`)."""
    return [Reference(e.class_id, e.logical_name, len(e.attribute_access) or 1, len(e.method_access))
            for e in entries]
