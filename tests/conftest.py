"""What every test run shares: the Hypothesis profile, the repository root, and a vend journal
of the suite's own.

A running meter comes from bijli's own pytest plugin (bijli.tools.testing, entry point
``bijli``), the fixtures a user's CI gets: ``bijli_meter``, ``bijli_meter_factory``,
``bijli_fleet``. Our tests use those, so there is one way to start a meter for a test.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings

# CI (CI=true, as .ci/run is started) replays the same Hypothesis examples on every run, so
# a landing never hangs on luck; everywhere else, and in `make soak`, each run explores anew.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "explore")

ROOT = Path(__file__).resolve().parents[1]

# `bijli token vend` keeps a per-meter TID journal (by default in the user's state folder);
# the suite's vends, in-process and in subprocesses, keep theirs in a folder of its own
if "BIJLI_VEND_JOURNAL" not in os.environ:
    import tempfile
    os.environ["BIJLI_VEND_JOURNAL"] = os.path.join(tempfile.mkdtemp(prefix="bijli-tests-"), "vend-journal.json")
