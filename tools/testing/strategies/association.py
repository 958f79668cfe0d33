"""Strategies for the AARQ that opens each of a bijli meter's associations (IEC 62056-5-3 clause 9.3.2).

A bijli meter (as an IS 15959 meter) has three application associations
(``bijli.firmware.cosem.associations``): the public client (SAP 16, no
authentication), the meter reader (SAP 32, low level security: the password in
the AARQ) and the utility settings client (SAP 48, high level security mechanism
5, HLS-GMAC, with a glo-ciphered xDLMS initiate under security suite 0).
:func:`aarqs_for` draws AARQs the meter accepts for one of them, varying what a
head-end may vary: the proposed conformance (always with GET, so the negotiated
block is never empty, and for HLS with ACTION, the service that carries pass 3,
reply_to_HLS_authentication), the client's max receive PDU size (from 64 octets,
the least a meter must take, or 128 in a ciphered association, to 65535), and for
HLS the client-to-server challenge (8 to 64 octets, clause 9.2.7.4), the client
system title, the invocation counter and a dedicated key.
:func:`client_settings_for` draws the same as
:class:`bijli.dlms.client.ClientSettings`, for a test that goes on to pass 3 and 4
of HLS (``Client(transport, settings).associate()``).

The secrets are the meter's: pass ``keys=`` the ``dlms`` part of its manifest
(:attr:`bijli.tools.testing.RunningMeter.keys`), or the demo meter's are used. A
ciphered AARQ spends the invocation counter it carries: give a running meter's
next expected one (its object 0.0.43.1.3.255) as ``invocation_counter``.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st

from bijli.dlms.acse import Mechanism
from bijli.dlms.client import DEFAULT_CONFORMANCE, ClientSession, ClientSettings
from bijli.dlms.security import SYSTEM_TITLE_LENGTH
from bijli.dlms.xdlms import Conformance

#: association name -> client SAP, as a bijli meter has them
ASSOCIATIONS = {"public": 16, "reader": 32, "utility": 48}
MIN_CLIENT_PDU = 64  # the least a meter must accept (InitiateError pdu-size-too-short below)
# a ciphered association keeps room for the largest protection (general-ciphering, 91 octets)
# in every answer, so below this a bijli meter accepts the AARQ but cannot fit HLS pass 4
MIN_CIPHERED_CLIENT_PDU = 128

_OPTIONAL_BITS = [bit for bit in Conformance if bit & DEFAULT_CONFORMANCE and bit is not Conformance.GET]


def _sap(association: "str | int") -> int:
    if association in ASSOCIATIONS.values():
        return int(association)
    try:
        return ASSOCIATIONS[association]
    except KeyError:
        raise ValueError(f"association {association!r} is one of {', '.join(ASSOCIATIONS)} "
                         f"(or SAP {', '.join(map(str, ASSOCIATIONS.values()))})") from None


def _conformance(bits: list, base: Conformance = Conformance.GET) -> Conformance:
    value = base
    for bit in bits:
        value |= bit
    return value


def client_settings_for(association: "str | int", *, keys: dict | None = None,
                        invocation_counter: int = 0) -> st.SearchStrategy:
    """:class:`ClientSettings` that open ``association`` ("public", "reader", "utility" or
    its SAP) on a meter with the secrets ``keys`` (``reader_password``,
    ``encryption_key``, ``authentication_key``; hex for the keys)."""
    sap = _sap(association)
    secrets: dict = {}
    if keys:
        secrets = {"password": keys["reader_password"].encode("latin-1"),
                   "encryption_key": bytes.fromhex(keys["encryption_key"]),
                   "authentication_key": bytes.fromhex(keys["authentication_key"])}
    base = ClientSettings.for_association(sap, **secrets)
    hls = base.mechanism is Mechanism.HLS_GMAC
    must = Conformance.GET | (Conformance.ACTION if hls else Conformance(0))
    common = {
        "conformance": st.lists(st.sampled_from(_OPTIONAL_BITS), unique=True).map(lambda bits: _conformance(bits, must)),
        "max_pdu": st.integers(MIN_CIPHERED_CLIENT_PDU if base.ciphered else MIN_CLIENT_PDU, 0xFFFF),
    }
    if hls:
        common.update(
            challenge=st.binary(min_size=8, max_size=64),
            system_title=st.binary(min_size=SYSTEM_TITLE_LENGTH, max_size=SYSTEM_TITLE_LENGTH),
            invocation_counter=st.integers(invocation_counter, min(invocation_counter + 0xFFFF, 0xFFFFFFFE)),
            dedicated_key=st.none() | st.binary(min_size=16, max_size=16),
        )
    return st.fixed_dictionaries(common).map(lambda drawn: replace(base, **drawn))


def aarqs_for(association: "str | int", *, keys: dict | None = None, invocation_counter: int = 0) -> st.SearchStrategy:
    """AARQ octets a meter with ``keys`` accepts for ``association`` (see :func:`client_settings_for`)."""
    return client_settings_for(association, keys=keys, invocation_counter=invocation_counter).map(
        lambda settings: ClientSession(replace(settings)).aarq())
