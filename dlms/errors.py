"""One error hierarchy for the DLMS/COSEM stack.

Every decoder in ``dlms`` raises only subclasses of :class:`DlmsError` on bad
input (never IndexError, struct.error or ValueError), so a server can catch
``DlmsError`` around one peer's bytes and keep serving everyone else. The split
follows the layers of IEC 62056-5-3 / -46 / -47 so a caller can tell a garbled
frame (drop it) from a refused request (answer it) from a security failure
(count it towards lockout).
"""


class DlmsError(Exception):
    """Root of every error raised by the ``dlms`` package."""


# --- decoding: the bytes themselves are wrong ---------------------------------
class DecodeError(DlmsError):
    """Bytes that do not parse as what they claim to be."""


class AxdrError(DecodeError):
    """Malformed A-XDR data (IEC 62056-6-2 / -5-3 encoding of Data)."""


class ObisError(DlmsError, ValueError):
    """Not a valid OBIS code (IEC 62056-6-1)."""


class BerError(DecodeError):
    """Malformed BER in an ACSE APDU (AARQ, AARE, RLRQ, RLRE)."""


class ApduError(DecodeError):
    """Malformed or unknown xDLMS APDU."""


# --- link layers ---------------------------------------------------------------
class LinkError(DlmsError):
    """A data-link layer problem (HDLC, wrapper, mode E)."""


class FrameError(LinkError, DecodeError):
    """A frame that fails its format, length or CRC check."""


class HdlcError(LinkError):
    """An HDLC frame or state violation (IEC 62056-46)."""


class WrapperError(LinkError):
    """A wrapper (IEC 62056-47) header violation: bad version or length."""


class ModeEError(LinkError):
    """An IEC 62056-21 opening sequence that cannot be honoured."""


class LocalProtocolError(DlmsError):
    """Our own side tried to do something the state machine forbids."""


class RemoteProtocolError(DlmsError):
    """The peer did something the state machine forbids."""


# --- application layer ----------------------------------------------------------
class AssociationError(DlmsError):
    """An application association could not be established or is not open."""


class AuthenticationError(AssociationError):
    """Wrong password, wrong HLS response, or locked out."""


class SecurityError(DlmsError):
    """A ciphered APDU failed: bad tag, unknown key, or a replayed invocation counter."""


class ReplayError(SecurityError):
    """An invocation counter not greater than the last one accepted."""


class CounterStoreError(DlmsError):
    """The invocation counters could not be reserved in durable memory (the host's storage
    fails): nothing that needs a new reservation is accepted or sent until it can be, since
    a counter used but not kept could be used again after a restart."""


class LockoutError(DlmsError):
    """A lockout policy or a kept lockout record that does not make sense (dlms.lockout)."""


class AccessError(DlmsError):
    """An attribute or method the association has no right to use."""


class ServiceError(DlmsError):
    """A service that the peer answered with a data-access-result or exception."""

    def __init__(self, message: str, result: int | None = None):
        super().__init__(message)
        self.result = result
