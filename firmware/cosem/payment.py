"""The payment adapter: the prepaid account as the COSEM payment classes.

Account (IC 111, 0.0.19.0.0.255), the token and emergency Credits (IC 112,
0.0.19.10.0/1.255) and the consumption Charge (IC 113, 0.0.19.20.0.255) of the
Blue Book's payment metering model, and the IS 15959-2 prepaid data objects
0.0.94.96.19..26.255, all read from :class:`bijli.firmware.prepaid.PrepaidAccount` at
GET time. Money crosses in paisa (:func:`.quantities.minor_units`). Invoking
emergency credit over DLMS goes through the meter's own input, so it takes the
same decision and the same transaction as the keypad.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from bijli.dlms import axdr
from bijli.dlms.cosem.base import CosemObject
from bijli.dlms.cosem.data import Data
from bijli.dlms.cosem.payment import (Account, AccountModeAndStatus, AccountStatus, Charge, ChargeTableElement, ChargeType,
                                      Credit, CreditChargeConfiguration, CreditConfigurationBit, CreditStatus,
                                      CreditStatusBit, CreditType, Currency, CurrencyUnit,
                                      PaymentMode, TokenGatewayConfiguration, UnitCharge, flags)
from bijli.dlms.cosem.values import date_time_octets
from bijli.firmware.cosem.catalogue import (ACCOUNT, ACTIVE_IMPORT, BILLED_AMOUNT, CONSUMPTION_CHARGE, CURRENT_BALANCE,
                                            CURRENT_BALANCE_TIME, EMERGENCY_CREDIT, LAST_RECHARGE_AMOUNT,
                                            LAST_RECHARGE_TIME, METERING_MODE, PAYMENT_MODE, TOKEN_CREDIT,
                                            TOTAL_AT_LAST_RECHARGE)
from bijli.firmware.cosem.quantities import minor_units
from bijli.firmware.cosem.results import refusal
from bijli.firmware.prepaid import EmergencyRefused, EmergencyState, PaymentPlan
from bijli.firmware.tariff import EnergyKind

if TYPE_CHECKING:  # pragma: no cover
    from bijli.firmware.cosem.tod import TodProgramming
    from bijli.firmware.meter import Meter

#: the emergency credit's state as IC 112 credit_status (Blue Book 4.6.3)
EMERGENCY_CREDIT_STATUS = {
    EmergencyState.ENABLED: CreditStatus.ENABLED,
    EmergencyState.SELECTABLE: CreditStatus.SELECTABLE,
    EmergencyState.INVOKED: CreditStatus.SELECTED_INVOKED,
    EmergencyState.IN_USE: CreditStatus.IN_USE,
    EmergencyState.CONSUMED: CreditStatus.EXHAUSTED,
}

#: how the consumer pays as IC 111 account_mode_and_status's payment_mode
PAYMENT_MODES = {PaymentPlan.POSTPAID: PaymentMode.CREDIT, PaymentPlan.PREPAID: PaymentMode.PREPAYMENT}


def payment_objects(meter: "Meter", tod: "TodProgramming | None" = None) -> list[CosemObject]:
    """Account, token credit, emergency credit and consumption charge, bound to ``meter``;
    with ``tod`` the Charge's update_unit_charge writes the passive prices (:mod:`.tod`)."""
    cfg = meter.config.prepaid
    acct = lambda: meter.account  # noqa: E731
    currency = Currency(meter.config.tariff.currency if cfg.unit != "kWh" else "kWh", -2,
                        CurrencyUnit.CONSUMPTION if cfg.unit == "kWh" else CurrencyUnit.MONETARY)

    def available() -> Decimal:
        """IC 111 available_credit: what the credits in use still hold (never negative:
        what is owed beyond them is aggregated_debt, the Charge's total_amount_remaining)."""
        a = acct()
        return token_amount() + (emergency_remaining() if a.emergency_invoked else Decimal(0))

    def token_amount() -> Decimal:
        return max(acct().balance, Decimal(0))

    def emergency_remaining() -> Decimal:
        a = acct()
        return a.emergency_limit - a.emergency_used

    def emergency_in_use() -> bool:
        return acct().emergency_status in (EmergencyState.IN_USE, EmergencyState.CONSUMED)

    def credit_status() -> int:
        a = acct()
        bits = [CreditStatusBit.IN_CREDIT if available() > 0 else CreditStatusBit.OUT_OF_CREDIT]
        if a.available_credit <= cfg.low_credit_1:
            bits.append(CreditStatusBit.LOW_CREDIT)
        state = a.emergency_status
        if state is EmergencyState.ENABLED:
            bits.append(CreditStatusBit.NEXT_CREDIT_ENABLED)
        elif state is EmergencyState.SELECTABLE:
            bits.append(CreditStatusBit.NEXT_CREDIT_SELECTABLE)
        if a.emergency_invoked:
            bits.append(CreditStatusBit.SELECTABLE_CREDIT_IN_USE)
        return flags(*bits)

    def token_status() -> int:
        # in use while it holds credit and no emergency credit is being spent; exhausted after
        if acct().balance > 0:
            return int(CreditStatus.IN_USE)
        return int(CreditStatus.EXHAUSTED)

    def invoke(_status) -> None:
        refused = meter.account.emergency_refusal()
        if refused is not None:
            raise refusal(EmergencyRefused(refused))
        meter.invoke_emergency()

    # credit_configuration (bit-string(5)): the token credit takes credit tokens; the
    # emergency credit is invoked by the consumer (unless automatic) and is paid back
    token_config = flags(CreditConfigurationBit.TOKENS, size=5)
    emergency_config = flags(*(() if cfg.emergency_auto else (CreditConfigurationBit.CONFIRMATION_REQUIRED,)),
                             CreditConfigurationBit.PAID_BACK, size=5)
    last = lambda: meter.billing_progress  # noqa: E731

    return [
        Account(ACCOUNT,
                account_mode_and_status=lambda: AccountModeAndStatus(
                    PAYMENT_MODES[cfg.payment_mode], AccountStatus.ACTIVE),
                current_credit_in_use=lambda: 2 if emergency_in_use() else 1,
                current_credit_status=credit_status,
                available_credit=lambda: minor_units(available()),
                aggregated_debt=lambda: minor_units(acct().debt),
                credit_reference_list=(TOKEN_CREDIT, EMERGENCY_CREDIT),
                charge_reference_list=(CONSUMPTION_CHARGE,),
                credit_charge_configuration=(CreditChargeConfiguration(TOKEN_CREDIT, CONSUMPTION_CHARGE, 0b111),
                                             CreditChargeConfiguration(EMERGENCY_CREDIT, CONSUMPTION_CHARGE, 0b111)),
                token_gateway_configuration=(TokenGatewayConfiguration(TOKEN_CREDIT, 100),),
                currency=currency,
                low_credit_threshold=minor_units(cfg.low_credit_1),
                max_provision=0),
        Credit(TOKEN_CREDIT,
               current_credit_amount=lambda: minor_units(token_amount()),
               type=CreditType.TOKEN, priority=1,
               warning_threshold=minor_units(cfg.low_credit_1),
               credit_configuration=token_config,
               status=token_status),
        Credit(EMERGENCY_CREDIT,
               current_credit_amount=lambda: minor_units(emergency_remaining() if acct().emergency_invoked
                                                         else cfg.emergency_credit),
               type=CreditType.EMERGENCY, priority=2,
               limit=minor_units(cfg.emergency_credit),
               credit_configuration=emergency_config,
               preset_credit_amount=minor_units(cfg.emergency_credit),
               credit_available_threshold=minor_units(cfg.emergency_threshold),
               status=lambda: int(EMERGENCY_CREDIT_STATUS[acct().emergency_status]),
               on_invoke_credit=invoke),
        Charge(CONSUMPTION_CHARGE,
               total_amount_paid=lambda: minor_units(acct().total_charged),
               charge_type=ChargeType.CONSUMPTION_BASED_COLLECTION, priority=1,
               unit_charge_active=lambda: unit_charge(meter.config.tariff.active),
               unit_charge_passive=lambda: (tod.unit_charge() if tod is not None else None)
               or unit_charge(meter.config.tariff.passive),
               unit_charge_activation_time=lambda: meter.config.tariff.activation_time,
               charge_configuration=flags(1, size=2),  # continuous collection, as energy is used
               last_collection_time=lambda: last().last_collection_time,
               last_collection_amount=lambda: minor_units(last().last_collection_amount),
               total_amount_remaining=lambda: minor_units(acct().debt),
               on_update_unit_charge=None if tod is None else tod.update_unit_charge,
               on_activate_passive_unit_charge=None if tod is None else (lambda: tod.activate())),
    ]


def unit_charge(profile) -> UnitCharge:
    """A tariff profile's energy prices as Charge's unit_charge: paisa (price_scale -2) per
    kWh (commodity_scale 3) of active import, one charge-table row per slab, time-of-day
    tier or the flat rate, in the order the tariff applies them. With no profile (no
    passive tariff) the charge table is empty but the commodity is still named, so the
    reference resolves."""
    if profile is None:
        rows = []
    elif profile.kind is EnergyKind.SLABS:
        rows = [(f"slab{i}", slab.rate) for i, slab in enumerate(profile.slabs, 1)]
    elif profile.kind is EnergyKind.TOD and profile.tod is not None:
        rates = {a.name: a.rate for _, actions in reversed(profile.tod.days) for a in reversed(actions)}
        rows = [(name, rates[name]) for name in profile.tier_names]  # a tier's first rate, in tier order
    else:
        rows = [("flat", profile.flat_rate)]
    return UnitCharge(commodity_scale=3, price_scale=-2, commodity_class_id=3, commodity_logical_name=ACTIVE_IMPORT,
                      commodity_attribute_index=2,
                      charge_table=tuple(ChargeTableElement(name.encode("ascii", "replace"), minor_units(rate))
                                         for name, rate in rows))


def prepaid_data(meter: "Meter") -> list[CosemObject]:
    """The IS 15959-2 prepaid data objects (amounts in paisa), read live."""
    prepaid = meter.config.prepaid
    acct = lambda: meter.account  # noqa: E731 - read at GET time, never cached
    return [
        Data(METERING_MODE, lambda: axdr.Unsigned(prepaid.metering_mode)),
        Data(PAYMENT_MODE, lambda: axdr.Unsigned(int(prepaid.payment_mode))),
        Data(LAST_RECHARGE_AMOUNT, lambda: axdr.DoubleLong(minor_units(acct().last_recharge_amount))),
        Data(LAST_RECHARGE_TIME, lambda: date_time_octets(acct().last_recharge_time)),
        Data(TOTAL_AT_LAST_RECHARGE, lambda: axdr.DoubleLong(minor_units(acct().total_amount_at_last_recharge))),
        Data(CURRENT_BALANCE, lambda: axdr.DoubleLong(minor_units(acct().current_balance_amount))),
        Data(CURRENT_BALANCE_TIME, lambda: date_time_octets(acct().current_balance_time)),
        Data(BILLED_AMOUNT, lambda: axdr.DoubleLong(minor_units(meter.config.tariff.bill_so_far(meter.tariff_state)))),
    ]
