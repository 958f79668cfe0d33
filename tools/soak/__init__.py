"""The standing attack-and-fault campaign against a real ``bijli meter`` (issue 14).

``bijli soak`` (and ``make soak``) runs every part below against real meter
processes on loopback, each bounded in time, and prints one table: for each part
the inputs, kills or faults it applied and the count of crashes, hangs,
tracebacks, lost or doubled credit, accepted replays and unauthorised accesses,
which must all be zero. One module per part:

- :mod:`.dlms_fuzz`: hostile APDUs and frames over the TCP wrapper, HDLC over TCP
  and HDLC on a serial pty, before and after association in every association,
  ciphered APDUs with mutated tags, counters, system titles and lengths, replays;
- :mod:`.kills`: SIGKILL of the meter during token entry on the console, the keypad
  and the DLMS token gateway; every acknowledged token credited exactly once;
- :mod:`.disk_full`: the state's filesystem full (RLIMIT_FSIZE on the meter process)
  and then free again;
- :mod:`.damage`: the state database truncated, bit-flipped, emptied, its WAL deleted;
- :mod:`.flood`: a connection flood and slow peers;
- :mod:`.console_fuzz`: the service console fed hostile lines;
- :mod:`.configs`: malformed configuration files.

Everything is driven by one seed (``random.Random``), so a failure is reported with
the part, the seed and the input's index, and ``bijli soak --parts PART --seed N``
replays it. :mod:`.campaign` shares the time budget among the parts; :mod:`.report`
is the table. The same code runs with a small budget in the test suite
(tests/integration/test_soak_slice.py).
"""
