"""Strategies for OBIS codes (IEC 62056-6-1 clause 4: six value groups A to F, one octet each).

:data:`obis_codes` is every code an octet-string logical name can carry, as
:class:`bijli.dlms.obis.Obis`; :data:`obis_texts` the same codes written the two ways
people write them (``1.0.1.8.0.255`` and the IEC reduced form ``1-0:1.8.0*255``),
which :meth:`Obis.parse` reads back to the same code.
"""

from __future__ import annotations

from hypothesis import strategies as st

from bijli.dlms.obis import Obis

_octet = st.integers(0, 0xFF)

obis_codes = st.builds(Obis, _octet, _octet, _octet, _octet, _octet, _octet)

obis_texts = st.one_of(obis_codes.map(str), obis_codes.map(lambda o: o.iec()))
