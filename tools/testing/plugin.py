"""The pytest plugin ``bijli`` (entry point ``pytest11``): fixtures for a running meter.

It defines fixtures and nothing else (no options, no hooks), so installing bijli
changes no test run until a test asks for one of them. Each fixture starts real
processes in the test's own temporary directory and stops them when the test ends.
"""

from __future__ import annotations

import pytest

from bijli.tools.testing.meter import RunningFleet, RunningMeter


@pytest.fixture
def bijli_meter_factory(tmp_path_factory):
    """``start(**options) -> RunningMeter``: as many meters as the test wants, each on its
    own state directory unless ``state=`` names one (a restart on the same memory).
    Options are :meth:`RunningMeter.start`'s; ``chaos=SEED`` (with ``chaos_kinds=``,
    ``chaos_rate=``) gives a hostile meter to test a head-end against."""
    started: list[RunningMeter] = []

    def start(state=None, **options) -> RunningMeter:
        meter = RunningMeter.start(state or tmp_path_factory.mktemp("bijli-meter"), **options)
        started.append(meter)
        return meter

    yield start
    for meter in started:
        meter.stop()


@pytest.fixture
def bijli_meter(bijli_meter_factory) -> RunningMeter:
    """A demo meter with every port open and its simulated clock at Friday 14 June 2024,
    17:00 IST, standing still until the test steps it."""
    return bijli_meter_factory()


@pytest.fixture
def bijli_fleet_factory(tmp_path_factory):
    """``start(count, **options) -> RunningFleet``."""
    started: list[RunningFleet] = []

    def start(count: int = 3, **options) -> RunningFleet:
        fleet = RunningFleet.start(tmp_path_factory.mktemp("bijli-fleet"), count, **options)
        started.append(fleet)
        return fleet

    yield start
    for fleet in started:
        fleet.stop()


@pytest.fixture
def bijli_fleet(bijli_fleet_factory) -> RunningFleet:
    """Three meters in one ``bijli fleet`` process, with its manifest."""
    return bijli_fleet_factory(3)
