"""bijli in other people's CI: a running meter as a pytest fixture.

``pip install bijli`` registers a pytest plugin (:mod:`.plugin`, entry point
``pytest11: bijli``). It only defines fixtures, so it changes nothing in a test
run until a test asks for one:

- ``bijli_meter``: a real ``bijli meter`` process on free loopback ports (DLMS
  wrapper and HDLC over TCP), with ptys for its serial port, its optical port and
  its service console, a simulated clock standing still until a test moves it,
  its keys and manifest-style vending parameters: a :class:`RunningMeter`.
- ``bijli_meter_factory``: the same, started with your own options (a config
  file, a start time, no clock at all; ``chaos=SEED`` for a hostile meter that
  misbehaves reproducibly, :mod:`bijli.tools.chaos`).
- ``bijli_fleet``: ``bijli fleet`` with N meters and its manifest.

Each process runs in its own session and its own temporary state directory,
and is stopped (SIGTERM, then SIGKILL of its process group) when the test ends,
so nothing is left running and no port stays bound; ports are picked by the
kernel, so pytest-xdist workers never collide. Disable the plugin with
``-p no:bijli``.

Inputs for property tests are in :mod:`bijli.tools.testing.strategies`, public
Hypothesis strategies (A-XDR, OBIS, xDLMS APDUs, HDLC and wrapper frames, AARQs,
STS tokens and their near-misses). They need Hypothesis (``pip install
'bijli[testing]'``); nothing here imports it, so the fixtures work without it.
"""

from bijli.tools.testing.meter import MeterStartError, RunningFleet, RunningMeter

__all__ = ["MeterStartError", "RunningFleet", "RunningMeter"]
