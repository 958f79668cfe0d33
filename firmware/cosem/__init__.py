"""The binding wing: everything in the firmware that speaks COSEM.

The firmware's own modules (metrology, tariff, prepaid, relay, profiles, events,
storage, sts) know nothing of DLMS; this sub-package is the only firmware code
that imports :mod:`bijli.dlms`. It binds live firmware state to
:mod:`bijli.dlms.cosem` objects (the IS 15959-2 object list), maps firmware
errors to COSEM results, and writes storage only inside the meter's own
transaction (through the Meter's inputs and ``Meter.keep_setting``).

One job per module:

- ``catalogue``: the OBIS code of every object, the client SAPs, what the public client sees;
- ``clock``: the Clock and the one time-zone deviation (Blue Book sign, IST -330);
- ``quantities``: the one QUANTITIES table (A-XDR type, scaler, unit) and money in paisa;
- ``results``: firmware errors as Data-Access-Results (a firmware error is never a CosemError);
- ``associations``: the three associations, their secrets and keys, the invocation counters;
- ``registers``: registers of every measured quantity, name plate data, last event codes;
- ``profiles``: firmware profiles as Profile generic sources, name plate and scaler profiles;
- ``payment``: Account, Credit and Charge (IC 111-113) and the IS 15959 prepaid data objects;
- ``token_gateway``: the token gateway (IC 115) in front of ``Meter.enter_token``;
- ``supply``: Disconnect control (IC 70) and Limiter (IC 71) over the relay and load limiter;
- ``schedules``: billing date, activity calendar, special days and the script tables;
- ``tod``: the passive calendar and prices a head-end writes, and their activation;
- ``push``: the Push setup object over the firmware's push outbox;
- ``communication``: HDLC, TCP-UDP, SAP assignment and optical port set-up objects;
- ``object_list``: ``build_objects``, which assembles them all for one Meter.
"""
