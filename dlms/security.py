"""Security suite 0 of the DLMS/COSEM application layer: AES-128-GCM ciphering of
xDLMS APDUs, HLS mechanism 5 (GMAC) authentication, invocation counters and the
AES key wrap of the global key transfer.

IEC 62056-5-3 clause 9.2 (the Green Book's "Security" chapter) as far as suite 0
goes, sans-IO: no clock, no sockets; randomness and persistence come in from the
caller. A ciphered APDU's content is::

    security header = SC (1 octet) || IC (4 octets, big-endian)
    then            ciphertext || T (12 octets)      SC = 0x30, authenticated and encrypted
                    plaintext  || T                  SC = 0x10, authenticated only
                    ciphertext                       SC = 0x20, encrypted only

SC carries the suite id in its low nibble (0 here), 0x10 authentication, 0x20
encryption, 0x40 broadcast key, 0x80 compression. The GCM initialisation vector
is the sender's system title (8 octets) || IC; the additional authenticated data
is SC || AK (|| plaintext when only authenticated). HLS-GMAC answers a challenge
``x`` with ``f(x) = SC(0x10) || IC || GMAC(SC || AK || x)``, computed with the
responder's own system title and IC.

Invocation counters (:class:`InvocationCounters`) follow one rule for both
directions: a stored value ``V`` means "every IC below V is spent". The server's
own outgoing IC and each client's incoming IC (per client system title) live in
memory; to persist them without a write per APDU the counter reserves ahead: when
it reaches the stored value it stores ``value + reserve_step`` before going on.
After a crash it restarts from the stored value, so an IC is never used twice and
a captured request is never accepted twice; at most ``reserve_step`` values are
skipped per restart (a client that lost track reads the meter's frame counter
object and continues above it). :meth:`InvocationCounters.flush` stores the exact
values on a clean shutdown so nothing is skipped.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import TYPE_CHECKING, Callable, Protocol

from bijli.dlms.errors import CounterStoreError, ReplayError, SecurityError

TAG_LENGTH = 12
HEADER_LENGTH = 5
SYSTEM_TITLE_LENGTH = 8
IC_LIMIT = 0xFFFFFFFF
SUITE_0 = 0

__all__ = [
    "CounterStore", "InvocationCounters", "KeyId", "MemoryCounterStore", "SecurityControl", "SecurityHeader",
    "SecuritySettings", "SecurityError", "ReplayError", "decrypt", "encrypt", "hls_gmac", "verify_hls_gmac",
    "unwrap_key", "wrap_key", "overhead", "CIPHER_OVERHEAD",
]


class SecurityControl(IntFlag):
    """The security control byte (suite id in bits 0..3)."""

    NONE = 0
    AUTHENTICATION = 0x10
    ENCRYPTION = 0x20
    AUTHENTICATED_ENCRYPTED = 0x30
    BROADCAST_KEY = 0x40
    COMPRESSION = 0x80


class KeyId(IntEnum):
    """key_id of Security setup's key_transfer (global_key_transfer)."""

    GLOBAL_UNICAST_ENCRYPTION = 0
    GLOBAL_BROADCAST_ENCRYPTION = 1
    AUTHENTICATION = 2
    MASTER = 3


# the bits as plain ints for the per-APDU paths: ``int & IntFlag`` runs the flag's Python
# __rand__ (a few microseconds each, several per APDU); ``int & int`` does not
_AUTHENTICATION = int(SecurityControl.AUTHENTICATION)
_ENCRYPTION = int(SecurityControl.ENCRYPTION)
_COMPRESSION = int(SecurityControl.COMPRESSION)


@dataclass(frozen=True, slots=True)
class SecurityHeader:
    control: int
    invocation_counter: int

    @property
    def authenticated(self) -> bool:
        return bool(self.control & _AUTHENTICATION)

    @property
    def encrypted(self) -> bool:
        return bool(self.control & _ENCRYPTION)


# the bytes a service-specific (glo-/ded-) ciphered APDU adds to its plain APDU:
# tag, a length of up to 3 octets, the security header and the tag
CIPHER_OVERHEAD = 1 + 3 + HEADER_LENGTH + TAG_LENGTH


def overhead(general: bool = False) -> int:
    """Octets that ciphering adds to an APDU (general-glo also carries the system title)."""
    return CIPHER_OVERHEAD + (1 + SYSTEM_TITLE_LENGTH if general else 0)


# --- AES-GCM -----------------------------------------------------------------------------

# cryptography is imported where a key is first used, not with this module: a client of
# the public association (``bijli read``) never ciphers, and the import is ~15 ms of its
# start-up (issue 16). Every call after the first finds the module loaded.
if TYPE_CHECKING:  # pragma: no cover
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_AEAD_CACHE: dict[bytes, AESGCM] = {}


def _aead(key: bytes) -> AESGCM:
    aead = _AEAD_CACHE.get(key)
    if aead is None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        if len(key) != 16:
            raise SecurityError(f"suite 0 keys are 16 octets, not {len(key)}")
        if len(_AEAD_CACHE) > 64:
            _AEAD_CACHE.clear()  # keys change rarely; bound the cache anyway
        aead = _AEAD_CACHE[key] = AESGCM(key)
    return aead


def _iv(system_title: bytes, ic: int) -> bytes:
    if len(system_title) != SYSTEM_TITLE_LENGTH:
        raise SecurityError(f"system title must be 8 octets, not {len(system_title)}")
    if not 0 <= ic <= IC_LIMIT:
        raise SecurityError(f"invocation counter {ic} out of range")
    return system_title + ic.to_bytes(4, "big")


def _ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    # GCM without its tag is CTR mode starting at counter block IV || 00000002
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key), modes.CTR(iv + b"\x00\x00\x00\x02"))
    enc = cipher.encryptor()
    return enc.update(data) + enc.finalize()


def _gcm_open(aead: AESGCM, iv: bytes, ciphertext: bytes, tag: bytes, aad: bytes) -> bytes:
    """GCM decryption checked against a truncated (12-octet) tag; SecurityError if it fails.

    AESGCM.decrypt takes only whole 16-octet tags, and a ``Cipher``/``GCM`` decryptor
    costs an object tree and a key schedule per APDU. GCM is deterministic for a key
    and IV, so the tag check is done by definition: GCM encryption is CTR from counter
    block 2, so encrypting the ciphertext under the same IV gives the plaintext back
    (its tag is of no use); encrypting that plaintext gives the sender's ciphertext and
    the whole tag, whose first 12 octets must equal the tag received. Nothing is
    returned before that comparison (constant time) has passed."""
    plain = aead.encrypt(iv, ciphertext, None)[: len(ciphertext)] if ciphertext else b""
    full_tag = aead.encrypt(iv, plain, aad)[len(plain):]
    if not hmac.compare_digest(full_tag[:TAG_LENGTH], tag):
        raise SecurityError("authentication tag mismatch")
    return plain


def encrypt(control: int, system_title: bytes, ic: int, key: bytes, auth_key: bytes, plaintext: bytes) -> bytes:
    """SC || IC || ciphered payload (with a 12-octet tag when authenticated)."""
    iv = _iv(system_title, ic)
    header = bytes((control,)) + ic.to_bytes(4, "big")
    sc = bytes((control,))
    auth = control & _AUTHENTICATION
    enc = control & _ENCRYPTION
    if auth and enc:
        out = _aead(key).encrypt(iv, plaintext, sc + auth_key)
        return header + out[:-16] + out[-16 : -16 + TAG_LENGTH]
    if auth:
        tag = _aead(key).encrypt(iv, b"", sc + auth_key + plaintext)
        return header + plaintext + tag[:TAG_LENGTH]
    if enc:
        _aead(key)  # validates the key length
        return header + _ctr(key, iv, plaintext)
    raise SecurityError(f"security control 0x{control:02x} neither authenticates nor encrypts")


def read_header(content: bytes) -> SecurityHeader:
    if len(content) < HEADER_LENGTH:
        raise SecurityError("ciphered content shorter than its security header")
    control = content[0]
    if control & 0x0F != SUITE_0:
        raise SecurityError(f"security suite {control & 0x0F} not supported")
    if control & _COMPRESSION:
        raise SecurityError("compressed APDUs are not supported")
    return SecurityHeader(control, int.from_bytes(content[1:5], "big"))


def decrypt(content: bytes, system_title: bytes, key: bytes, auth_key: bytes,
            header: SecurityHeader | None = None) -> tuple[SecurityHeader, bytes]:
    """The security header and plaintext of SC || IC || payload; SecurityError if the tag fails.
    ``header``: what :func:`read_header` already gave for this very ``content``."""
    if header is None:
        header = read_header(content)
    control = header.control
    iv = _iv(system_title, header.invocation_counter)
    body = bytes(content[HEADER_LENGTH:])
    sc = bytes((control,))
    if control & _AUTHENTICATION:
        if len(body) < TAG_LENGTH:
            raise SecurityError("ciphered content shorter than its authentication tag")
        payload, tag = body[:-TAG_LENGTH], body[-TAG_LENGTH:]
        aead = _aead(key)  # also refuses a key that is not 16 octets
        if control & _ENCRYPTION:
            plain = _gcm_open(aead, iv, payload, tag, sc + auth_key)
        else:
            _gcm_open(aead, iv, b"", tag, sc + auth_key + payload)
            plain = payload
        return header, plain
    if control & _ENCRYPTION:
        _aead(key)
        return header, _ctr(key, iv, body)
    raise SecurityError(f"security control 0x{header.control:02x} neither authenticates nor encrypts")


# --- HLS mechanism 5 ----------------------------------------------------------------------


def hls_gmac(system_title: bytes, ic: int, key: bytes, auth_key: bytes, challenge: bytes) -> bytes:
    """f(challenge) = SC || IC || GMAC(SC || AK || challenge): 17 octets."""
    sc = bytes((SecurityControl.AUTHENTICATION,))
    tag = _aead(key).encrypt(_iv(system_title, ic), b"", sc + auth_key + challenge)
    return sc + ic.to_bytes(4, "big") + tag[:TAG_LENGTH]


def verify_hls_gmac(reply: bytes, system_title: bytes, key: bytes, auth_key: bytes, challenge: bytes) -> int:
    """Check the peer's f(challenge); the IC it used, or SecurityError."""
    if len(reply) != 1 + 4 + TAG_LENGTH or reply[0] != SecurityControl.AUTHENTICATION:
        raise SecurityError("HLS-GMAC reply is not SC(0x10) || IC || 12-octet tag")
    ic = int.from_bytes(reply[1:5], "big")
    expected = hls_gmac(system_title, ic, key, auth_key, challenge)
    if not hmac.compare_digest(expected, reply):
        raise SecurityError("HLS-GMAC reply does not match the challenge")
    return ic


# --- key transfer (RFC 3394 AES key wrap under the master key) ---------------------------


def wrap_key(kek: bytes, key: bytes) -> bytes:
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap

    try:
        return aes_key_wrap(kek, key)
    except ValueError as exc:
        raise SecurityError(f"cannot wrap key: {exc}") from None


def unwrap_key(kek: bytes, wrapped: bytes) -> bytes:
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

    try:
        return aes_key_unwrap(kek, wrapped)
    except (InvalidUnwrap, ValueError):
        raise SecurityError("key unwrap failed (wrong master key or damaged data)") from None


# --- invocation counters ------------------------------------------------------------------


class CounterStore(Protocol):
    """Where invocation counters survive a restart (the meter's non-volatile memory)."""

    def load(self) -> dict[str, int]: ...

    def save(self, name: str, value: int) -> None:
        """Keep ``value`` durably before returning; :class:`CounterStoreError` if it cannot."""
        ...

    def save_many(self, values: dict[str, int]) -> None:
        """Keep every one of ``values`` durably before returning, all or none (one write
        where the store can: a meter's is one transaction); :class:`CounterStoreError`."""
        ...


class MemoryCounterStore:
    """A CounterStore in a dict: tests, tools, and meters without persistence."""

    def __init__(self, values: dict[str, int] | None = None):
        self.values = dict(values or {})
        self.saves = 0

    def load(self) -> dict[str, int]:
        return dict(self.values)

    def save(self, name: str, value: int) -> None:
        self.values[name] = value
        self.saves += 1

    def save_many(self, values: dict[str, int]) -> None:
        for name, value in values.items():  # a dict cannot fail half way: one save each
            self.save(name, value)


TX_COUNTER = "tx"
DEFAULT_RESERVE_STEP = 10_000  # invocation counters reserved per durable write (see SecuritySettings)


def rx_counter_name(system_title: bytes) -> str:
    if system_title.__class__ is not bytes:  # (a bytearray or view cannot be a key)
        return "rx:" + bytes(system_title).hex()
    name = _RX_NAMES.get(system_title)
    if name is None:
        if len(_RX_NAMES) >= 256:
            _RX_NAMES.clear()  # a server has a few clients; strangers cannot grow it without bound
        name = _RX_NAMES[system_title] = "rx:" + system_title.hex()
    return name


# each ciphered request looks its client's counter up twice (check, then accept)
_RX_NAMES: dict[bytes, str] = {}


class InvocationCounters:
    """The server's own IC and the lowest IC still acceptable from each client."""

    def __init__(self, store: CounterStore | None = None, reserve_step: int = DEFAULT_RESERVE_STEP):
        self.store = store if store is not None else MemoryCounterStore()
        self.reserve_step = max(1, reserve_step)
        self._stored = {k: int(v) for k, v in self.store.load().items()}
        self._next = dict(self._stored)  # name -> next usable / acceptable value

    def _reserve(self, name: str, value: int) -> None:
        """Keep a step above ``value`` in the store (CounterStoreError: nothing changes).
        The same write tops up every other counter with less than half a step left (the
        server's own among them, known or not): a client's first ciphered association
        needs its own counter and the server's reserved, and that is one durable write
        (one fsync'd commit of the meter's memory), not one per counter."""
        wanted = {name: min(value + self.reserve_step, IC_LIMIT + 1)}
        for other in (TX_COUNTER, *self._next):
            position = self._next.get(other, 0)
            if other not in wanted and self._stored.get(other, 0) < position + self.reserve_step // 2:
                wanted[other] = min(position + self.reserve_step, IC_LIMIT + 1)
        self.store.save_many(wanted)
        self._stored.update(wanted)

    def _advance(self, name: str, next_value: int) -> None:
        if next_value > self._stored.get(name, 0):
            self._reserve(name, next_value)  # kept before used: a failure moves nothing
        self._next[name] = next_value

    def reserve_ahead(self) -> None:
        """Reserve a whole step ahead of every counter known now, in the store (a start-up,
        which writes anyway): the ciphered APDUs after it need no write until a step is
        used, so a meter whose storage fails later still serves the clients it knows."""
        for name in (TX_COUNTER, *self._next):
            value = self._next.get(name, 0)
            if self._stored.get(name, 0) < min(value + self.reserve_step, IC_LIMIT + 1):
                self._reserve(name, value)

    def next_tx(self) -> int:
        """A fresh IC for an APDU we send; never the same twice, even across restarts."""
        ic = self._next.get(TX_COUNTER, 0)
        if ic > IC_LIMIT:
            raise SecurityError("the server's invocation counter is exhausted: new keys are needed")
        self._advance(TX_COUNTER, ic + 1)
        return ic

    def expected_rx(self, system_title: bytes) -> int:
        """The lowest IC the client with this system title may use next."""
        return self._next.get(rx_counter_name(system_title), 0)

    def accept_rx(self, system_title: bytes, ic: int) -> None:
        """Record a client IC; ReplayError if it is not above every one accepted before."""
        name = rx_counter_name(system_title)
        lowest = self._next.get(name, 0)
        if ic < lowest:
            raise ReplayError(f"invocation counter {ic} is below {lowest}: replayed or stale")
        self._advance(name, ic + 1)

    def check_rx(self, system_title: bytes, ic: int) -> None:
        """Like accept_rx without recording (for a tag check still to come)."""
        lowest = self._next.get(rx_counter_name(system_title), 0)
        if ic < lowest:
            raise ReplayError(f"invocation counter {ic} is below {lowest}: replayed or stale")

    def reset_rx(self, system_title: bytes) -> None:
        """Keys changed: the client's counter may start again from 0."""
        name = rx_counter_name(system_title)
        self._next[name] = 0
        self._stored[name] = 0
        self.store.save(name, 0)

    def positions(self) -> dict[str, int]:
        """The counters' RAM: the next usable or acceptable value per name. The store holds
        only reservations above them; a host that keeps a powered server's RAM apart (a
        fleet's dormant meter) keeps this and hands it to :meth:`resume`."""
        return dict(self._next)

    def resume(self, positions: dict[str, int]) -> None:
        """Carry on at ``positions`` (what :meth:`positions` returned for this store, the
        meter powered throughout): no store write when they are within the reservations,
        as they are unless the store was changed behind our back (then reserve again, all
        in one write: the positions are in place first, so it tops up every short one)."""
        before = dict(self._next)
        self._next.update(positions)
        try:
            for name, value in positions.items():
                if value > self._stored.get(name, 0):
                    self._reserve(name, value)
        except BaseException:
            self._next = before  # nothing reserved, nothing moved
            raise

    def unflushed(self) -> dict[str, int]:
        """The exact values the store holds only reservations for (what :meth:`flush` writes)."""
        return {name: value for name, value in self._next.items() if self._stored.get(name) != value}

    def flushed(self, values: dict[str, int]) -> None:
        """``values`` (from :meth:`unflushed`) were kept by the store's owner in a write of
        its own: a meter's stop commits them with its last step, one commit, not one per
        counter."""
        self._stored.update(values)

    def flush(self) -> None:
        """Store the exact values (a clean shutdown): nothing is skipped on restart."""
        for name, value in self.unflushed().items():
            self.store.save(name, value)
            self._stored[name] = value


# --- the server's security settings -------------------------------------------------------

DEFAULT_MASTER_KEY = bytes(range(16))


@dataclass
class SecuritySettings:
    """What the meter configuration gives the DLMS server for security suite 0.

    Keys may change at run time (key_transfer), so this is a plain dataclass the
    server owns; ``on_key_change(key_id, key)`` lets the owner persist a new key.
    """

    system_title: bytes
    encryption_key: bytes = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    authentication_key: bytes = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    master_key: bytes = DEFAULT_MASTER_KEY
    broadcast_key: bytes | None = None
    counter_store: CounterStore | None = None
    # Each reservation is one durable write of the meter's memory (a transaction and an
    # fsync, 2-20 ms on a Raspberry Pi's SD card or a busy PC), once per reserve_step
    # APDUs in each direction: at 1,000 that was up to 20 us of every ciphered GET. At
    # 10,000 it is at most 2 us, and a crash skips at most 10,000 of the 2^32 counters.
    reserve_step: int = DEFAULT_RESERVE_STEP
    # security control a ciphered association requires of every request
    required_control: int = SecurityControl.AUTHENTICATED_ENCRYPTED
    challenge_length: int = 16
    random: Callable[[int], bytes] = os.urandom
    on_key_change: Callable[[KeyId, bytes], None] | None = None
    counters: InvocationCounters = field(init=False)

    def __post_init__(self) -> None:
        if len(self.system_title) != SYSTEM_TITLE_LENGTH:
            raise SecurityError("the server system title must be 8 octets")
        for name in ("encryption_key", "authentication_key", "master_key"):
            if len(getattr(self, name)) != 16:
                raise SecurityError(f"{name} must be 16 octets")
        if not 8 <= self.challenge_length <= 64:
            raise SecurityError("HLS challenges are 8..64 octets")
        self.counters = InvocationCounters(self.counter_store, self.reserve_step)

    def set_key(self, key_id: KeyId, key: bytes) -> None:
        if len(key) != 16:
            raise SecurityError("suite 0 keys are 16 octets")
        attr = {KeyId.GLOBAL_UNICAST_ENCRYPTION: "encryption_key", KeyId.GLOBAL_BROADCAST_ENCRYPTION: "broadcast_key",
                KeyId.AUTHENTICATION: "authentication_key", KeyId.MASTER: "master_key"}[key_id]
        setattr(self, attr, key)
        if self.on_key_change is not None:
            self.on_key_change(key_id, key)
