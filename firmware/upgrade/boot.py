"""The launcher's bookkeeping: which image a start runs, and what came of a pending image.

The launcher (:mod:`bijli.tools.node.launcher`) runs before the meter at every start.
It asks :func:`plan_start` which build to run; the running meter reports, through the
launcher's ``mark_healthy``, that it served long enough (:func:`promote`); a launcher
that saw the new image fail says so with :func:`fail_pending`. Both verdicts move the
store's state machine (:data:`bijli.firmware.upgrade.store.TRANSITIONS`, inputs
IMAGE_HEALTHY and IMAGE_FAILED), so the transfer status the head-end reads becomes
activation successful (6) or activation failed (7), with an event for the meter's log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from bijli.firmware.upgrade.record import images_dir, load_record, save_record
from bijli.firmware.upgrade.store import ImageStore


@dataclass(frozen=True)
class StartPlan:
    """What the launcher should run: ``image`` (an installed image's directory name, None for
    the base build) and a line for the log when the plan is not the usual one."""

    image: str | None
    note: str = ""


def plan_start(state_dir: "str | Path", start_attempts: int) -> StartPlan:
    """Decide which image this start runs, and record the decision.

    An armed pending image gets ``start_attempts`` starts to come up healthy; each start
    counts before it happens, so a crash (or a power cut) during a start uses it up. When
    the attempts are spent, the previous image runs again and the activation is recorded
    as failed (status 7, an "activation_failed" event for the meter's log).
    """
    record = load_record(state_dir)
    active = record.active
    if active and not (images_dir(state_dir) / active).is_dir():
        active = None  # an image directory lost: run the base build
        record = replace(record, active=None)
    p = record.pending
    if not p or not p.armed:
        return StartPlan(active)
    if p.attempts < start_attempts:
        p = replace(p, attempts=p.attempts + 1)
        save_record(state_dir, replace(record, pending=p))
        return StartPlan(p.name, f"starting new image {p.name} (attempt {p.attempts} of {start_attempts})")
    detail = f"did not come up healthy in {p.attempts} start(s)"
    if record.active != load_record(state_dir).active:
        save_record(state_dir, record)  # the lost image directory is forgotten too
    ImageStore(state_dir).finish_activation(healthy=False, detail=detail)
    return StartPlan(active, f"image {p.name} {detail}; running {active or 'the base build'} again")


def fail_pending(state_dir: "str | Path", detail: str) -> None:
    """Give up on the pending image now (the launcher saw it fail)."""
    if load_record(state_dir).pending:
        ImageStore(state_dir).finish_activation(healthy=False, detail=detail)


def promote(state_dir: "str | Path", running_image: str | None) -> bool:
    """The meter running ``running_image`` has served long enough: if that is the pending
    image, it becomes the active one (status 6, an "activated" event). True if it did."""
    p = load_record(state_dir).pending
    if not p or not running_image or p.name != running_image:
        return False
    ImageStore(state_dir).finish_activation(healthy=True)
    return True


__all__ = ["StartPlan", "fail_pending", "plan_start", "promote"]
