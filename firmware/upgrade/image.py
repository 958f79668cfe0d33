"""Signing keys and the signed image container: build, parse and verify a bijli image.

What a head-end sends with DLMS image transfer (IEC 62056-6-2 clause 4.4.6) is one of
these containers; the store (:mod:`.store`) trusts a received image only once
:func:`verify_image` has checked its size, its SHA-256 and its Ed25519 or ECDSA P-256
signature (FIPS 186-5; RFC 8032 for Ed25519) by the key in the ``[upgrade]`` table, and
that its payload is a bijli build whose members stay inside the image directory.
The container is described with construct, as its figure reads.

Signed image container, format 1 (integers big-endian)::

    offset  size  field
    0       4     magic "BJLI"
    4       1     format version (1)
    5       1     signature algorithm: 1 Ed25519, 2 ECDSA P-256 with SHA-256 (DER signature)
    6       1     payload kind: 1 wheel, 2 zip
    7       1     name length N (1..64)
    8       N     payload name, UTF-8 (e.g. "bijli")
    8+N     1     version length V (1..64)
    9+N     V     version, UTF-8 (e.g. "0.2.0")
    9+N+V   8     payload length L
    17+N+V  32    SHA-256 of the payload
    49+N+V        -- end of the signed header --
    49+N+V  2     signature length S (1..255)
    51+N+V  S     signature over the signed header (octets 0 .. 48+N+V)
    51+N+V+S L    payload: a pure-Python wheel or zip of a bijli build

The signature covers every header field, and through the SHA-256 in the header
the payload, without hashing the payload twice. The DLMS image_identifier of a
transfer is ``NAME-VERSION`` (``b"bijli-0.2.0"``) and must match the header.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from dataclasses import dataclass
from enum import IntEnum

import construct
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from bijli.firmware.upgrade.errors import ImageFormatError, UpgradeError, VerificationError

MAGIC = b"BJLI"
FORMAT_VERSION = 1

# The container, as its figure reads: the signature covers HEADER's octets (the payload
# through its SHA-256); SIGNATURE and the payload follow.
HEADER = construct.Struct(
    "magic" / construct.Bytes(4),
    "format" / construct.Int8ub,
    "algorithm" / construct.Int8ub,          # SignatureAlgorithm
    "kind" / construct.Int8ub,               # PayloadKind
    "name" / construct.PascalString(construct.Int8ub, "utf8"),
    "version" / construct.PascalString(construct.Int8ub, "utf8"),
    "payload_length" / construct.Int64ub,
    "payload_sha256" / construct.Bytes(32),
)
SIGNATURE = construct.Prefixed(construct.Int16ub, construct.GreedyBytes)
ENTRY_MODULE = "bijli/tools/cli.py"  # a payload without it is not a bijli build
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


class SignatureAlgorithm(IntEnum):
    ED25519 = 1
    ECDSA_P256_SHA256 = 2


class PayloadKind(IntEnum):
    WHEEL = 1
    ZIP = 2


# --- keys -----------------------------------------------------------------------------------

def load_public_key(text: str):
    """A verification key from PEM (SubjectPublicKeyInfo) or hex: 32 octets Ed25519, or
    a P-256 point (65 octets uncompressed, 33 compressed). Raises UpgradeError."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            raw = bytes.fromhex(text.replace(" ", "").replace(":", ""))
            if len(raw) == 32:
                key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            elif len(raw) in (33, 65):
                key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
            else:
                raise UpgradeError(f"a hex key is 32 (Ed25519) or 33/65 (P-256) octets, not {len(raw)}")
    except UpgradeError:
        raise
    except (ValueError, TypeError, UnicodeError) as exc:
        raise UpgradeError(f"not a usable public key: {exc}") from None
    algorithm_of(key)
    return key


def algorithm_of(key) -> SignatureAlgorithm:
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return SignatureAlgorithm.ED25519
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)) and key.curve.name == "secp256r1":
        return SignatureAlgorithm.ECDSA_P256_SHA256
    raise UpgradeError(f"unsupported key type {type(key).__name__}: use Ed25519 or ECDSA P-256")


def load_private_key(pem: bytes):
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise UpgradeError(f"not an unencrypted PEM private key: {exc}") from None
    algorithm_of(key)
    return key


def generate_private_key(algorithm: SignatureAlgorithm = SignatureAlgorithm.ED25519) -> bytes:
    """A new signing key as unencrypted PKCS#8 PEM."""
    key = (ed25519.Ed25519PrivateKey.generate() if algorithm == SignatureAlgorithm.ED25519
           else ec.generate_private_key(ec.SECP256R1()))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def public_key_pem(private_key) -> str:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


# --- the container -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageHeader:
    algorithm: SignatureAlgorithm
    kind: PayloadKind
    name: str
    version: str
    payload_length: int
    payload_sha256: bytes

    @property
    def identifier(self) -> bytes:
        """The DLMS image_identifier of this image."""
        return f"{self.name}-{self.version}".encode("utf-8")

    def encode(self) -> bytes:
        for what, text in (("name", self.name), ("version", self.version)):
            if not 1 <= len(text.encode("utf-8")) <= 64:
                raise ImageFormatError(f"payload {what} must be 1..64 octets")
        return HEADER.build({"magic": MAGIC, "format": FORMAT_VERSION, "algorithm": int(self.algorithm),
                             "kind": int(self.kind), "name": self.name, "version": self.version,
                             "payload_length": self.payload_length, "payload_sha256": self.payload_sha256})


@dataclass(frozen=True)
class SignedImage:
    header: ImageHeader
    signed: bytes  # the header octets the signature covers
    signature: bytes
    payload: bytes


def parse_image(data: bytes) -> SignedImage:
    """Split a container into its parts (no trust decided here). Raises ImageFormatError."""
    try:
        stream = io.BytesIO(data)
        h = HEADER.parse_stream(stream)
        signed = data[:stream.tell()]
        signature = SIGNATURE.parse_stream(stream)
    except construct.ConstructError as exc:
        if data[:4] != MAGIC:
            raise ImageFormatError("not a bijli image (bad magic)") from None
        raise ImageFormatError(f"image header unreadable: {exc.__class__.__name__}") from None
    if h.magic != MAGIC:
        raise ImageFormatError("not a bijli image (bad magic)")
    if h.format != FORMAT_VERSION:
        raise ImageFormatError(f"image format {h.format} unknown (this firmware reads {FORMAT_VERSION})")
    try:
        algorithm, payload_kind = SignatureAlgorithm(h.algorithm), PayloadKind(h.kind)
    except ValueError:
        raise ImageFormatError(f"unknown signature algorithm {h.algorithm} or payload kind {h.kind}") from None
    header = ImageHeader(algorithm, payload_kind, h.name, h.version, h.payload_length, h.payload_sha256)
    if not _NAME_RE.fullmatch(header.name) or not _NAME_RE.fullmatch(header.version):
        raise ImageFormatError("payload name or version has characters a file name cannot")
    if not signature:
        raise ImageFormatError("image has no signature")
    return SignedImage(header, signed, signature, data[stream.tell():])


def sign_image(payload: bytes, name: str, version: str, private_key, kind: PayloadKind | None = None) -> bytes:
    """The container for ``payload`` signed with ``private_key`` (Ed25519 or P-256)."""
    algorithm = algorithm_of(private_key)
    if kind is None:
        kind = PayloadKind.WHEEL if name.endswith(".whl") else PayloadKind.ZIP
    header = ImageHeader(algorithm, kind, name, version, len(payload), hashlib.sha256(payload).digest())
    signed = header.encode()
    if algorithm == SignatureAlgorithm.ED25519:
        signature = private_key.sign(signed)
    else:
        signature = private_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    return signed + SIGNATURE.build(signature) + payload


def verify_image(data: bytes, public_key, *, identifier: bytes | None = None) -> SignedImage:
    """The image if it is whole and signed by ``public_key``; else VerificationError/ImageFormatError."""
    image = parse_image(data)
    h = image.header
    if identifier is not None and identifier != h.identifier:
        raise VerificationError(f"identifier {identifier!r} does not name the image ({h.identifier!r})")
    if len(image.payload) != h.payload_length:
        raise VerificationError(f"payload is {len(image.payload)} octets, the header says {h.payload_length}")
    if hashlib.sha256(image.payload).digest() != h.payload_sha256:
        raise VerificationError("payload SHA-256 does not match the header")
    if public_key is None:
        raise VerificationError("no public key configured ([upgrade] public_key)")
    if algorithm_of(public_key) != h.algorithm:
        raise VerificationError(f"image signed with {h.algorithm.name}, the configured key is "
                                f"{algorithm_of(public_key).name}")
    try:
        if h.algorithm == SignatureAlgorithm.ED25519:
            public_key.verify(image.signature, image.signed)
        else:
            public_key.verify(image.signature, image.signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationError("bad signature") from None
    _check_payload(image.payload)
    return image


def _check_payload(payload: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as z:
            names = set(z.namelist())
            for n in names:
                check_member(n)
    except zipfile.BadZipFile:
        raise VerificationError("payload is not a wheel or zip") from None
    if ENTRY_MODULE not in names:
        raise VerificationError(f"payload has no {ENTRY_MODULE}: not a bijli build")


def check_member(name: str) -> None:
    """Refuse a zip member name that would land outside the directory it is unpacked in."""
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
        raise VerificationError(f"payload member {name!r} would land outside the image directory")


__all__ = [
    "ENTRY_MODULE", "FORMAT_VERSION", "HEADER", "MAGIC", "SIGNATURE", "ImageHeader", "PayloadKind",
    "SignatureAlgorithm", "SignedImage", "algorithm_of", "check_member", "generate_private_key",
    "load_private_key", "load_public_key", "parse_image", "public_key_pem", "sign_image", "verify_image",
]
