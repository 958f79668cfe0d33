"""Round trips value -> bytes -> value for every DLMS codec, plus the regressions
found while checking them against IEC 62056-5-3 / -6-2."""

from __future__ import annotations

import math
import signal
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import acse, apdu, axdr, xdlms
from bijli.dlms.errors import ApduError, AxdrError, DlmsError, ObisError
from bijli.dlms.obis import Obis
from bijli.tools.testing import strategies as bst

# --- A-XDR -------------------------------------------------------------------------------


@settings(max_examples=400)
@given(bst.data_values)
def test_axdr_round_trip(value):
    raw = axdr.encode(value)
    assert axdr.decode(raw) == value
    assert axdr.encode(axdr.decode(raw)) == raw


@settings(max_examples=150)
@given(bst.compact_arrays)
def test_compact_array_round_trip(value):
    assert axdr.decode(axdr.encode(value)) == value


@settings(max_examples=150)
@given(bst.cosem_date_times)
def test_date_time_round_trip_with_unspecified_fields(dt):
    raw = axdr.encode(axdr.DateTime(dt))
    assert len(raw) == 13
    assert axdr.decode(raw).value == dt


def test_date_time_wire_layout():
    # 2024-03-04 Monday 05:06:07.08, IST (deviation -330 as the standard counts it), DST bit
    dt = axdr.CosemDateTime(axdr.CosemDate(2024, 3, 4, 1), axdr.CosemTime(5, 6, 7, 8), -330, 0x80)
    assert axdr.encode(axdr.DateTime(dt)).hex() == "19" "07e8030401" "05060708" "feb6" "80"
    unspecified = axdr.CosemDateTime(axdr.CosemDate(None, None, None), axdr.CosemTime(None, None, None, None))
    assert axdr.encode(axdr.DateTime(unspecified)).hex() == "19" + "ff" * 9 + "8000" + "ff"


def test_every_data_tag_is_the_standards():
    # IEC 62056-6-2 Data CHOICE
    expected = {"NULL_DATA": 0, "ARRAY": 1, "STRUCTURE": 2, "BOOLEAN": 3, "BIT_STRING": 4, "DOUBLE_LONG": 5,
                "DOUBLE_LONG_UNSIGNED": 6, "OCTET_STRING": 9, "VISIBLE_STRING": 10, "UTF8_STRING": 12, "BCD": 13,
                "INTEGER": 15, "LONG": 16, "UNSIGNED": 17, "LONG_UNSIGNED": 18, "COMPACT_ARRAY": 19, "LONG64": 20,
                "LONG64_UNSIGNED": 21, "ENUM": 22, "FLOAT32": 23, "FLOAT64": 24, "DATE_TIME": 25, "DATE": 26,
                "TIME": 27, "DONT_CARE": 255}
    assert {t.name: t.value for t in axdr.DataType} == expected


def test_known_encodings():
    assert axdr.encode(axdr.DoubleLongUnsigned(0x01020304)).hex() == "0601020304"
    assert axdr.encode(axdr.Long(-2)).hex() == "10fffe"
    assert axdr.encode(axdr.BitString("1010000001")).hex() == "040aa040"
    assert axdr.encode(axdr.OctetString(bytes(200)))[:3].hex() == "0981c8"
    assert axdr.encode(axdr.Bcd(42)).hex() == "0d42"
    assert axdr.encode(axdr.Float32(1.0)).hex() == "173f800000"
    # compact-array of structure {long-unsigned, boolean}, 2 elements: contents carry no tags
    ca = axdr.CompactArray(axdr.TypeDescription(axdr.DataType.STRUCTURE, 0, (
        axdr.TypeDescription(axdr.DataType.LONG_UNSIGNED), axdr.TypeDescription(axdr.DataType.BOOLEAN))),
        (axdr.structure(axdr.LongUnsigned(1), axdr.Boolean(True)), axdr.structure(axdr.LongUnsigned(2), axdr.Boolean(False))))
    assert axdr.encode(ca).hex() == "13" "020212" "03" "06" "000101" "000200"


def test_float_nan_encodes_and_decodes():
    v = axdr.decode(axdr.encode(axdr.Float64(math.nan)))
    assert math.isnan(v.value)


@pytest.mark.parametrize("bad", [
    axdr.DateTime(axdr.CosemDateTime(axdr.CosemDate(2024, 13, 1), axdr.CosemTime(0, 0))),
    axdr.DateTime(axdr.CosemDateTime(axdr.CosemDate(2024, 1, 1), axdr.CosemTime(24, 0))),
    axdr.DateTime(axdr.CosemDateTime(axdr.CosemDate(2024, 1, 1), axdr.CosemTime(0, 0), deviation=800)),
    axdr.DateTime(axdr.CosemDateTime(axdr.CosemDate(2024, 1, 1), axdr.CosemTime(0, 0), clock_status=0xFF)),
    axdr.Date(axdr.CosemDate(0xFFFF, 1, 1)),
    axdr.Date(axdr.CosemDate(2024, 1, 1, 8)),
    axdr.Time(axdr.CosemTime(1, 2, 3, 100)),
    axdr.Unsigned(256),
    axdr.Bcd(100),
    axdr.CompactArray(axdr.TypeDescription(axdr.DataType.NULL_DATA), (axdr.NullData(),)),
    axdr.CompactArray(axdr.TypeDescription(axdr.DataType.ARRAY, 70000, (axdr.TypeDescription(axdr.DataType.UNSIGNED),)), ()),
])
def test_encoder_refuses_what_the_decoder_would_refuse(bad):
    """Regression: the encoder used to write fields (month 13, hour 24, clock status 0xFF
    meaning 'not specified') that decode rejected or read back as something else."""
    with pytest.raises(AxdrError):
        axdr.encode(bad)


def _alarm(seconds):
    def handler(signum, frame):
        raise TimeoutError("decoder hung")
    signal.signal(signal.SIGALRM, handler)
    signal.alarm(seconds)


@pytest.mark.parametrize("hexdata", [
    "13020001aa",  # compact-array of structure{} with one content byte: used to loop forever
    "130101ffff000400000000",  # array of 65535 structure{}: elements that take no bytes
    "130101ffff0101ffff0000",  # 65535 x 65535 null-data from a handful of bytes
])
def test_compact_array_of_empty_elements_fails_fast(hexdata):
    """Regression: compact-array elements of zero size made decode loop forever."""
    _alarm(2)
    try:
        with pytest.raises(AxdrError):
            axdr.decode(bytes.fromhex(hexdata))
    finally:
        signal.alarm(0)


def test_compact_array_null_inside_structure_round_trips():
    td = axdr.TypeDescription(axdr.DataType.STRUCTURE, 0, (axdr.TypeDescription(axdr.DataType.NULL_DATA),
                                                           axdr.TypeDescription(axdr.DataType.UNSIGNED)))
    v = axdr.CompactArray(td, (axdr.structure(axdr.NullData(), axdr.Unsigned(7)),))
    assert axdr.decode(axdr.encode(v)) == v


def test_depth_limit():
    v = axdr.Unsigned(1)
    for _ in range(axdr.MAX_DEPTH + 2):
        v = axdr.structure(v)
    with pytest.raises(AxdrError):
        axdr.encode(v)
    with pytest.raises(AxdrError):
        axdr.decode(b"\x02\x01" * 200 + b"\x00")


def test_datetime_conversions():
    import datetime as _dt
    tz = _dt.timezone(_dt.timedelta(hours=5, minutes=30))
    d = axdr.date_time(_dt.datetime(2024, 3, 4, 5, 6, 7, 80000, tzinfo=tz))
    assert d.value.deviation == -330
    assert d.value.to_datetime() == _dt.datetime(2024, 3, 4, 5, 6, 7, 80000, tzinfo=tz)
    assert axdr.DateTime(axdr.CosemDateTime(axdr.CosemDate(None, 1, 1), axdr.CosemTime(0, 0))).to_python().date.year is None


# --- OBIS -----------------------------------------------------------------------------------


@given(bst.obis_codes)
def test_obis_round_trips(o):
    assert Obis.parse(str(o)) == o
    assert Obis.parse(o.iec()) == o
    assert Obis.from_bytes(o.to_bytes()) == o
    assert Obis.parse(o.to_bytes()) == o


def test_obis_forms():
    assert Obis.parse("1.0.1.8.0.255") == Obis(1, 0, 1, 8, 0, 255)
    assert Obis.parse("1-0:1.8.0*255") == Obis(1, 0, 1, 8, 0, 255)
    assert Obis.parse("1-0:1.8.0") == Obis(1, 0, 1, 8, 0, 255)
    assert Obis.parse("1-0:1.8.0.255") == Obis(1, 0, 1, 8, 0, 255)
    assert Obis.parse("0-0:96.1.0*255").iec() == "0-0:96.1.0*255"
    assert str(Obis(0, 0, 1, 0, 0, 255)) == "0.0.1.0.0.255"


def test_obis_reduced_form_defaults_abstract_groups():
    assert Obis.parse("96.1.0") == Obis(0, 0, 96, 1, 0, 255)


@pytest.mark.parametrize("text", ["", "1.2", "1.0.1.8.0.256", "a.b.c.d.e.f", "1-0:1.8", "\u0661.0.1.8.0.255", "1.0.1.8.0.255.1"])
def test_obis_rejects(text):
    with pytest.raises(ObisError):
        Obis.parse(text)


# --- APDUs --------------------------------------------------------------------------------------


@settings(max_examples=500)
@given(bst.apdus)
def test_apdu_round_trip(value):
    raw = value.encode()
    assert raw[0] == value.tag
    assert apdu.decode(raw) == value


def test_choice_numbers_match_the_asn1():
    pairs = {
        apdu.GetRequestNormal: (0xC0, 1), apdu.GetRequestNext: (0xC0, 2), apdu.GetRequestWithList: (0xC0, 3),
        apdu.GetResponseNormal: (0xC4, 1), apdu.GetResponseWithDatablock: (0xC4, 2), apdu.GetResponseWithList: (0xC4, 3),
        apdu.SetRequestNormal: (0xC1, 1), apdu.SetRequestWithFirstDatablock: (0xC1, 2),
        apdu.SetRequestWithDatablock: (0xC1, 3), apdu.SetRequestWithList: (0xC1, 4),
        apdu.SetRequestWithListAndFirstDatablock: (0xC1, 5),
        apdu.SetResponseNormal: (0xC5, 1), apdu.SetResponseDatablock: (0xC5, 2),
        apdu.SetResponseLastDatablock: (0xC5, 3), apdu.SetResponseLastDatablockWithList: (0xC5, 4),
        apdu.SetResponseWithList: (0xC5, 5),
        apdu.ActionRequestNormal: (0xC3, 1), apdu.ActionRequestNextPblock: (0xC3, 2),
        apdu.ActionRequestWithList: (0xC3, 3), apdu.ActionRequestWithFirstPblock: (0xC3, 4),
        apdu.ActionRequestWithListAndFirstPblock: (0xC3, 5), apdu.ActionRequestWithPblock: (0xC3, 6),
        apdu.ActionResponseNormal: (0xC7, 1), apdu.ActionResponseWithPblock: (0xC7, 2),
        apdu.ActionResponseWithList: (0xC7, 3), apdu.ActionResponseNextPblock: (0xC7, 4),
    }
    for cls, (tag, choice) in pairs.items():
        assert (cls.tag, cls.choice) == (tag, choice), cls.__name__
    t = apdu.Tag
    assert (t.GLO_GET_REQUEST, t.GLO_ACTION_RESPONSE, t.DED_GET_REQUEST, t.DED_ACTION_RESPONSE) == (200, 207, 208, 215)
    assert (t.EXCEPTION_RESPONSE, t.GENERAL_GLO_CIPHERING, t.GENERAL_DED_CIPHERING, t.GENERAL_BLOCK_TRANSFER) == (216, 219, 220, 224)
    assert (t.GLO_INITIATE_REQUEST, t.GLO_INITIATE_RESPONSE, t.DED_INITIATE_REQUEST, t.DED_INITIATE_RESPONSE) == (33, 40, 65, 72)
    assert (t.DATA_NOTIFICATION, t.EVENT_NOTIFICATION_REQUEST, t.CONFIRMED_SERVICE_ERROR) == (15, 194, 14)


def test_get_request_normal_hot_path_matches_general_decoder():
    raw = bytes.fromhex("c001c100030100010800ff0200")
    fast = apdu.decode(raw)
    assert fast == apdu.GetRequestNormal(0xC1, apdu.AttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2))
    assert fast.encode() == raw


def test_exception_response_invocation_counter_error():
    """Regression: service-error invocation-counter-error [6] carries an Unsigned32 that
    the decoder did not read (it raised on the trailing bytes)."""
    raw = bytes.fromhex("d8010600000123")
    r = apdu.decode(raw)
    assert r == apdu.ExceptionResponse(apdu.StateError.SERVICE_NOT_ALLOWED, apdu.ServiceErrorCode.INVOCATION_COUNTER_ERROR, 0x123)
    assert r.encode() == raw
    assert apdu.decode(bytes.fromhex("d80203")).invocation_counter is None


def test_general_glo_ciphering_layout():
    # system-title OCTET STRING, then ciphered-content OCTET STRING (SC || IC || ciphertext || tag)
    content = bytes.fromhex("30" "00000001") + b"\xAA" * 5 + b"\xBB" * 12
    g = apdu.GeneralGloCiphering(apdu.Tag.GENERAL_GLO_CIPHERING, b"ABCDEFGH", content)
    raw = g.encode()
    assert raw[:11] == bytes.fromhex("db08") + b"ABCDEFGH" + bytes((len(content),))
    assert raw[11:] == content
    assert apdu.decode(raw) == g


def test_selection_flag_must_be_0_or_1():
    with pytest.raises(ApduError):
        apdu.decode(bytes.fromhex("c001c100030100010800ff0202"))


# --- ACSE ------------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(bst.initiate_requests)
def test_initiate_request_round_trip(v):
    assert xdlms.InitiateRequest.decode(v.encode()) == v


@settings(max_examples=200)
@given(bst.initiate_responses)
def test_initiate_response_round_trip(v):
    assert xdlms.InitiateResponse.decode(v.encode()) == v


@settings(max_examples=200)
@given(bst.aarqs)
def test_aarq_round_trip(v):
    assert acse.AARQ.decode(v.encode()) == v


@settings(max_examples=200)
@given(bst.aares)
def test_aare_round_trip(v):
    assert acse.AARE.decode(v.encode()) == v


@given(bst.rlrqs, bst.rlres)
def test_release_round_trip(q, e):
    assert acse.RLRQ.decode(q.encode()) == q
    assert acse.RLRE.decode(e.encode()) == e


def test_aarq_lowest_mechanism_round_trips():
    """Regression: mechanism LOWEST and an authentication value without an HLS/LLS mechanism
    were silently dropped by encode."""
    a = acse.AARQ(mechanism=acse.Mechanism.LOWEST, calling_authentication_value=b"x")
    assert acse.AARQ.decode(a.encode()) == a


def test_initiate_request_negative_qos_and_long_key():
    """Regression: a negative proposed-quality-of-service (Integer8) crashed encode."""
    v = xdlms.InitiateRequest(xdlms.Conformance.GET, 1024, 6, bytes(200), True, -5)
    assert xdlms.InitiateRequest.decode(v.encode()) == v


def test_oids_and_diagnostics():
    assert acse.ApplicationContext.LOGICAL_NAME_CIPHERED.oid().hex() == "60857405080103"
    assert acse.Mechanism.HLS_GMAC.oid().hex() == "60857405080205"
    rejected = acse.AARE(acse.AssociationResult.REJECTED_PERMANENT, acse.AcseServiceUser.AUTHENTICATION_FAILURE)
    raw = rejected.encode()
    assert bytes.fromhex("a203020101") in raw and bytes.fromhex("a305a10302010d") in raw
    assert xdlms.encode_initiate_error(xdlms.InitiateError.PDU_SIZE_TOO_SHORT).hex() == "0e010603"
    assert acse.RLRQ().encode().hex() == "6203800100"


def test_conformance_bit_positions():
    # bit n of the standard's BIT STRING is the n-th bit from the most significant end
    assert xdlms.Conformance.GET == 1 << (23 - 19)
    assert xdlms.Conformance.GENERAL_BLOCK_TRANSFER == 1 << (23 - 2)
    assert xdlms.InitiateResponse(xdlms.Conformance.GET | xdlms.Conformance.ACTION, 1024).encode().hex() == \
        "0800065f1f040000001104000007"


def test_every_apdu_class_has_a_round_trip_strategy():
    import inspect

    from bijli.tools.testing.strategies import apdu as apdu_strategies

    from bijli.dlms import apdu_set_action

    source = inspect.getsource(apdu_strategies)
    classes = {name for module in (apdu, apdu_set_action) for name, obj in vars(module).items()
               if isinstance(obj, type) and issubclass(obj, apdu._Apdu) and obj is not apdu._Apdu}
    assert apdu.SET_ACTION_APDUS <= classes and len(classes) > len(apdu.SET_ACTION_APDUS)
    missing = {name for name in classes if f"apdu.{name}," not in source and f"apdu.{name}(" not in source}
    assert not missing


def test_the_set_and_action_apdus_are_named_in_apdu_and_built_only_when_used():
    """dlms.apdu names its SET/ACTION classes (defined in dlms.apdu_set_action) and decodes
    them, but a process that only GETs never loads that module (issue 16, start-up)."""
    import subprocess
    import sys

    from bijli.dlms import apdu_set_action

    for name in apdu.SET_ACTION_APDUS:
        assert getattr(apdu, name) is getattr(apdu_set_action, name)
        assert getattr(apdu_set_action, name).__module__ == "bijli.dlms.apdu_set_action"
    assert sorted(apdu.SET_ACTION_APDUS) == sorted(
        n for n, o in vars(apdu_set_action).items() if isinstance(o, type) and issubclass(o, apdu._Apdu)
        and o is not apdu._Apdu)
    with pytest.raises(AttributeError):
        apdu.NoSuchApdu  # noqa: B018
    code = ("import sys\n"
            "from bijli.dlms import apdu\n"
            "from bijli.dlms.apdu import AttributeDescriptor, GetRequestNormal\n"
            "from bijli.dlms.obis import Obis\n"
            "req = GetRequestNormal(1, AttributeDescriptor(8, Obis(0, 0, 1, 0, 0, 255), 2))\n"
            "assert apdu.decode(req.encode()) == req\n"
            "assert apdu.decode(bytes.fromhex('c401c100090c07e8061105110000ff800000')).invoke_id == 0xC1\n"
            "print('bijli.dlms.apdu_set_action' in sys.modules)\n"
            "print(type(apdu.decode(bytes.fromhex('c50101' '00'))).__name__)\n"
            "print('bijli.dlms.apdu_set_action' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "SetResponseNormal", "True"]


def test_bench_load_profile_shape_and_hot_path():
    from bijli.tools.bench import dlms as bench_dlms

    profile = bench_dlms._load_profile()
    assert len(profile.value) == 96
    row = profile.value[0].value
    assert len(row) == 7 and isinstance(row[0], axdr.OctetString) and len(row[0].value) == 12
    assert all(isinstance(v, axdr.DoubleLongUnsigned) for v in row[1:])
    assert axdr.decode(axdr.encode(profile)) == profile
    bench_dlms._get_and_respond()
    assert apdu.decode(bench_dlms._GET_REQUEST).attribute.class_id == 3
