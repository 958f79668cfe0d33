"""Loads the STS known-answer vectors the project carries in ``tests/firmware/sts/data``.

They are facts (public test vectors and the MISTY1 S-box tables), kept in the tree so a
clone with no sibling folders tests the same as CI."""

import json
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


@lru_cache(maxsize=None)
def vectors() -> dict:
    return json.loads((DATA / "vectors.json").read_text())


def sboxes() -> dict:
    return json.loads((DATA / "misty1-sboxes.json").read_text())
