"""Key-change progress names the real number of sections: 2 for a 64-bit key, 4 for a 128-bit key
(issue 15 item 16: it read "section 1 of 1"). Checked on the decoder's effect and on the meter's own answer."""

from dataclasses import replace
from datetime import datetime

import pytest

from bijli.firmware.meter import Meter, MeterConfig
from bijli.firmware.storage import Storage
from bijli.firmware.sts import vend as v
from bijli.firmware.sts.decoder import decode
from bijli.firmware.sts.keys import Pan, VendingKeyMaterial
from bijli.firmware.sts.results import KeyChanged, KeyChangeSection
from bijli.firmware.sts.state import DecoderState

NOW = datetime(2026, 11, 26, 12)


def _key(ea, dkga, vk, krn=1):
    return VendingKeyMaterial(bytes.fromhex(vk), Pan("600727000000000009"), "123457", "01", krn, 2, ea, dkga,
                              2014).decoder_key()


@pytest.mark.parametrize("ea,dkga,vk,total", [
    ("07", "02", "ABABABABABABABAB", 2),
    ("11", "04", "ABABABABABABABAB949494949494949401234567", 4),
])
def test_each_section_says_n_of_the_set(ea, dkga, vk, total):
    old, new = _key(ea, dkga, vk), _key(ea, dkga, vk, krn=2)
    state = DecoderState(old)
    sections = v.vend_key_change(old, new)
    assert len(sections) == total
    for i, s in enumerate(sections[:-1], start=1):
        r, state = decode(state, s.digits, NOW)
        assert isinstance(r.effect, KeyChangeSection) and r.effect.total == total
        assert r.effect.message == f"key change section {r.effect.section} of {total} ({i} of {total} held)"
    r, state = decode(state, sections[-1].digits, NOW)
    assert isinstance(r.effect, KeyChanged) and state.key == new


def test_the_meter_answers_with_the_real_count(tmp_path):
    config = MeterConfig.from_dict({})  # the demo meter: MISTY1, a 128-bit key, 4 sections
    storage = Storage.open(tmp_path / "state")
    try:
        meter = Meter(config, storage, NOW)
        cur = config.sts.vend_key()
        new = replace(config.sts.vending, krn=2).decoder_key()
        sections = v.vend_key_change(cur, new)
        words = [meter.enter_token(s.digits).message for s in sections[:3]]
        assert words == [f"key change section {n} of 4 ({n} of 4 held)" for n in (1, 2, 3)]
        assert "of 1" not in " ".join(words)
    finally:
        storage.close()
