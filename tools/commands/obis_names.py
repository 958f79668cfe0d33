"""Names for OBIS codes and COSEM interface classes, for people reading ``bijli objects``.

A meter's object list (IEC 62056-6-2 clause 4.4.3, association LN attribute 2)
carries each object's class id and logical name but no words. The words come
from the standards: electricity codes are composed from value groups C (the
quantity) and D (how it is processed) of IEC 62056-6-1 clause 7.5 tables 12-16;
the abstract and IS 15959-2 codes a prepaid meter carries are named one by one.
A code we have no words for gets none (the OBIS itself is the name). Pure data,
no imports of ours: ``objects`` is the only user.
"""

from __future__ import annotations

#: interface classes (IEC 62056-6-2 clause 4, Blue Book part 2)
CLASS_NAMES = {
    1: "Data", 3: "Register", 4: "Extended register", 5: "Demand register", 7: "Profile generic", 8: "Clock",
    9: "Script table", 11: "Special days table", 15: "Association LN", 17: "SAP assignment",
    18: "Image transfer", 19: "IEC local port setup", 20: "Activity calendar", 21: "Register monitor",
    22: "Single action schedule", 23: "IEC HDLC setup", 40: "Push setup", 41: "TCP-UDP setup", 42: "IPv4 setup",
    61: "Register table", 64: "Security setup", 70: "Disconnect control", 71: "Limiter", 111: "Account",
    112: "Credit", 113: "Charge", 115: "Token gateway",
}

#: abstract objects and IS 15959-2 / IEC 62056-6-1 codes named whole (A.B.C.D.E, F ignored)
_WHOLE = {
    (0, 0, 1, 0, 0): "clock",
    (0, 0, 42, 0, 0): "COSEM logical device name",
    (0, 0, 40, 0, 0): "current association",
    (0, 0, 41, 0, 0): "SAP assignment",
    (0, 0, 43, 1, 3): "invocation counter, utility association",
    (0, 0, 96, 1, 0): "meter serial number",
    (0, 0, 96, 1, 1): "manufacturer name",
    (0, 0, 96, 1, 4): "year of manufacture",
    (1, 0, 0, 2, 0): "firmware version",
    (0, 0, 96, 3, 10): "disconnect control",
    (0, 0, 17, 0, 0): "limiter",
    (0, 0, 19, 0, 0): "account",
    (0, 0, 19, 10, 0): "token credit",
    (0, 0, 19, 10, 1): "emergency credit",
    (0, 0, 19, 20, 0): "consumption charge",
    (0, 0, 19, 40, 0): "token gateway",
    (0, 0, 11, 0, 0): "special days table",
    (0, 0, 10, 0, 1): "MD reset / end of billing script table",
    (0, 0, 10, 0, 100): "tariffication script table",
    (0, 0, 10, 0, 106): "disconnect control script table",
    (0, 0, 13, 0, 0): "activity calendar",
    (0, 0, 15, 0, 0): "end of billing period schedule",
    (0, 0, 15, 0, 2): "image activation schedule",
    (0, 0, 44, 0, 0): "image transfer",
    (0, 0, 20, 0, 0): "IEC optical port setup",
    (0, 0, 22, 0, 0): "IEC HDLC setup",
    (0, 0, 25, 0, 0): "TCP-UDP setup",
    (0, 0, 25, 1, 0): "IPv4 setup",
    (0, 0, 25, 9, 0): "push setup",
    (0, 0, 0, 1, 2): "billing date",
    (0, 0, 94, 91, 9): "meter type",
    (0, 0, 94, 91, 10): "name plate details",
    (0, 0, 94, 91, 11): "meter category",
    (0, 0, 94, 91, 12): "current rating",
    (0, 0, 94, 96, 19): "metering mode",
    (0, 0, 94, 96, 20): "payment mode",
    (0, 0, 94, 96, 21): "last recharge amount",
    (0, 0, 94, 96, 22): "last recharge time",
    (0, 0, 94, 96, 23): "total amount at last recharge",
    (0, 0, 94, 96, 24): "current balance amount",
    (0, 0, 94, 96, 25): "current balance time",
    (0, 0, 94, 96, 26): "billed amount",
    (1, 0, 94, 91, 0): "instantaneous profile",
    (1, 0, 94, 91, 3): "instantaneous scaler profile",
    (1, 0, 94, 91, 4): "block load scaler profile",
    (1, 0, 94, 91, 5): "daily load scaler profile",
    (1, 0, 94, 91, 6): "billing scaler profile",
    (1, 0, 94, 91, 7): "event scaler profile",
    (1, 0, 99, 1, 0): "block load profile",
    (1, 0, 99, 2, 0): "daily load profile",
    (1, 0, 98, 1, 0): "billing profile",
}

#: value group C, electricity (IEC 62056-6-1 table 12)
_QUANTITY = {
    1: "active power import (+P)", 2: "active power export (-P)", 3: "reactive power import (+Q)",
    4: "reactive power export (-Q)", 5: "reactive power Q1", 6: "reactive power Q2", 7: "reactive power Q3",
    8: "reactive power Q4", 9: "apparent power import (+S)", 10: "apparent power export (-S)",
    11: "current, any phase", 12: "voltage, any phase", 13: "power factor", 14: "supply frequency",
    31: "current L1", 32: "voltage L1", 33: "power factor L1", 51: "current L2", 52: "voltage L2",
    71: "current L3", 72: "voltage L3", 91: "neutral current",
}

#: value group D, processing (IEC 62056-6-1 table 13, the codes meters use)
_PROCESSING = {
    4: "current average", 5: "last average", 6: "maximum demand", 7: "instantaneous", 8: "energy (time integral)",
    0: "billing period average", 27: "average over the capture period", 29: "time integral over the capture period",
}

_ENERGY = {1: "active energy import (+A)", 2: "active energy export (-A)", 5: "reactive energy Q1",
           6: "reactive energy Q2", 7: "reactive energy Q3", 8: "reactive energy Q4",
           9: "apparent energy import", 10: "apparent energy export"}


def obis_name(obis) -> str:
    """Words for a logical name (an Obis or any 6-sequence), or '' when we have none."""
    a, b, c, d, e = tuple(obis)[:5]
    whole = _WHOLE.get((a, b, c, d, e))
    if whole is not None:
        return whole
    if a == 0 and c == 99 and d == 98:
        return f"event log {e}"
    if a == 1 and c in _QUANTITY and d in _PROCESSING:
        if d == 8 and c in _ENERGY:
            name = _ENERGY[c]
        else:
            name = f"{_QUANTITY[c]}, {_PROCESSING[d]}"
        return name if e == 0 else f"{name}, tariff {e}"
    return ""


def class_name(class_id: int) -> str:
    return CLASS_NAMES.get(class_id, f"class {class_id}")
