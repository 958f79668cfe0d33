"""The head-end and vending side of a recharge storm (``bijli storm``).

A vending system sells a token for every meter of a fleet manifest; a head-end
delivers each one through the meter's DLMS token gateway (IEC 62056-6-2 class 115,
0.0.19.40.0.255, method 1 ``enter``) in the utility association (HLS-GMAC, security
suite 0) over the IEC 62056-47 TCP wrapper, many meters at once, and then reads
every meter's credit back. The package is split by job: :mod:`.adapter` is the one
place that calls into :mod:`bijli.dlms`; :mod:`.link` is the asyncio I/O shell;
:mod:`.delivery` is one meter's conversation; :mod:`.journal` the crash-safe
record of what was sold and sent; :mod:`.engine` the scheduler with bounded
concurrency, retries and progress; :mod:`.vending` sells tokens from a manifest;
:mod:`.scenario` replays the Bakrid week on shard processes it drives through their
consoles (:mod:`.shards`); :mod:`.report` summarises and plots.
"""

from __future__ import annotations


class StormError(Exception):
    """Base of every error ``bijli storm`` raises on purpose (bad manifest, damaged journal, ...)."""


class ManifestError(StormError):
    """The manifest cannot be read or a row lacks what a head-end needs."""


class StormJournalError(StormError):
    """The storm journal cannot be read or written, or belongs to another storm."""


class DeliveryError(StormError):
    """One conversation with one meter failed; ``retry`` says whether trying again can help."""

    def __init__(self, message: str, *, retry: bool = True):
        super().__init__(message)
        self.retry = retry


class ScenarioError(StormError):
    """A scenario's fleet did not behave (its console refused a command, a step failed)."""
