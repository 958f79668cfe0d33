"""The soak table: one row per campaign part, the figures of issue 14's "What to build".

A row counts what the part applied (``inputs``: hostile inputs, SIGKILLs, damaged
files or injected faults, named by ``unit``) against the part's ``target`` and every
kind of failure. The failure kinds are the issue's, plus ``wrong``: an answer that is
no crash but still not what the meter promises (an invalid config accepted or
refused without naming its key, a console error without ``error:``, a token refused
for a reason other than the fault). Each failure keeps a short example with the seed
and input index that reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: the failure columns, in table order: (attribute, column heading)
FAILURES = (("crashes", "crash"), ("hangs", "hang"), ("tracebacks", "trace"), ("credit", "credit"),
            ("replays", "replay"), ("unauthorised", "unauth"), ("wrong", "wrong"))


@dataclass
class SoakRow:
    """The figures of one campaign part."""

    part: str
    unit: str  # what ``inputs`` counts: inputs, kills, faults, files, configs, lines, peers
    target: int
    inputs: int = 0
    seconds: float = 0.0
    crashes: int = 0
    hangs: int = 0
    tracebacks: int = 0
    credit: int = 0        # tokens lost or credited twice
    replays: int = 0       # replayed, lower-counter or forged ciphered APDUs accepted
    unauthorised: int = 0  # a read, write or method the association may not do, done
    wrong: int = 0
    examples: list[str] = field(default_factory=list)
    note: str = ""

    def fail(self, kind: str, example: str) -> None:
        """Count one failure of ``kind`` (a FAILURES attribute) and keep its first examples."""
        setattr(self, kind, getattr(self, kind) + 1)
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {example}")

    @property
    def failures(self) -> int:
        return sum(getattr(self, name) for name, _ in FAILURES)

    @property
    def short(self) -> bool:
        return self.inputs < self.target

    def as_dict(self) -> dict:
        out = {name: getattr(self, name) for name in ("part", "unit", "target", "inputs")}
        out["seconds"] = round(self.seconds, 1)
        out.update({name: getattr(self, name) for name, _ in FAILURES})
        out["examples"] = list(self.examples)
        out["note"] = self.note
        return out


def render(rows: list[SoakRow], seed: int) -> str:
    """The one table, then the examples of every failure and the parts short of target."""
    head = ("part", "applied", "target", "s", *(h for _, h in FAILURES))
    body = [(r.part, f"{r.inputs:,} {r.unit}", f"{r.target:,}", f"{r.seconds:.0f}",
             *(str(getattr(r, name)) for name, _ in FAILURES)) for r in rows]
    total_failures = sum(r.failures for r in rows)
    body.append(("total", f"{sum(r.inputs for r in rows):,}", "", f"{sum(r.seconds for r in rows):.0f}",
                 *(str(sum(getattr(r, name) for r in rows)) for name, _ in FAILURES)))
    widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]

    def fmt(line) -> str:
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))

    lines = [fmt(head), "  ".join("-" * w for w in widths)]
    lines += [fmt(line) for line in body[:-1]]
    lines += ["  ".join("-" * w for w in widths), fmt(body[-1])]
    lines.append(f"seed {seed}: {'every failure count is zero' if total_failures == 0 else f'{total_failures} failures'}")
    for r in rows:
        for example in r.examples:
            lines.append(f"  {r.part}: {example}")
        if r.short:
            lines.append(f"  {r.part}: short of its target ({r.inputs:,} of {r.target:,}) in its time share")
        if r.note:
            lines.append(f"  {r.part}: {r.note}")
    return "\n".join(lines)
