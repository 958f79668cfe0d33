"""Physical units of COSEM scaler_unit (IEC 62056-6-2 table 4, enum values)."""

from enum import IntEnum


class Unit(IntEnum):
    YEAR = 1
    MONTH = 2
    WEEK = 3
    DAY = 4
    HOUR = 5
    MINUTE = 6
    SECOND = 7
    PHASE_ANGLE_DEGREE = 8
    TEMPERATURE_C = 9
    CURRENCY = 10
    METRE = 11
    METRE_PER_SECOND = 12
    CUBIC_METRE = 13
    WATT = 27
    VOLT_AMPERE = 28
    VAR = 29
    WATT_HOUR = 30
    VOLT_AMPERE_HOUR = 31
    VAR_HOUR = 32
    AMPERE = 33
    COULOMB = 34
    VOLT = 35
    HERTZ = 44
    ACTIVE_ENERGY_METER_CONSTANT = 45  # 1/(Wh)
    PERCENTAGE = 56
    AMPERE_HOUR = 57
    OTHER = 254
    COUNT = 255  # no unit, unitless count

    @property
    def symbol(self) -> str:
        return _SYMBOLS.get(self, self.name.lower())


_SYMBOLS = {
    Unit.WATT: "W", Unit.VOLT_AMPERE: "VA", Unit.VAR: "var", Unit.WATT_HOUR: "Wh",
    Unit.VOLT_AMPERE_HOUR: "VAh", Unit.VAR_HOUR: "varh", Unit.AMPERE: "A", Unit.VOLT: "V",
    Unit.HERTZ: "Hz", Unit.CURRENCY: "currency", Unit.SECOND: "s", Unit.PERCENTAGE: "%", Unit.COUNT: "",
}
