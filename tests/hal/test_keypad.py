"""hal.keypad: the token entry state machine, console keys and a GPIO matrix on mock pins."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.hal.errors import BackendError
from bijli.hal.keypad import (TOKEN_DIGITS, TRANSITIONS, DisplayText, EmergencyRequested, EntryError,
                        EntryErrorReason, EntryState, Key, KeypadEntry, KeypadError,
                        MatrixKeypad, ScrollRequested, TokenEntered, EntryTrigger, feed_text, group_digits,
                        parse_keys)

TOKEN = "12345678901234567890"


def type_keys(entry, keys, now=0.0):
    events = []
    for k in keys:
        events += entry.press(k, now)
    return events


def test_twenty_digits_and_enter_gives_token():
    entry = KeypadEntry()
    events = type_keys(entry, list(TOKEN))
    assert events[-1] == DisplayText("1234 5678 9012 3456 7890")
    assert entry.state is EntryState.FULL
    assert entry.press("ENTER", 1.0) == [TokenEntered(TOKEN), DisplayText("")]
    assert entry.state is EntryState.IDLE and entry.digits == ""


def test_enter_too_early_is_an_error_and_clears():
    entry = KeypadEntry()
    type_keys(entry, "12345")
    assert entry.press(Key.ENTER, 0) == [EntryError(EntryErrorReason.TOO_SHORT, 5), DisplayText("")]
    assert entry.press(Key.ENTER, 0)[0] == EntryError("too short", 0)  # StrEnum compares as text


def test_twenty_first_digit_ignored_and_backspace():
    entry = KeypadEntry()
    type_keys(entry, TOKEN + "9")
    assert entry.digits == TOKEN
    assert entry.press("BACKSPACE", 0) == [DisplayText("1234 5678 9012 3456 789")]
    assert entry.state is EntryState.ENTERING
    type_keys(entry, "1")
    assert entry.press("ENTER", 0)[0] == TokenEntered(TOKEN[:-1] + "1")


def test_timeout_clears_half_typed_token():
    entry = KeypadEntry(timeout=30)
    type_keys(entry, "123", now=100.0)
    assert entry.tick(129.9) == []
    assert entry.tick(130.0) == [EntryError(EntryErrorReason.TIMEOUT, 3), DisplayText("")]
    assert entry.state is EntryState.IDLE
    # a key after the timeout starts afresh rather than appending to stale digits
    type_keys(entry, "12", now=0)
    assert entry.press("3", 100)[:1] == [EntryError(EntryErrorReason.TIMEOUT, 2)]
    assert entry.digits == "3"


def test_emergency_keeps_digits_and_scroll_only_when_idle():
    entry = KeypadEntry()
    assert entry.press("EMERGENCY", 0) == [EmergencyRequested()]
    assert entry.press("SCROLL", 0) == [ScrollRequested()]
    type_keys(entry, "42")
    assert entry.press("EMERGENCY", 0) == [EmergencyRequested()]
    assert entry.press("SCROLL", 0) == []
    assert entry.digits == "42"


def test_transition_table_is_total():
    assert set(TRANSITIONS) == {(s, t) for s in EntryState for t in EntryTrigger}
    for action, next_state in TRANSITIONS.values():
        assert getattr(KeypadEntry, action.__name__) is action and isinstance(next_state, EntryState)


# digits typed to stand in each state (more than one where the trigger depends on the count)
_TYPED = {EntryState.IDLE: (0,), EntryState.ENTERING: (1, 2, TOKEN_DIGITS - 1), EntryState.FULL: (TOKEN_DIGITS,)}
_KEY = {EntryTrigger.DIGIT: Key.D7, EntryTrigger.FINAL_DIGIT: Key.D7, EntryTrigger.BACKSPACE: Key.BACKSPACE,
        EntryTrigger.ERASE_LAST: Key.BACKSPACE, EntryTrigger.ENTER: Key.ENTER, EntryTrigger.EMERGENCY: Key.EMERGENCY,
        EntryTrigger.SCROLL: Key.SCROLL, EntryTrigger.TIMEOUT: None}


_PAIRS = sorted(TRANSITIONS, key=lambda p: (p[0].value, p[1].value))


def test_every_state_trigger_pair():
    for pair in _PAIRS:
        check_pair(pair)


@settings(max_examples=60)
@given(st.sampled_from(_PAIRS))
def test_every_state_trigger_pair_hypothesis(pair):
    check_pair(pair)


def check_pair(pair):
    """Each pair through the public API where the keys can make it (a pair only a
    1-digit token could reach goes through the step itself); the state after is the
    table's, and the digits change only as the action says."""
    state, trigger = pair
    action, next_state = TRANSITIONS[pair]
    key = _KEY[trigger]
    for typed in _TYPED[state]:
        entry = KeypadEntry(timeout=60)
        type_keys(entry, TOKEN[:typed], now=0.0)
        assert entry.state is state
        if trigger is EntryTrigger.TIMEOUT:
            events = entry.tick(60.0)
            break
        if entry._trigger(key) is trigger:
            events = entry.press(key, 1.0)
            break
    else:
        events = entry._step(trigger, key)
    assert entry.state is next_state, (pair, action.__name__)
    n = len(entry.digits)
    if action is KeypadEntry._append:
        assert n == typed + 1 and events == [DisplayText(group_digits(entry.digits))]
    elif action is KeypadEntry._erase:
        assert n == typed - 1
    elif action in (KeypadEntry._submit, KeypadEntry._too_short, KeypadEntry._time_out):
        assert n == 0 and events[-1] == DisplayText("")
    else:
        assert n == typed and not [e for e in events if isinstance(e, DisplayText)]


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(list(Key)), st.floats(0, 200)), max_size=80))
def test_random_key_sequences(steps):
    entry = KeypadEntry(timeout=60)
    now = 0.0
    for key, dt in steps:
        now += dt
        for ev in entry.press(key, now):
            if isinstance(ev, TokenEntered):
                assert len(ev.digits) == TOKEN_DIGITS and ev.digits.isdigit()
        assert len(entry.digits) <= TOKEN_DIGITS
        assert (entry.state is EntryState.IDLE) == (entry.digits == "")
        assert (entry.state is EntryState.FULL) == (len(entry.digits) == TOKEN_DIGITS)


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_console_text_never_raises_anything_else(text):
    entry = KeypadEntry()
    try:
        events = feed_text(entry, text, 0.0)
    except KeypadError:
        return
    assert all(len(e.digits) == 20 for e in events if isinstance(e, TokenEntered))


def test_console_line_forms():
    entry = KeypadEntry()
    events = feed_text(entry, "k 1234-5678-9012-3456-7890#", 0)
    assert TokenEntered(TOKEN) in events
    assert parse_keys("12*!s\n") == [Key.D1, Key.D2, Key.BACKSPACE, Key.EMERGENCY, Key.SCROLL, Key.ENTER]
    with pytest.raises(KeypadError):
        parse_keys("12x")
    with pytest.raises(KeypadError):
        entry.press("F1", 0)


# ---- GPIO matrix on MockFactory ---------------------------------------------
ROWS = [5, 6, 13, 19]
COLS = [12, 16, 20, 21]


def hold(factory, row_pin, col_pin):
    """Close the switch at (row, col): the row pin now drives the column pin."""
    from gpiozero.pins.mock import MockConnectedPin
    factory.pin(row_pin).input_pin = factory.pin(col_pin)
    assert isinstance(factory.pin(row_pin), MockConnectedPin)


def release(factory, row_pin, col_pin):
    factory.pin(row_pin).input_pin = None
    factory.pin(col_pin).drive_high()  # the pull-up takes the column back


@pytest.fixture
def matrix():
    from gpiozero.pins.mock import MockConnectedPin, MockFactory
    factory = MockFactory(pin_class=MockConnectedPin)
    pad = MatrixKeypad(ROWS, COLS, factory)
    yield factory, pad
    pad.close()


def test_matrix_scan_reports_each_press_once(matrix):
    factory, pad = matrix
    assert pad.scan() == []
    hold(factory, ROWS[1], COLS[1])  # "5"
    assert pad.scan() == [Key.D5]
    assert pad.scan() == []  # still held: no repeat
    release(factory, ROWS[1], COLS[1])
    assert pad.scan() == []
    hold(factory, ROWS[3], COLS[2])  # "#"
    assert pad.scan() == [Key.ENTER]
    release(factory, ROWS[3], COLS[2])
    hold(factory, ROWS[0], COLS[3])  # "A" = emergency
    assert pad.scan() == [Key.EMERGENCY]


def test_matrix_types_a_token(matrix):
    factory, pad = matrix
    layout = ["123A", "456B", "789C", "*0#D"]
    where = {ch: (ROWS[r], COLS[c]) for r, line in enumerate(layout) for c, ch in enumerate(line)}
    entry = KeypadEntry()
    events = []
    for ch in TOKEN + "#":
        hold(factory, *where[ch])
        for key in pad.scan():
            events += entry.press(key, 0)
        release(factory, *where[ch])
        assert pad.scan() == []
    assert TokenEntered(TOKEN) in events


def test_matrix_bad_layout():
    from gpiozero.pins.mock import MockFactory
    with pytest.raises(BackendError):
        MatrixKeypad([1, 2], [3, 4], MockFactory())
