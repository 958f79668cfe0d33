"""A hostile meter for fuzzing head-ends: ``bijli meter --chaos SEED``.

A real meter in the field answers badly now and then: frames cut short or too long,
wrong lengths, block numbers out of step, exception-responses, replies that come late
or never, connections dropped in the middle of a long read, invocation counters used
twice, GCM tags that do not verify. This package makes a bijli meter do that on
purpose, from a seed, reproducibly: the same seed and the same requests give the
same bytes, so a head-end's failure in CI can be replayed.

- :mod:`.kinds`: the documented list of misbehaviours and which answers each applies to;
- :mod:`.plan`: the sans-IO core, a seeded plan applied answer by answer and write by write;
- :mod:`.shell`: the thin shell between the link shells of ``tools.node.links`` and the
  hal's TCP connections, used only when ``--chaos`` is given.

It is a tools layer: the firmware and the DLMS stack know nothing of it.
"""

from bijli.tools.chaos.kinds import DESCRIPTIONS, ChaosKindError, Misbehaviour, parse_kinds
from bijli.tools.chaos.plan import DEFAULT_RATE, ChaosPlan

__all__ = ["DEFAULT_RATE", "DESCRIPTIONS", "ChaosKindError", "ChaosPlan", "Misbehaviour", "parse_kinds"]
