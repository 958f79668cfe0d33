"""Public Hypothesis strategies for fuzzing DLMS/COSEM and STS code: yours or ours.

A head-end, a vending system or a protocol library can draw from the same inputs
bijli's own test suite uses, each strategy built from the standard it follows:

- :mod:`.axdr`: A-XDR ``Data`` values (IEC 62056-6-2 clause 4.1.5, the Data CHOICE),
  with every date-time wildcard and compact arrays; and their encodings.
- :mod:`.obis`: OBIS codes (IEC 62056-6-1), as :class:`bijli.dlms.obis.Obis` and as text.
- :mod:`.apdu`: xDLMS APDUs (IEC 62056-5-3 clause 9.5): GET/SET/ACTION in every
  form, notifications, exception responses, general-block-transfer and the
  ciphered containers; ACSE AARQ/AARE/RLRQ/RLRE and the xDLMS initiate. Valid ones
  (``decode(encode(x)) == x``) and :data:`.apdu.invalid_apdus`, mutated encodings
  a decoder must refuse.
- :mod:`.mutation`: :func:`.mutation.mutated`, any valid byte strategy turned into
  near-valid bytes (bit flips, truncation, extension, splices, boundary octets).
- :mod:`.link`: HDLC frames (IEC 62056-46, frame format type 3) and IEC 62056-47
  wrapper frames, as objects and as the octets on the line.
- :mod:`.association`: the AARQ a client sends to open each of a bijli meter's
  associations (public 16, meter reader 32 with LLS, utility 48 with HLS-GMAC and
  ciphering), for the meter's own password and keys.
- :mod:`.sts`: IEC 62055-41 STS tokens for given keys: valid for a meter, and the
  near-misses it must refuse (wrong CRC, wrong key, a TID older than its memory,
  replays).

Hypothesis is a test-time dependency that installing bijli does not pull in:
``pip install 'bijli[testing]'`` (or ``pip install hypothesis``). Importing this
package without it raises :class:`ModuleNotFoundError` saying so; nothing else of
bijli (the pytest plugin's fixtures included) imports Hypothesis.

Every name below is also importable from its module::

    from bijli.tools.testing import strategies as bst

    @given(bst.apdus)
    def test_my_decoder_round_trips(apdu): ...
"""

from __future__ import annotations

try:
    import hypothesis  # noqa: F401  (the one check; every module below imports it)
except ImportError:
    raise ModuleNotFoundError(
        "bijli.tools.testing.strategies needs Hypothesis, a test-time dependency bijli does not install: "
        "pip install 'bijli[testing]' (or pip install hypothesis)", name="hypothesis") from None

from bijli.tools.testing.strategies.apdu import (aares, aarqs, apdus, encoded_apdus, initiate_requests,
                                                 initiate_responses, invalid_apdus, rlres, rlrqs)
from bijli.tools.testing.strategies.association import ASSOCIATIONS, aarqs_for, client_settings_for
from bijli.tools.testing.strategies.axdr import (compact_arrays, cosem_date_times, cosem_dates, cosem_times,
                                                 data_values, encoded_data, simple_data)
from bijli.tools.testing.strategies.link import (hdlc_addresses, hdlc_frames, hdlc_octets, wrapper_frames,
                                                 wrapper_messages)
from bijli.tools.testing.strategies.mutation import mutated
from bijli.tools.testing.strategies.obis import obis_codes, obis_texts
from bijli.tools.testing.strategies.sts import (meter_key, old_tid_tokens, replayed_tokens, tokens_for,
                                                wrong_crc_tokens, wrong_key_tokens)

__all__ = [
    "ASSOCIATIONS", "aares", "aarqs", "aarqs_for", "apdus", "client_settings_for", "compact_arrays", "cosem_date_times", "cosem_dates",
    "cosem_times", "data_values", "encoded_apdus", "encoded_data", "hdlc_addresses", "hdlc_frames", "hdlc_octets",
    "initiate_requests", "initiate_responses", "invalid_apdus", "meter_key", "mutated", "obis_codes", "obis_texts",
    "old_tid_tokens", "replayed_tokens", "rlres", "rlrqs", "simple_data", "tokens_for", "wrapper_frames",
    "wrapper_messages", "wrong_crc_tokens", "wrong_key_tokens",
]
