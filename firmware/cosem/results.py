"""Firmware errors as COSEM results: the one place a firmware refusal becomes a DLMS answer.

The firmware raises its own errors (:class:`bijli.firmware.errors.FirmwareError` and
its subclasses) and knows nothing of DLMS; a COSEM object answers a GET, SET or
ACTION with a Data-Access-Result or an Action-Result (IEC 62056-5-3, the
``CosemError`` of :mod:`bijli.dlms.cosem.base`). A firmware error is therefore never
also a ``CosemError``: the binding wing calls the meter inside :func:`cosem_result`,
which turns what the firmware refused into the result the standard names for it.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from bijli.dlms.apdu import DataAccessResult
from bijli.dlms.cosem.base import CosemError
from bijli.firmware.errors import FirmwareError, StorageError
from bijli.firmware.prepaid import EmergencyRefused
from bijli.firmware.profiles import ProfileError
from bijli.firmware.push import PushError

#: the result for each kind of firmware refusal, most specific first. A request the
#: meter cannot serve now but may later (the push outbox is busy, emergency credit not
#: yet selectable, storage failing so nothing could be committed) is temporary-failure; a request that does not fit the meter's
#: definition (a selective read outside a profile's columns, a billing day of 31) is
#: other-reason, the Blue Book's answer for a refusal it names no closer code for.
RESULTS: tuple[tuple[type[FirmwareError], DataAccessResult], ...] = (
    (PushError, DataAccessResult.TEMPORARY_FAILURE),
    (EmergencyRefused, DataAccessResult.TEMPORARY_FAILURE),
    (StorageError, DataAccessResult.TEMPORARY_FAILURE),
    (ProfileError, DataAccessResult.OTHER_REASON),
    (FirmwareError, DataAccessResult.OTHER_REASON),
)


def result_for(exc: FirmwareError) -> DataAccessResult:
    """The COSEM result for a firmware error (the first matching row of :data:`RESULTS`)."""
    for kind, result in RESULTS:
        if isinstance(exc, kind):
            return result
    raise TypeError(f"{type(exc).__name__} is not a firmware error")  # unreachable: FirmwareError is last


def refusal(exc: FirmwareError) -> CosemError:
    """The CosemError a COSEM object raises for ``exc``, carrying its message."""
    return CosemError(result_for(exc), str(exc))


def host_refusal(exc: Exception) -> CosemError | None:
    """For the DLMS server (its ``host_refusal``): a firmware error that reached it from
    an object that did not call the meter inside :func:`cosem_result` is still the result
    the standard names for it; any other exception is not the meter's refusal (None)."""
    return refusal(exc) if isinstance(exc, FirmwareError) else None


@contextmanager
def cosem_result() -> Iterator[None]:
    """Run a call into the firmware; a FirmwareError it raises leaves as its COSEM result."""
    try:
        yield
    except FirmwareError as exc:
        raise refusal(exc) from None
