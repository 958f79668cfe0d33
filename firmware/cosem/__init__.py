"""The binding wing: everything in the firmware that speaks COSEM.

The firmware's own modules (metrology, tariff, prepaid, relay, profiles, events,
storage, sts) know nothing of DLMS; this sub-package is the only firmware code
that imports :mod:`bijli.dlms`. It binds live firmware state to
:mod:`bijli.dlms.cosem` objects (the IS 15959-2 object list), maps firmware
errors to COSEM results, and writes storage only inside the meter's own
transaction.
"""
