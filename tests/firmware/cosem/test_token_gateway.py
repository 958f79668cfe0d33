"""The token gateway (IC 115) over DLMS: what its token attribute shows (issue 11 item 17).

Attribute 2 is the token most recently received, as received: a head-end that sent
octets the decoder cannot read (not digits, not even ASCII) sees those octets back,
with status format_failure. A keypad token entered since shows its own digits to an
association that has sent no token; the sender keeps seeing its own (issue 14 item 1).
"""

from __future__ import annotations

from decimal import Decimal

from bijli.dlms import axdr
from bijli.dlms.cosem.token_gateway import TokenStatusCode
from bijli.firmware.cosem import catalogue
from bijli.firmware.meter import TokenSource
from bijli.firmware.sts.vend import vend_credit
from tests.firmware.cosem.test_object_list import START, Rig


def test_the_token_attribute_shows_a_non_ascii_token_as_received(tmp_path):
    rig = Rig(tmp_path)
    c = rig.client(48)
    odd = "१२३४५६७८९०१२३४५६७८९०".encode("utf-8")  # Devanagari digits: not ASCII
    c.action(115, catalogue.TOKEN_GATEWAY, 1, axdr.OctetString(odd))
    assert c.get(115, catalogue.TOKEN_GATEWAY, 2) == axdr.OctetString(odd)
    status = c.get(115, catalogue.TOKEN_GATEWAY, 6).value
    assert status[0] == axdr.Enum(TokenStatusCode.FORMAT_FAILURE)
    # a valid token over DLMS shows its digits; a keypad one entered after it shows its own
    good = vend_credit(rig.cfg.sts.vend_key(), Decimal("100"), subclass=4, time=START).digits
    c.action(115, catalogue.TOKEN_GATEWAY, 1, axdr.OctetString(good.encode()))
    assert c.get(115, catalogue.TOKEN_GATEWAY, 2) == axdr.OctetString(good.encode())
    other = vend_credit(rig.cfg.sts.vend_key(), Decimal("50"), subclass=4, time=START.replace(minute=1)).digits
    rig.meter.enter_token(other, TokenSource.KEYPAD)
    # the sender goes on seeing its own token (issue 14 item 1); an association that has sent
    # none sees the last token from any source: the keypad's, its own digits
    assert c.get(115, catalogue.TOKEN_GATEWAY, 2) == axdr.OctetString(good.encode())
    reader = rig.client(48)
    assert reader.get(115, catalogue.TOKEN_GATEWAY, 2) == axdr.OctetString(other.encode())
    assert reader.get(115, catalogue.TOKEN_GATEWAY, 5) == axdr.Enum(2)  # delivered manually
