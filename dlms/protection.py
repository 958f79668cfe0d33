"""Wrapping and unwrapping ciphered xDLMS APDUs: the one place that knows the containers.

IEC 62056-5-3 clause 9.2.7 (cryptographic protection) and the ciphered APDUs of
clause 9.5, for security suite 0 (AES-128-GCM, :mod:`dlms.security`). Four kinds of
container carry the same ciphered content (security control, invocation counter,
ciphertext, authentication tag):

* service-specific glo-xxx / ded-xxx (e.g. 0xC8 glo-get-request): the tag names the
  service inside and the key (global unicast or dedicated); the sender's system title
  is known from the association (the AARQ calling-AP-title / AARE responding-AP-title);
* general-glo-ciphering 0xDB / general-ded-ciphering 0xDC: any APDU, the sender's
  system title carried in the container;
* general-ciphering 0xDD: transaction-id, originator and recipient system titles,
  date-time, other-information and an optional Key-Info naming the key (identified
  global unicast or broadcast key, or a key wrapped under the master key). With suite 0
  the additional authenticated data is SC || AK as for the other containers (the
  general-ciphering fields enter the AAD only with suites 1 and 2, whose key agreement
  this meter does not implement: an agreed-key is refused).

The server (requests in, answers out the same way), the client (requests out,
answers in) and push (data-notification out) all go through :func:`read`,
:func:`key_for`, :func:`open_content` and :func:`seal`. Counter bookkeeping (replay
windows, the next transmit counter) stays with the caller, which knows whose counter
it is; this module only reads the counter from the header so it can be checked before
anything is deciphered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bijli.dlms import apdu, axdr, security
from bijli.dlms.apdu import KeyInfo, KeyInfoKind, Tag
from bijli.dlms.errors import DlmsError, SecurityError
from bijli.dlms.security import SecurityHeader


class Container(Enum):
    SERVICE_SPECIFIC = "service-specific"  # glo-xxx / ded-xxx
    GENERAL_GLO_DED = "general-glo/ded"  # 0xDB / 0xDC
    GENERAL = "general-ciphering"  # 0xDD


# the members every ciphered request is compared with, read once: an Enum member read as
# a class attribute costs about 200 ns on Python 3.11
_SERVICE_SPECIFIC_CONTAINER = Container.SERVICE_SPECIFIC
_GENERAL_CONTAINER = Container.GENERAL

# every tag that opens a ciphered APDU
PROTECTED_TAGS = frozenset(apdu.GLO_TAGS | apdu.DED_TAGS
                           | {Tag.GENERAL_GLO_CIPHERING, Tag.GENERAL_DED_CIPHERING, Tag.GENERAL_CIPHERING})

_GLO_OR_DED = apdu.GLO_TAGS | apdu.DED_TAGS

# general-ciphering key-id values (Identified-Key)
KEY_ID_GLOBAL_UNICAST = 0
KEY_ID_GLOBAL_BROADCAST = 1
KEK_ID_MASTER = 0


@dataclass(frozen=True, slots=True)
class Protection:
    """How an APDU is protected: its container, whether the dedicated key is used
    (glo-/ded- and 0xDB/0xDC), the security control, and for general-ciphering the
    transaction-id and Key-Info, which an answer repeats."""

    container: Container
    dedicated: bool
    control: int
    transaction_id: bytes = b""
    key_info: KeyInfo | None = None


@dataclass(frozen=True, slots=True)
class Sealed:
    """A received ciphered APDU taken apart but not yet deciphered."""

    protection: Protection
    tag: int
    originator: bytes | None  # the sender's system title when the container carries it
    recipient: bytes | None  # general-ciphering only
    content: bytes  # SC || IC || ciphertext || tag
    header: SecurityHeader

    @property
    def invocation_counter(self) -> int:
        return self.header.invocation_counter


def is_protected(tag: int) -> bool:
    return tag in PROTECTED_TAGS


# a service-specific container's Protection depends only on glo/ded and the control byte
_SERVICE_SPECIFIC: dict[tuple[bool, int], Protection] = {}


def read(data: bytes) -> Sealed:
    """Take a ciphered APDU apart; SecurityError for anything malformed."""
    if not data or data[0] not in PROTECTED_TAGS:
        raise SecurityError("not a ciphered APDU")
    tag = data[0]
    if tag in _GLO_OR_DED:
        # the commonest container, every request of a ciphered association: the tag and
        # one octet string, read here without building the CipheredApdu first
        try:
            length, start = axdr.decode_length(data, 1)
        except DlmsError as exc:
            raise SecurityError(f"malformed ciphered APDU: {exc}") from None
        if start + length != len(data):
            raise SecurityError(f"malformed ciphered APDU: {len(data) - start} octets where the length says {length}")
        content = bytes(data[start:])
        header = security.read_header(content)
        dedicated = tag in apdu.DED_TAGS
        protection = _SERVICE_SPECIFIC.get((dedicated, header.control))
        if protection is None:  # at most 2 x 256 of them
            protection = _SERVICE_SPECIFIC[(dedicated, header.control)] = Protection(
                Container.SERVICE_SPECIFIC, dedicated, header.control)
        return Sealed(protection, tag, None, None, content, header)
    try:
        container = apdu.decode(data)
    except DlmsError as exc:
        raise SecurityError(f"malformed ciphered APDU: {exc}") from None
    tag = data[0]
    if isinstance(container, apdu.CipheredApdu):
        protection_kind, dedicated, originator, recipient = Container.SERVICE_SPECIFIC, tag in apdu.DED_TAGS, None, None
        content, transaction, key_info = container.content, b"", None
    elif isinstance(container, apdu.GeneralGloCiphering):
        protection_kind, dedicated = Container.GENERAL_GLO_DED, tag == Tag.GENERAL_DED_CIPHERING
        originator, recipient, content = container.system_title, None, container.content
        transaction, key_info = b"", None
    else:
        assert isinstance(container, apdu.GeneralCiphering)
        protection_kind, dedicated = Container.GENERAL, False
        originator, recipient = container.originator_system_title, container.recipient_system_title
        content, transaction, key_info = container.content, container.transaction_id, container.key_info
    header = security.read_header(content)
    return Sealed(Protection(protection_kind, dedicated, header.control, transaction, key_info), tag, originator,
                  recipient, content, header)


def key_for(protection: Protection, *, encryption_key: bytes, dedicated_key: bytes | None,
            master_key: bytes | None = None, broadcast_key: bytes | None = None) -> bytes:
    """The block cipher key ``protection`` names (SecurityError if it is not available)."""
    if protection.container is not _GENERAL_CONTAINER:
        if not protection.dedicated:
            return encryption_key
        if dedicated_key is None:
            raise SecurityError("ded-ciphering without a dedicated key in this association")
        return dedicated_key
    info = protection.key_info
    if info is None or (info.kind is KeyInfoKind.IDENTIFIED_KEY and info.key_id == KEY_ID_GLOBAL_UNICAST):
        return encryption_key
    if info.kind is KeyInfoKind.IDENTIFIED_KEY:
        if info.key_id == KEY_ID_GLOBAL_BROADCAST and broadcast_key is not None:
            return broadcast_key
        raise SecurityError(f"general-ciphering key-id {info.key_id} not available")
    if info.kind is KeyInfoKind.WRAPPED_KEY:
        if info.key_id != KEK_ID_MASTER or master_key is None:
            raise SecurityError(f"general-ciphering kek-id {info.key_id} not available")
        key = security.unwrap_key(master_key, info.key_ciphered_data)
        if len(key) != 16:
            raise SecurityError("a wrapped suite 0 key is 16 octets")
        return key
    raise SecurityError("general-ciphering with an agreed key needs security suite 1 or 2")


def open_content(sealed: Sealed, system_title: bytes, key: bytes, authentication_key: bytes) -> bytes:
    """The plain APDU inside ``sealed``, from the sender ``system_title``; SecurityError if the tag fails."""
    _, plain = security.decrypt(sealed.content, system_title, key, authentication_key, sealed.header)
    if sealed.protection.container is _SERVICE_SPECIFIC_CONTAINER:
        # a service-specific container must hold that very service
        if not plain or apdu.PLAIN_OF_CIPHERED.get(sealed.tag) != plain[0]:
            raise SecurityError(f"ciphered tag 0x{sealed.tag:02x} does not hold its own service")
    return plain


def seal(plain: bytes, protection: Protection, *, system_title: bytes, invocation_counter: int, key: bytes,
         authentication_key: bytes, recipient: bytes | None = None) -> bytes:
    """``plain`` ciphered and wrapped as ``protection`` says. A service-specific answer
    whose service has no glo-/ded- tag goes in general-glo/ded-ciphering instead."""
    content = security.encrypt(protection.control, system_title, invocation_counter, key, authentication_key, plain)
    container = protection.container
    if container is _SERVICE_SPECIFIC_CONTAINER:
        tag = (apdu.DED_OF_PLAIN if protection.dedicated else apdu.GLO_OF_PLAIN).get(plain[0])
        if tag is not None:
            return bytes((tag,)) + axdr.encode_length(len(content)) + content  # CipheredApdu(tag, content).encode()
        container = Container.GENERAL_GLO_DED
    if container is Container.GENERAL_GLO_DED:
        tag = Tag.GENERAL_DED_CIPHERING if protection.dedicated else Tag.GENERAL_GLO_CIPHERING
        return apdu.GeneralGloCiphering(tag, system_title, content).encode()
    return apdu.GeneralCiphering(protection.transaction_id, system_title, recipient or b"", b"", b"",
                                 protection.key_info, content).encode()


def overhead(protection: Container | None) -> int:
    """Octets a container adds to an APDU (the most general case when not known)."""
    if protection is Container.SERVICE_SPECIFIC:
        return security.overhead(general=False)
    if protection is Container.GENERAL_GLO_DED or protection is None:
        return security.overhead(general=True)
    # transaction-id (8), two titles, empty date-time and other-information, key-info
    return security.overhead(general=True) + 9 + 9 + 2 + 1 + 40
