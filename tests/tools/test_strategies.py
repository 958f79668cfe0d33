"""The public Hypothesis strategies (bijli.tools.testing.strategies) draw what they promise:
valid inputs a bijli meter and codec take, near-misses they refuse, for each kind. The
codec round-trip and fuzz tests (tests/dlms) use the same strategies for the rest."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bijli.dlms import acse, apdu
from bijli.dlms.acse import AssociationResult, Mechanism
from bijli.dlms.client import Client
from bijli.dlms.errors import DlmsError
from bijli.dlms.link import wrapper
from bijli.dlms.link.hdlc_frame import decode_frame
from bijli.dlms.obis import Obis
from bijli.firmware.sts.decoder import decode
from bijli.firmware.sts.results import TokenResultCode as R
from bijli.firmware.sts.state import DecoderState
from bijli.firmware.sts.tid import datetime_from_tid
from bijli.tools.testing import strategies as bst
from tests.integration.whole_meter import whole_meter
from tests.peers.direct import Direct

NOW = datetime(2024, 6, 14, 17, 0)
ON_A_METER = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# a token is vended with a pure-Python cipher: slow to draw on a busy machine, not a slow test
TOKENS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A whole bijli meter in-process (firmware, object list, DLMS server), on a real state directory."""
    return whole_meter(tmp_path_factory.mktemp("strategies-meter"))


@pytest.fixture(scope="module")
def key(node):
    return bst.meter_key(node.manifest("127.0.0.1", 4059))


# --- codecs and links ---------------------------------------------------------------------------


@settings(max_examples=150)
@given(bst.invalid_apdus)
def test_invalid_apdus_are_refused_with_a_typed_error(raw):
    with pytest.raises(DlmsError):
        apdu.decode(raw)


@given(bst.obis_texts)
def test_obis_texts_parse_back(text):
    assert str(Obis.parse(text)) in (text, str(Obis.parse(text)))
    assert Obis.parse(text) == Obis.parse(str(Obis.parse(text)))


@given(bst.hdlc_octets(max_info=64))
def test_hdlc_octets_are_whole_frames_on_the_line(wire):
    frame = decode_frame(wire)
    assert wire[0] == wire[-1] == 0x7E and len(frame.info) <= 64


@given(bst.wrapper_frames(bst.encoded_apdus))
def test_wrapper_frames_carry_real_apdus(raw):
    message = wrapper.decode_frame(raw)
    assert apdu.decode(message.apdu).encode() == message.apdu


@settings(max_examples=200)
@given(bst.mutated(bst.wrapper_frames(bst.encoded_apdus)))
def test_mutated_wrapper_frames_decode_or_are_refused_typed(raw):
    try:
        message = wrapper.decode_frame(raw)
    except DlmsError:
        return
    assert len(message.apdu) == len(raw) - 8


# --- AARQs for each of the meter's associations -----------------------------------------------------


def _aare(node, sap: int, aarq: bytes) -> acse.AARE:
    session = node.server.new_session(sap)
    (answer,) = node.server.handle(session, aarq, 0.0)
    return acse.AARE.decode(answer)


@pytest.mark.parametrize("association", ["public", "reader"])
def test_aarqs_for_the_unciphered_associations_are_accepted(node, association):
    keys = node.manifest("127.0.0.1", 4059)["dlms"]

    @ON_A_METER
    @given(bst.aarqs_for(association, keys=keys))
    def check(aarq):
        decoded = acse.AARQ.decode(aarq)
        assert decoded.mechanism == (Mechanism.LLS if association == "reader" else None)
        assert _aare(node, bst.ASSOCIATIONS[association], aarq).result is AssociationResult.ACCEPTED

    check()


def test_reader_aarqs_with_another_password_are_refused(tmp_path):
    node = whole_meter(tmp_path)  # its own meter: the refusals lock the reader out
    wrong = {"reader_password": "not-it", "encryption_key": "00" * 16, "authentication_key": "00" * 16}

    @ON_A_METER
    @given(bst.aarqs_for("reader", keys=wrong))
    def check(aarq):
        assert _aare(node, 32, aarq).result is not AssociationResult.ACCEPTED

    check()


def test_utility_aarqs_are_accepted_and_their_settings_complete_hls(tmp_path_factory):
    @settings(max_examples=10, deadline=None)
    @given(st.data())
    def check(data):
        # new meters for each example: the counter they expect (0) is known before the draw
        node, other = (whole_meter(tmp_path_factory.mktemp("utility")) for _ in range(2))
        manifest = node.manifest("127.0.0.1", 4059)
        aarq = data.draw(bst.aarqs_for("utility", keys=manifest["dlms"]))
        decoded = acse.AARQ.decode(aarq)
        assert decoded.mechanism is Mechanism.HLS_GMAC and 8 <= len(decoded.calling_authentication_value) <= 64
        aare = _aare(node, 48, aarq)
        assert aare.result is AssociationResult.ACCEPTED and aare.responding_authentication_value
        client = Client(Direct(other.server, 48), data.draw(bst.client_settings_for("utility", keys=manifest["dlms"])))
        client.associate()  # passes 3 and 4 of HLS-GMAC, then a ciphered read
        try:
            assert client.get(1, "0.0.96.1.0.255", 2).to_python() == manifest["serial"]
        finally:
            client.close()

    check()


def test_an_unknown_association_is_a_value_error():
    with pytest.raises(ValueError, match="public, reader, utility"):
        bst.aarqs_for("admin")


# --- STS tokens ---------------------------------------------------------------------------------------


def test_the_meter_key_from_a_manifest_is_the_meters(node, key):
    assert key == node.cfg.meter.sts.decoder_key


@settings(max_examples=60, **TOKENS)
@given(st.data())
def test_tokens_for_a_meter_are_accepted(key, data):
    token = data.draw(bst.tokens_for(key))
    result, _ = decode(DecoderState(key), token.digits, NOW)
    assert result.code is R.ACCEPT and result.tid == token.tid


@settings(max_examples=60, **TOKENS)
@given(st.data())
def test_wrong_crc_and_wrong_key_tokens_are_crc_errors(key, data):
    for digits in (data.draw(bst.wrong_crc_tokens(key)), data.draw(bst.wrong_key_tokens(key))):
        result, state = decode(DecoderState(key), digits, NOW)
        assert result.code is R.CRC_ERROR and state.tids == ()


@settings(max_examples=40, **TOKENS)
@given(st.data())
def test_old_tid_tokens_are_old_once_the_tid_memory_is_full(key, data):
    window = 4
    state = DecoderState(key, tid_window=window)
    fill = data.draw(st.lists(st.integers(2_000_000, 2_100_000), min_size=window, max_size=window, unique=True))
    for tid in fill:
        result, state = decode(state, data.draw(bst.tokens_for(key, after=datetime_from_tid(tid, key.base),
                                                               before=datetime_from_tid(tid + 1, key.base))).digits,
                               NOW)
        assert result.code is R.ACCEPT
    old = data.draw(bst.old_tid_tokens(key, datetime_from_tid(min(fill), key.base)))
    assert old.tid < min(fill)
    assert decode(state, old.digits, NOW)[0].code is R.OLD


@settings(max_examples=40, **TOKENS)
@given(st.data())
def test_replayed_tokens_are_used_after_their_first_entry(key, data):
    tokens = data.draw(bst.replayed_tokens(key))
    assert len(tokens) > len(set(tokens))
    state, seen = DecoderState(key, lockout_after=0), set()
    for digits in tokens:
        result, state = decode(state, digits, NOW)
        assert result.code is (R.USED if digits in seen else R.ACCEPT)
        seen.add(digits)


# --- Hypothesis stays a test-time dependency ------------------------------------------------------------


def test_without_hypothesis_the_plugin_loads_and_the_strategies_say_what_to_install():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "import bijli.tools.testing.plugin, bijli.tools.testing\n"
            "assert 'hypothesis' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "try:\n"
            "    import bijli.tools.testing.strategies\n"
            "except ModuleNotFoundError as e:\n"
            "    print(e.name, '|', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("hypothesis |") and "pip install 'bijli[testing]'" in out
