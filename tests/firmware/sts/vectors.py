"""Loads the shared known-answer vectors (read-only, beside the clone in CI)."""

import json
from functools import lru_cache
from pathlib import Path

SHARED_STS = Path(__file__).resolve().parents[3] / ".." / "shared" / "sts"


@lru_cache(maxsize=None)
def vectors() -> dict:
    return json.loads((SHARED_STS / "vectors.json").read_text())


def sboxes() -> dict:
    return json.loads((SHARED_STS / "misty1-sboxes.json").read_text())
