"""The payment metering classes: Account (111), Credit (112) and Charge (113),
all version 0, IEC 62056-6-2 clauses 4.6.2-4.6.4 (Blue Book "payment metering").

An Account aggregates the credits a meter may draw on (token credit, emergency
credit, ...) and the charges that consume them (energy, standing charge, debt
recovery). Each Credit holds an amount and the rules for when it may be used;
each Charge says what is collected, at which unit price, from which credit.
Amounts are double-long in the currency's smallest unit scaled by
``currency.currency_scale`` (e.g. scale -2: paise for INR).

The arithmetic is the firmware's (``firmware.prepaid``); these objects show it
with the standard's types and pass method calls to injected handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from bijli.dlms import axdr
from bijli.dlms.cosem.bound import NO_PARAMETER, BoundObject
from bijli.dlms.cosem.values import (
    DATE_TIME, DOUBLE_LONG, DOUBLE_LONG_UNSIGNED, LOGICAL_NAME, LONG_UNSIGNED, UNSIGNED, Codec, array_of, bits,
    integer, mismatch, parse_bits, parse_int, parse_obis, parse_struct, struct_of,
)
from bijli.dlms.obis import Obis

# --- Account (111) -----------------------------------------------------------------


class PaymentMode(IntEnum):
    CREDIT = 1
    PREPAYMENT = 2


class AccountStatus(IntEnum):
    NEW_INACTIVE = 1
    ACTIVE = 2
    CLOSED = 3


class CreditStatusBit(IntEnum):
    """current_credit_status bit numbers (bit 0 is the first, most significant, bit sent)."""

    IN_CREDIT = 0
    LOW_CREDIT = 1
    NEXT_CREDIT_ENABLED = 2
    NEXT_CREDIT_SELECTABLE = 3
    CREDIT_REFERENCE_LIST = 4
    SELECTABLE_CREDIT_IN_USE = 5
    OUT_OF_CREDIT = 6
    RESERVED = 7


def flags(*bit_numbers: int, size: int = 8) -> int:
    """The int of a bit-string of ``size`` bits with ``bit_numbers`` set (bit 0 sent first)."""
    value = 0
    for b in bit_numbers:
        value |= 1 << (size - 1 - int(b))
    return value


@dataclass(frozen=True, slots=True)
class AccountModeAndStatus:
    """account_mode_and_status ::= structure {payment_mode enum, account_status enum}."""

    payment_mode: PaymentMode = PaymentMode.PREPAYMENT
    account_status: AccountStatus = AccountStatus.ACTIVE

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.Enum(int(self.payment_mode)), axdr.Enum(int(self.account_status))))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "AccountModeAndStatus":
        m, s = parse_struct(value, 2)
        mode, status = parse_int(m, axdr.Enum), parse_int(s, axdr.Enum)
        if mode not in PaymentMode._value2member_map_ or status not in AccountStatus._value2member_map_:
            raise mismatch("payment_mode 1..2 and account_status 1..3")
        return cls(PaymentMode(mode), AccountStatus(status))


@dataclass(frozen=True, slots=True)
class CreditChargeConfiguration:
    """structure {credit_reference octet-string, charge_reference octet-string,
    collection_configuration bit-string(3)}: which credit pays which charge."""

    credit_reference: Obis
    charge_reference: Obis
    collection_configuration: int = 0  # bits: 0 collect when supply disconnected, 1 in load limiting, 2 in friendly credit

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.OctetString(bytes(self.credit_reference)), axdr.OctetString(bytes(self.charge_reference)),
                               axdr.BitString.from_int(self.collection_configuration, 3)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "CreditChargeConfiguration":
        cr, ch, conf = parse_struct(value, 3)
        return cls(parse_obis(cr), parse_obis(ch), int(parse_bits(conf, 3), 2))


@dataclass(frozen=True, slots=True)
class TokenGatewayConfiguration:
    """structure {credit_reference octet-string, token_proportion unsigned (%)}."""

    credit_reference: Obis
    token_proportion: int = 100

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.OctetString(bytes(self.credit_reference)), axdr.Unsigned(self.token_proportion)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "TokenGatewayConfiguration":
        cr, p = parse_struct(value, 2)
        proportion = parse_int(p, axdr.Unsigned)
        if proportion > 100:
            raise mismatch("token_proportion is a percentage")
        return cls(parse_obis(cr), proportion)


class CurrencyUnit(IntEnum):
    TIME = 0
    CONSUMPTION = 1
    MONETARY = 2


@dataclass(frozen=True, slots=True)
class Currency:
    """currency ::= structure {currency_name utf8-string, currency_scale integer, currency_unit enum}."""

    name: str = "INR"
    scale: int = -2
    unit: CurrencyUnit = CurrencyUnit.MONETARY

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.Utf8String(self.name), axdr.Integer(self.scale), axdr.Enum(int(self.unit))))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "Currency":
        n, s, u = parse_struct(value, 3)
        if type(n) is not axdr.Utf8String:
            raise mismatch("currency_name is a utf8-string")
        unit = parse_int(u, axdr.Enum)
        if unit not in CurrencyUnit._value2member_map_:
            raise mismatch("currency_unit is 0..2")
        return cls(n.value, parse_int(s, axdr.Integer), CurrencyUnit(unit))


class Account(BoundObject):
    """Bindings: one getter per attribute (Python values: ints, Obis, datetimes, the
    dataclasses above), ``set_`` for the writable ones, ``on_activate_account`` /
    ``on_close_account`` / ``on_reset_account`` (no argument)."""

    CLASS_ID = 111
    VERSION = 0
    ATTRIBUTES = (
        "logical_name", "account_mode_and_status", "current_credit_in_use", "current_credit_status",
        "available_credit", "amount_to_clear", "clearance_threshold", "aggregated_debt", "credit_reference_list",
        "charge_reference_list", "credit_charge_configuration", "token_gateway_configuration",
        "account_activation_time", "account_closure_time", "currency", "low_credit_threshold",
        "next_credit_available_threshold", "max_provision", "max_provision_period",
    )
    METHODS = ("activate_account", "close_account", "reset_account")
    TYPES = {
        "account_mode_and_status": struct_of(AccountModeAndStatus),
        "current_credit_in_use": UNSIGNED,
        "current_credit_status": bits(8),
        "available_credit": DOUBLE_LONG,
        "amount_to_clear": DOUBLE_LONG,
        "clearance_threshold": DOUBLE_LONG,
        "aggregated_debt": DOUBLE_LONG,
        "credit_reference_list": array_of(LOGICAL_NAME),
        "charge_reference_list": array_of(LOGICAL_NAME),
        "credit_charge_configuration": array_of(struct_of(CreditChargeConfiguration)),
        "token_gateway_configuration": array_of(struct_of(TokenGatewayConfiguration)),
        "account_activation_time": DATE_TIME,
        "account_closure_time": DATE_TIME,
        "currency": struct_of(Currency),
        "low_credit_threshold": DOUBLE_LONG,
        "next_credit_available_threshold": DOUBLE_LONG,
        "max_provision": LONG_UNSIGNED,
        "max_provision_period": DOUBLE_LONG_UNSIGNED,
    }
    PARAMS = {"activate_account": NO_PARAMETER, "close_account": NO_PARAMETER, "reset_account": NO_PARAMETER}
    DEFAULTS = {
        "account_mode_and_status": AccountModeAndStatus(), "amount_to_clear": 0, "clearance_threshold": 0,
        "aggregated_debt": 0, "credit_reference_list": (), "charge_reference_list": (),
        "credit_charge_configuration": (), "token_gateway_configuration": (), "account_activation_time": None,
        "account_closure_time": None, "currency": Currency(), "next_credit_available_threshold": 0,
        "max_provision": 0, "max_provision_period": 0,
    }


# --- Credit (112) -------------------------------------------------------------------


class CreditType(IntEnum):
    TOKEN = 0
    RESERVED = 1
    EMERGENCY = 2
    TIME_BASED = 3
    CONSUMPTION_BASED = 4


class CreditStatus(IntEnum):
    ENABLED = 0
    SELECTABLE = 1
    SELECTED_INVOKED = 2
    IN_USE = 3
    EXHAUSTED = 4


class CreditConfigurationBit(IntEnum):
    """credit_configuration bit-string(5) bit numbers."""

    VISUAL_INDICATION = 0
    CONFIRMATION_REQUIRED = 1
    PAID_BACK = 2
    RESETTABLE = 3
    TOKENS = 4


class Credit(BoundObject):
    """Bindings: getters per attribute; ``on_update_amount(int)``,
    ``on_set_amount_to_value(int)``, ``on_invoke_credit(int status)``."""

    CLASS_ID = 112
    VERSION = 0
    ATTRIBUTES = (
        "logical_name", "current_credit_amount", "type", "priority", "warning_threshold", "limit",
        "credit_configuration", "status", "preset_credit_amount", "credit_available_threshold", "period",
    )
    METHODS = ("update_amount", "set_amount_to_value", "invoke_credit")
    TYPES = {
        "current_credit_amount": DOUBLE_LONG,
        "type": integer(axdr.Enum, 0, 4),
        "priority": UNSIGNED,
        "warning_threshold": DOUBLE_LONG,
        "limit": DOUBLE_LONG,
        "credit_configuration": bits(5),
        "status": integer(axdr.Enum, 0, 4),
        "preset_credit_amount": DOUBLE_LONG,
        "credit_available_threshold": DOUBLE_LONG,
        "period": DATE_TIME,
    }
    # invoke_credit carries the credit_status to move to; clients send it as enum or unsigned
    PARAMS = {
        "update_amount": DOUBLE_LONG,
        "set_amount_to_value": DOUBLE_LONG,
        "invoke_credit": Codec("enum", axdr.Enum, lambda d: parse_int(d, axdr.Enum) if type(d) is axdr.Enum
                               else parse_int(d, axdr.Unsigned)),
    }
    DEFAULTS = {"warning_threshold": 0, "limit": 0, "credit_configuration": 0, "preset_credit_amount": 0,
                "credit_available_threshold": 0, "period": None}


# --- Charge (113) -------------------------------------------------------------------


class ChargeType(IntEnum):
    CONSUMPTION_BASED_COLLECTION = 0
    TIME_BASED_COLLECTION = 1
    PAYMENT_EVENT_BASED_COLLECTION = 2


@dataclass(frozen=True, slots=True)
class ChargeTableElement:
    """structure {index octet-string, charge_per_unit long}: the price of one tariff index."""

    index: bytes
    charge_per_unit: int

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((axdr.OctetString(self.index), axdr.Long(self.charge_per_unit)))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "ChargeTableElement":
        i, c = parse_struct(value, 2)
        if type(i) is not axdr.OctetString:
            raise mismatch("charge table index is an octet-string")
        return cls(i.value, parse_int(c, axdr.Long))


@dataclass(frozen=True, slots=True)
class UnitCharge:
    """unit_charge ::= structure {charge_per_unit_scaling structure {commodity_scale integer,
    price_scale integer}, commodity structure {class_id long-unsigned, logical_name
    octet-string, attribute_index integer}, charge_table array charge_table_element}."""

    commodity_scale: int = 0
    price_scale: int = 0
    commodity_class_id: int = 0
    commodity_logical_name: Obis = Obis(0, 0, 0, 0, 0, 0)
    commodity_attribute_index: int = 0
    charge_table: tuple[ChargeTableElement, ...] = ()

    def to_data(self) -> axdr.Structure:
        return axdr.Structure((
            axdr.Structure((axdr.Integer(self.commodity_scale), axdr.Integer(self.price_scale))),
            axdr.Structure((axdr.LongUnsigned(self.commodity_class_id), axdr.OctetString(bytes(self.commodity_logical_name)),
                            axdr.Integer(self.commodity_attribute_index))),
            axdr.Array(tuple(e.to_data() for e in self.charge_table)),
        ))

    @classmethod
    def from_data(cls, value: axdr.Data) -> "UnitCharge":
        scaling, commodity, table = parse_struct(value, 3)
        cs, ps = parse_struct(scaling, 2)
        cid, ln, attr = parse_struct(commodity, 3)
        if type(table) is not axdr.Array:
            raise mismatch("charge_table is an array")
        return cls(parse_int(cs, axdr.Integer), parse_int(ps, axdr.Integer), parse_int(cid, axdr.LongUnsigned),
                   parse_obis(ln), parse_int(attr, axdr.Integer),
                   tuple(ChargeTableElement.from_data(e) for e in table.value))


UNIT_CHARGE = struct_of(UnitCharge)


class Charge(BoundObject):
    """Bindings: getters per attribute; ``on_update_unit_charge(UnitCharge)`` (sets the
    passive unit charge), ``on_activate_passive_unit_charge()``, ``on_collect()``,
    ``on_update_total_amount_remaining(int)``, ``on_set_total_amount_remaining(int)``."""

    CLASS_ID = 113
    VERSION = 0
    ATTRIBUTES = (
        "logical_name", "total_amount_paid", "charge_type", "priority", "unit_charge_active", "unit_charge_passive",
        "unit_charge_activation_time", "period", "charge_configuration", "last_collection_time",
        "last_collection_amount", "total_amount_remaining", "proportion",
    )
    METHODS = ("update_unit_charge", "activate_passive_unit_charge", "collect", "update_total_amount_remaining",
               "set_total_amount_remaining")
    TYPES = {
        "total_amount_paid": DOUBLE_LONG,
        "charge_type": integer(axdr.Enum, 0, 2),
        "priority": UNSIGNED,
        "unit_charge_active": UNIT_CHARGE,
        "unit_charge_passive": UNIT_CHARGE,
        "unit_charge_activation_time": DATE_TIME,
        "period": DOUBLE_LONG_UNSIGNED,
        "charge_configuration": bits(2),  # bit 0 percentage-based collection, bit 1 continuous collection
        "last_collection_time": DATE_TIME,
        "last_collection_amount": DOUBLE_LONG,
        "total_amount_remaining": DOUBLE_LONG,
        "proportion": LONG_UNSIGNED,
    }
    PARAMS = {
        "update_unit_charge": UNIT_CHARGE,
        "activate_passive_unit_charge": NO_PARAMETER,
        "collect": NO_PARAMETER,
        "update_total_amount_remaining": DOUBLE_LONG,
        "set_total_amount_remaining": DOUBLE_LONG,
    }
    DEFAULTS = {
        "unit_charge_passive": UnitCharge(), "unit_charge_activation_time": None, "period": 0,
        "charge_configuration": 0, "last_collection_time": None, "last_collection_amount": 0,
        "total_amount_remaining": 0, "proportion": 0,
    }
