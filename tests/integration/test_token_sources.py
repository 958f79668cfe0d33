"""Tokens from several sources at once, on a real `bijli meter` process (issue 14 item 1).

The service console is the meter's pty (the plugin's RunningMeter); the DLMS token gateway (IC 115,
0.0.19.40.0.255) is reached by a utility client (SAP 48, HLS GMAC, ciphered) over a
real TCP socket, as a vending system's head-end reaches it. Each source has its own
bad-token lockout, replays lock nothing, and each sender is told its own token's result.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from decimal import Decimal

from bijli.dlms import axdr
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.cosem.token_gateway import TokenStatusCode
from bijli.firmware.meter import MeterConfig
from bijli.firmware.sts.vend import vend_credit
from bijli.tools.node.client_transports import open_client_transport

GATEWAY = "0.0.19.40.0.255"
KEY = MeterConfig.from_dict({}).sts.vend_key()
START = datetime(2024, 6, 3, 12, 0)  # a Monday noon
JUNK = "12345678901234567890"  # 20 digits failing the CRC


_TOKENS: dict[int, str] = {}


def token(i: int) -> str:
    """The i-th credit token of 10 INR (vended once: each vend of a time gets a new TID)."""
    if i not in _TOKENS:
        when = START - timedelta(hours=3) + timedelta(minutes=i)
        _TOKENS[i] = vend_credit(KEY, Decimal(10), subclass=4, time=when).digits
    return _TOKENS[i]


def utility(port: int) -> Client:
    """A head-end's utility association, at the invocation counter the meter expects."""
    target = f"tcp://127.0.0.1:{port}"
    public = Client(open_client_transport(target, 16), ClientSettings.for_association(16))
    try:
        public.associate()
        ic = public.get(1, "0.0.43.1.3.255", 2).to_python()
        public.release()
    finally:
        public.close()
    client = Client(open_client_transport(target, 48), ClientSettings.for_association(48, invocation_counter=ic))
    client.associate()
    return client


def deliver(client: Client, digits: str) -> None:
    client.action(115, GATEWAY, 1, axdr.OctetString(digits.encode()))


def verdict(client: Client) -> tuple[bytes, TokenStatusCode, str]:
    """What the gateway tells this client: the token it shows, its status, its first word."""
    shown = client.get(115, GATEWAY, 2).value
    status = TokenStatusCode(client.get(115, GATEWAY, 6).value[0].value)
    words = client.get(115, GATEWAY, 4).value
    return shown, status, words[0].value.decode() if words else ""


def status(meter) -> dict:
    return json.loads(meter.console("status --json"))


def start(bijli_meter_factory, state):
    """The meter on ``state``, its console a pty; a state that holds a meter resumes its clock."""
    return bijli_meter_factory(state=state, start=START.isoformat(), hdlc=False, serial=False, optical=False)


def test_a_console_lockout_never_blocks_a_gateway_delivery_and_survives_a_restart(bijli_meter_factory, tmp_path):
    state = tmp_path / "state"
    meter = start(bijli_meter_factory, state)
    for _ in range(5):
        assert meter.console(f"token {JUNK}") == "crc_error"
    assert meter.console(f"token {token(0)}").startswith("locked_out: console locked out until")
    assert status(meter)["token_lockouts"] == ["console"]
    client = utility(meter.endpoints.wrapper_port)
    try:
        deliver(client, token(0))
        assert verdict(client) == (token(0).encode(), TokenStatusCode.EXECUTION_OK, "accepted")
    finally:
        client.close()
    assert Decimal(status(meter)["total_recharged"]) == 10
    assert meter.stop() == 0

    meter = start(bijli_meter_factory, state)  # the lockout is in non-volatile memory
    assert meter.console(f"token {token(1)}").startswith("locked_out")
    client = utility(meter.endpoints.wrapper_port)
    try:
        deliver(client, token(1))
        assert verdict(client)[1:] == (TokenStatusCode.EXECUTION_OK, "accepted")
    finally:
        client.close()
    assert Decimal(status(meter)["total_recharged"]) == 20


def test_replays_lock_no_source(bijli_meter_factory, tmp_path):
    meter = start(bijli_meter_factory, tmp_path / "state")
    assert meter.console(f"token {token(0)}").startswith("accepted")
    client = utility(meter.endpoints.wrapper_port)
    try:
        for _ in range(12):  # far beyond the 5 bad tokens of a lockout, from both sources
            assert meter.console(f"token {token(0)}") == "used"
            deliver(client, token(0))
            assert verdict(client)[1:] == (TokenStatusCode.VALIDATION_FAILURE, "used")
        assert meter.console(f"token {token(1)}").startswith("accepted")
        deliver(client, token(2))
        assert verdict(client)[1:] == (TokenStatusCode.EXECUTION_OK, "accepted")
    finally:
        client.close()
    assert status(meter)["token_lockouts"] == []
    assert Decimal(status(meter)["total_recharged"]) == 30


def test_a_console_token_between_a_gateway_action_and_its_get_does_not_change_what_the_head_end_reads(
        bijli_meter_factory, tmp_path):
    meter = start(bijli_meter_factory, tmp_path / "state")
    client = utility(meter.endpoints.wrapper_port)
    try:
        deliver(client, token(0))
        # the same token at the console, before the head-end reads its verdict: the console is
        # told "used" (the gateway's delivery credited it), the head-end "accepted"
        assert meter.console(f"token {token(0)}") == "used"
        assert verdict(client) == (token(0).encode(), TokenStatusCode.EXECUTION_OK, "accepted")
        # and the other way round: the console first, the gateway's own verdict is "used"
        assert meter.console(f"token {token(1)}").startswith("accepted")
        deliver(client, token(1))
        assert meter.console(f"token {token(2)}").startswith("accepted")
        assert verdict(client) == (token(1).encode(), TokenStatusCode.VALIDATION_FAILURE, "used")
    finally:
        client.close()
    assert Decimal(status(meter)["total_recharged"]) == 30


def test_concurrent_console_and_gateway_tokens_each_get_their_own_result(bijli_meter_factory, tmp_path):
    """The same 30 tokens sent at once through the console and the gateway: each credited
    once, and for each exactly one side is told "accepted", the other "used"."""
    meter = start(bijli_meter_factory, tmp_path / "state")
    tokens = [token(i) for i in range(30)]
    console_words: dict[str, str] = {}
    gateway_words: dict[str, str] = {}
    errors: list[BaseException] = []
    client = utility(meter.endpoints.wrapper_port)

    def head_end():
        try:
            for t in tokens:
                deliver(client, t)
                shown, _, word = verdict(client)
                assert shown == t.encode()
                gateway_words[t] = word
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    thread = threading.Thread(target=head_end)
    try:
        thread.start()
        for t in tokens:
            console_words[t] = meter.console(f"token {t}").split(":")[0]
        thread.join(60)
    finally:
        client.close()
    assert not errors and not thread.is_alive()
    for t in tokens:
        assert sorted((console_words[t], gateway_words[t])) == ["accepted", "used"], t
    assert Decimal(status(meter)["total_recharged"]) == 10 * len(tokens)
