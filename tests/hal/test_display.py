"""hal.display: pages, scrolling, messages, the console backend and HD44780 bytes."""

import io

import pytest

from bijli.hal.display import (ConsoleDisplay, Display, DisplayItem, Hd44780Display,
                         hd44780_text_bytes)
from bijli.hal.errors import BackendError


def meter_items(state):
    return [
        DisplayItem("C.1", "Balance Rs", lambda: f"{state['balance']:.2f}"),
        DisplayItem("1.8.0", "kWh", lambda: f"{state['kwh']:.3f}"),
        DisplayItem("32.7", "Voltage V", lambda: f"{state['v']:.1f}"),
        DisplayItem("31.7", "Current A", lambda: f"{state['i']:.2f}"),
        DisplayItem("96.3", "Relay", lambda: "ON" if state["relay"] else "OFF"),
        DisplayItem("T.R", "Token", lambda: state["token"]),
        DisplayItem("TID", "Last TID", 123456789),
        DisplayItem("L", "Lockout", lambda: 1 / 0),
    ]


def test_pages_render_two_lines_of_sixteen():
    state = dict(balance=512.5, kwh=1234.567, v=230.12, i=4.2, relay=True,
                 token="Accept 50.00 kWh credit")
    disp = Display(meter_items(state))
    pages = disp.pages()
    assert pages[0] == ("C.1 Balance Rs  ", "          512.50")
    assert pages[1] == ("1.8.0 kWh       ", "        1234.567")
    assert pages[4][1] == "              ON"
    assert pages[5][1] == "50.00 kWh credit"  # a long value keeps its end
    assert pages[6][1] == "       123456789"
    assert pages[7][1] == "             Err"  # a failing reading shows Err, not a crash
    assert all(len(line) == 16 for page in pages for line in page)


def test_auto_scroll_manual_scroll_and_messages():
    state = dict(balance=10.0, kwh=1.0, v=230.0, i=1.0, relay=False, token="-")
    console = ConsoleDisplay()
    disp = Display(meter_items(state), console, scroll_seconds=5, manual_hold=20)
    disp.tick(0.0)
    assert console.last[0].startswith("C.1")
    disp.tick(4.9)
    assert disp.index == 0
    disp.tick(5.0)
    assert disp.index == 1 and console.last[0].startswith("1.8.0")
    state["kwh"] = 2.5
    disp.tick(6.0)  # same page, new value: redrawn
    assert console.last[1].strip() == "2.500"
    disp.next(7.0)  # button
    assert disp.index == 2
    disp.tick(20.0)
    assert disp.index == 2  # held after a manual press
    disp.tick(27.0)
    assert disp.index == 3
    disp.message("Token accepted", 30.0, seconds=5, second_line="+50.00")
    assert console.last == ("Token accepted  ", "+50.00          ")
    disp.tick(100.0)  # auto-scroll waits under a message until it expires ...
    assert console.last[0].startswith("31.7")
    disp.message("Lockout", 101.0)
    disp.next(102.0)  # ... or the button dismisses it
    assert console.last[0].startswith("31.7")
    disp.show_code("TID", 103.0)
    assert console.last[1].strip() == "123456789"
    with pytest.raises(BackendError):
        disp.show_code("nope", 104.0)
    with pytest.raises(BackendError):
        Display([])


def test_console_backend_writes_a_box():
    out = io.StringIO()
    ConsoleDisplay(out).show(("Hello", "World"))
    assert out.getvalue() == ("+----------------+\n|Hello           |\n"
                              "|World           |\n+----------------+\n")


def test_hd44780_byte_stream_for_known_text():
    # 'H' = 0x48 with RS=1, backlight 0x08: high nibble 4 -> 0x49, E pulse 0x4D;
    # low nibble 8 -> 0x89, 0x8D. Row 1 address command 0xC0 with RS=0.
    got = hd44780_text_bytes(1, "Hi", width=2)
    assert got == [
        0xC8, 0xCC, 0xC8, 0x08, 0x0C, 0x08,   # set DDRAM 0x40 (0x80|0x40)
        0x49, 0x4D, 0x49, 0x89, 0x8D, 0x89,   # 'H'
        0x69, 0x6D, 0x69, 0x99, 0x9D, 0x99,   # 'i' = 0x69
    ]


def test_hd44780_init_and_update_through_injected_writer():
    written, sleeps = [], []
    lcd = Hd44780Display(write=written.append, sleep=sleeps.append)
    # init: backlight only, 0x3 nibble three times, 0x2, then the five commands
    assert written[:13] == [0x08, 0x38, 0x3C, 0x38, 0x38, 0x3C, 0x38, 0x38, 0x3C, 0x38,
                            0x28, 0x2C, 0x28]
    assert written[13:19] == [0x28, 0x2C, 0x28, 0x88, 0x8C, 0x88]  # function set 0x28
    assert written[-6:] == [0x08, 0x0C, 0x08, 0xC8, 0xCC, 0xC8]    # display on 0x0C
    assert sleeps[0] >= 0.04 and 0.002 in sleeps
    assert all(b & 0x08 for b in written)  # backlight stays on
    written.clear()
    lcd.show(("Balance", "12.50"))
    assert written == hd44780_text_bytes(0, "Balance") + hd44780_text_bytes(1, "12.50")
    written.clear()
    lcd.show(("Balance", "12.25"))  # only the changed row goes out again
    assert written == hd44780_text_bytes(1, "12.25")
    assert hd44780_text_bytes(0, "\u20b9~")[6:9] == [0x39, 0x3D, 0x39]  # '?' for what the ROM lacks


def test_hd44780_without_smbus2_is_a_clear_backend_error():
    try:
        import smbus2  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="smbus2"):
            Hd44780Display()
    else:
        pytest.skip("smbus2 installed")
