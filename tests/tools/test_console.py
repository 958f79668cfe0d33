"""The service console never dies (issue 14 item 8, issue 15 items 5 and 9): every line fed
to a real meter's console gets an answer naming what was wrong, and the console keeps serving.
The console is pure (lines in, replies out), so these feed it lines directly; the pty and pipe
shells are tested in tests/integration/test_console_pty.py."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bijli.firmware.console import MAX_LINE, LineAssembler, Reply
from bijli.hal.clock import SimClock
from bijli.tools.node import config as config_mod
from bijli.tools.node.devices import Devices
from bijli.tools.node.meter_node import MeterNode

START = datetime(2024, 6, 14, 18, 0)

# (line, what the answer must say)
BAD_LINES = [
    ("k x", "no key for 'x'"),
    ("k 10 -0.5", "no key for '.'"),
    ("k", "k needs keys"),  # found by `bijli soak`: a bare k answered nothing at all
    ("lcd 1.5h", "lcd takes no arguments"),
    ("token ", "token needs the 20 digits"),
    ("get 1.0.1.8.0.255:9", "no attribute 9"),
    ("get 1.0.1.8.0.255:0", "ATTR must be 1..127, not 0"),
    ("get 1.0.1.8.0.255:x", "ATTR must be a whole number"),
    ("get 1.0.1.8.0.255:", "ATTR must be a whole number"),
    ("load abc", "AMPS must be a number, not 'abc'"),
    ("load nan", "AMPS must be a finite number"),
    ("load 10 1.0 inf", "VOLTS must be a finite number"),
    ("load 1000", "above the meter's maximum current of 60 A"),
    ("load 5 0.9L 1e9", "above 460 V"),
    ("load 5 2.0", "power factor must be within -1..1"),
    ("earth", "earth needs AMPS"),
    ("earth x", "AMPS must be a number, not 'x'"),
    ("earth inf", "AMPS must be a finite number"),
    ("earth 100", "beyond the meter's maximum current of 60 A"),
    ("events x", "N must be a whole number"),
    ("events 0", "N must be 1..10000"),
    ("step nan", "not a duration"),
    ("step 1e300", "longer than 100 years"),
    ("step -5", "negative duration"),
    ("credit now", "credit takes no arguments"),
    ("quit now", "quit takes no arguments"),
    ("'unterminated", "No closing quotation"),
    ("x" * (MAX_LINE + 1), "line longer than"),
]


@pytest.fixture
def node(tmp_path):
    cfg = config_mod.load(None)
    node = MeterNode(cfg, tmp_path, SimClock(START))
    node.attach_devices(Devices(node.meter, cfg.hal))
    yield node
    node.shutdown()


@pytest.mark.parametrize("line,word", BAD_LINES, ids=[b[0][:24] for b in BAD_LINES])
def test_every_bad_line_gets_an_answer_naming_what_was_wrong(node, line, word):
    reply = node.execute(line)
    assert not reply.ok and not reply.quit
    assert reply.text.startswith("error: ") and word in reply.text
    assert node.execute("relay").text == "connected"  # still serving


def test_a_key_that_changes_nothing_shown_still_gets_an_answer(node):
    # found by `bijli soak` (console part): a backspace on an empty entry answered an empty
    # reply, which a console client cannot tell from no reply
    assert node.execute("k *").text == "entry empty"
    assert node.execute("k 1").text == "1" and node.execute("k *").text == "entry empty"


def test_a_refused_load_changes_nothing(node):
    assert node.execute("load 5").ok
    for line in ("load 1000", "load 5 0.9L 1e9", "load nan"):
        assert not node.execute(line).ok
    assert node.load == (5.0, 1.0, True)
    assert abs(node.meter.status()["voltage"] - 230) < 1  # the billion volts never reached the source
    assert node.execute("load 60 0.8C 460").ok  # the edges of the rating are accepted


# words the fuzz puts together: every command (step only with short durations: a long
# step is slow, not wrong), their argument shapes, and junk
_WORDS = st.sampled_from([
    "help", "status", "--json", "load", "earth", "time", "set", "get", "token", "credit", "emergency", "relay",
    "press", "events", "k", "lcd", "1.0.1.8.0.255", "0.0.1.0.0.255:2", "1.0.99.1.0.255:7", ":", "#", "*",
    "0.5L", "0.8C", "1e9", "-1", "nan", "inf", "12345678901234567890", "2024-06-14T19:00:00", "'", '"', "\\",
    "\x00", "é", "1.5h", "90s",
])
_LINES = st.one_of(
    st.lists(st.one_of(_WORDS, st.text(max_size=12)), min_size=1, max_size=5).map(" ".join),
    st.text(max_size=60),
    st.sampled_from(["step 90s", "step 15m", "step 0", "step 1"]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_LINES, min_size=1, max_size=8))
def test_fuzzed_lines_always_get_an_answer_and_quit_still_works(node, lines):
    for line in lines:
        if line.strip().lower() == "quit":
            continue
        reply = node.execute(line)
        assert isinstance(reply, Reply) and not reply.quit
        if line.strip() and not reply.ok:
            assert reply.text.startswith("error: ") or reply.text.split(":")[0].replace("_", "").isalpha()
    assert node.execute("quit") == Reply("bye", quit=True)


def test_the_line_assembler_bounds_a_line_and_resumes_at_the_next():
    a = LineAssembler(limit=8)
    assert a.feed(b"help\r\nrelay\rcre") == ["help", "relay"]
    assert a.feed(b"dit\n") == ["credit"]
    assert a.feed(b"x" * 5) == [] and a.feed(b"x" * 5) == [None]  # refused once, then skipped
    assert a.feed(b"x" * 100) == []
    assert a.feed(b"yyy\nrelay\n") == ["relay"]
    assert a.feed(b"tail") == [] and a.flush() == "tail" and a.flush() is None
