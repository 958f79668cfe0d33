"""Security suite 0 (dlms.security) against gurux-dlms as an oracle, and the counter scheme."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bijli.dlms import security as s
from bijli.dlms.errors import CounterStoreError, ReplayError, SecurityError

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
TITLE = b"BJL\x00\x00\x00\x00\x01"


def gurux_encrypt(control: int, ic: int, plaintext: bytes) -> bytes:
    from gurux_dlms.AesGcmParameter import AesGcmParameter
    from gurux_dlms.enums import Security
    from gurux_dlms.GXDLMSChippering import GXDLMSChippering

    p = AesGcmParameter(0xC8, TITLE, EK, AK)
    p.security = Security(control)
    p.invocationCounter = ic
    out = bytes(GXDLMSChippering.encryptAesGcm(p, plaintext))
    return out[2:] if out[1] < 0x80 else out[3:]  # drop tag and length


@pytest.mark.parametrize("control", (0x10, 0x20, 0x30))
def test_ciphering_matches_gurux_and_round_trips(control):
    plain = bytes.fromhex("C001C100080000010000FF0200")
    ours = s.encrypt(control, TITLE, 0x1234, EK, AK, plain)
    assert ours == gurux_encrypt(control, 0x1234, plain)
    header, back = s.decrypt(ours, TITLE, EK, AK)
    assert back == plain and header == s.SecurityHeader(control, 0x1234)


def test_hls_gmac_matches_gurux():
    from gurux_dlms.GXCiphering import GXCiphering

    c = GXCiphering(TITLE)
    c.blockCipherKey, c.authenticationKey, c.invocationCounter = EK, AK, 77
    challenge = bytes(range(16))
    assert s.hls_gmac(TITLE, 77, EK, AK, challenge) == bytes(c.generateGmacPassword(challenge))
    assert s.verify_hls_gmac(s.hls_gmac(TITLE, 77, EK, AK, challenge), TITLE, EK, AK, challenge) == 77
    with pytest.raises(SecurityError):
        s.verify_hls_gmac(s.hls_gmac(TITLE, 77, EK, AK, challenge), b"OTHER123", EK, AK, challenge)


@settings(max_examples=60)
@given(st.binary(max_size=64), st.integers(0, 16 + 40), st.sampled_from((0x10, 0x30)))
def test_any_tampering_is_detected(plain, flip, control):
    ct = bytearray(s.encrypt(control, TITLE, 5, EK, AK, plain))
    pos = flip % len(ct)
    ct[pos] ^= 0x01
    with pytest.raises(SecurityError):
        s.decrypt(bytes(ct), TITLE, EK, AK)


@pytest.mark.parametrize("control", (0x10, 0x30))
def test_a_wrong_key_title_or_authentication_key_fails_the_tag(control):
    ct = s.encrypt(control, TITLE, 9, EK, AK, b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x01")
    for title, ek, ak in ((TITLE, bytes(16), AK), (b"OTHER123", EK, AK), (TITLE, EK, bytes(16))):
        with pytest.raises(SecurityError):
            s.decrypt(ct, title, ek, ak)
    assert s.decrypt(ct, TITLE, EK, AK)[1] == b"\xc4\x01\xc1\x00\x06\x00\x00\x00\x01"


@settings(max_examples=60)
@given(st.binary(max_size=40))
def test_decrypt_of_garbage_raises_only_security_error(blob):
    try:
        s.decrypt(blob, TITLE, EK, AK)
    except SecurityError:
        pass


def test_key_wrap_rfc3394_vector():
    kek = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
    key = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    wrapped = s.wrap_key(kek, key)
    assert wrapped.hex().upper() == "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5"  # RFC 3394 4.1
    assert s.unwrap_key(kek, wrapped) == key
    with pytest.raises(SecurityError):
        s.unwrap_key(bytes(16), wrapped)


def test_counters_reserve_in_steps_and_never_repeat_across_restarts():
    store = s.MemoryCounterStore()
    c = s.InvocationCounters(store, reserve_step=100)
    used = [c.next_tx() for _ in range(250)]
    assert used == list(range(250))
    assert store.saves == 3  # at 0, 100 and 200, not per APDU
    # a crash: restart from what was stored, never below anything used
    c2 = s.InvocationCounters(store, reserve_step=100)
    assert c2.next_tx() >= 250
    # incoming: strictly increasing per client, remembered across a restart
    c2.accept_rx(b"CLIENT01", 10)
    with pytest.raises(ReplayError):
        c2.accept_rx(b"CLIENT01", 10)
    c2.accept_rx(b"CLIENT02", 3)  # another client has its own counter
    c3 = s.InvocationCounters(store, reserve_step=100)
    with pytest.raises(ReplayError):
        c3.accept_rx(b"CLIENT01", 10)
    # a clean shutdown stores exact values: nothing skipped
    c3.accept_rx(b"CLIENT01", 200)
    c3.flush()
    assert s.InvocationCounters(store).expected_rx(b"CLIENT01") == 201


def test_counter_positions_resume_without_a_store_write_and_never_below_a_replay():
    from bijli.dlms.security import InvocationCounters, MemoryCounterStore

    store = MemoryCounterStore()
    first = InvocationCounters(store, reserve_step=100)
    first.accept_rx(b"CLIENT01", 5)
    first.next_tx()
    saves, ram = store.saves, first.positions()
    again = InvocationCounters(store, reserve_step=100)  # the same meter, its RAM handed back
    again.resume(ram)
    assert store.saves == saves and again.expected_rx(b"CLIENT01") == 6
    with pytest.raises(ReplayError):
        again.accept_rx(b"CLIENT01", 5)
    lost = InvocationCounters(MemoryCounterStore(), reserve_step=100)  # a store that lost its reservations
    lost.resume(ram)
    assert lost.store.load() == {k: v + 100 for k, v in ram.items()}  # reserved again before use


class _FullDisk(s.MemoryCounterStore):
    """A counter store on storage that fails while ``full`` (the meter's is its sqlite file:
    tests/integration/test_storage_fault.py fills that one for real)."""

    full = False

    def save(self, name: str, value: int) -> None:
        if self.full:
            raise CounterStoreError(f"{name}: database or disk is full")
        super().save(name, value)


def test_a_counter_that_cannot_be_reserved_is_not_used_and_reserve_ahead_covers_a_full_disk():
    store = _FullDisk()
    c = s.InvocationCounters(store, reserve_step=100)
    store.full = True
    with pytest.raises(CounterStoreError):
        c.next_tx()
    with pytest.raises(CounterStoreError):
        c.accept_rx(b"CLIENT01", 7)
    assert c.positions() == {} and c.expected_rx(b"CLIENT01") == 0  # nothing moved
    store.full = False
    c.accept_rx(b"CLIENT01", 7)
    c.next_tx()
    c.flush()  # a clean stop keeps exact values: a start after it has no headroom left
    again = s.InvocationCounters(store, reserve_step=100)
    again.reserve_ahead()  # what a start does: one step ahead of each counter it knows
    store.full = True  # then the disk fills: the known client and the meter's own counter go on
    assert again.next_tx() == 1
    again.accept_rx(b"CLIENT01", 8)
    assert again.expected_rx(b"CLIENT01") == 9
    with pytest.raises(CounterStoreError):  # a client never seen needs a write: refused for now
        again.accept_rx(b"CLIENT02", 1)


def test_decrypt_with_the_header_already_read_gives_the_same():
    ct = s.encrypt(0x30, TITLE, 7, EK, AK, b"\xc0\x01\xc1\x00\x08")
    assert s.decrypt(ct, TITLE, EK, AK, s.read_header(ct)) == s.decrypt(ct, TITLE, EK, AK)


def test_the_counter_name_of_a_client_is_the_same_whatever_its_title_comes_in():
    for _ in range(2):  # the second time from the names kept
        assert s.rx_counter_name(TITLE) == s.rx_counter_name(bytearray(TITLE)) == "rx:" + TITLE.hex()


def test_a_new_clients_first_counter_and_the_servers_are_reserved_in_one_write():
    """A client's first ciphered association needs its counter and the server's reserved:
    one durable write (a meter's is an fsync'd commit), which also tops up any counter
    with less than half a step left."""

    class Writes(s.MemoryCounterStore):
        writes = 0

        def save_many(self, values: dict[str, int]) -> None:
            self.writes += 1
            super().save_many(values)

    store = Writes()
    c = s.InvocationCounters(store, reserve_step=100)
    c.accept_rx(b"CLIENT01", 0)
    assert c.next_tx() == 0 and store.writes == 1
    assert store.load() == {s.rx_counter_name(b"CLIENT01"): 101, s.TX_COUNTER: 100}
    for _ in range(59):
        c.next_tx()  # 60 used: less than half a step left
    c.accept_rx(b"CLIENT02", 7)
    assert store.writes == 2
    assert store.load() == {s.rx_counter_name(b"CLIENT01"): 101, s.rx_counter_name(b"CLIENT02"): 108,
                            s.TX_COUNTER: 160}
    c.accept_rx(b"CLIENT01", 1)  # within its reservation: no write
    assert store.writes == 2
