"""The OBIS catalogue: the logical name of every object the meter serves.

One constant per object of the meter's object list (IEC 62056-6-1 OBIS codes; the
IS 15959-2 single-phase prepaid list and its 0.0.94.96.x prepaid data block), the
client SAPs of the three IS 15959 associations, and what the public client may read.
Nothing here reads the meter: the other modules of the wing bind these names to it.
"""

from __future__ import annotations

from bijli.dlms.obis import Obis
from bijli.firmware.tariff import TIERS

CLOCK = Obis(0, 0, 1, 0, 0, 255)
LOGICAL_DEVICE_NAME = Obis(0, 0, 42, 0, 0, 255)
SERIAL_NUMBER = Obis(0, 0, 96, 1, 0, 255)
CURRENT_ASSOCIATION = Obis(0, 0, 40, 0, 0, 255)
ACTIVE_IMPORT = Obis(1, 0, 1, 8, 0, 255)
ACTIVE_EXPORT = Obis(1, 0, 2, 8, 0, 255)
APPARENT_IMPORT = Obis(1, 0, 9, 8, 0, 255)
APPARENT_EXPORT = Obis(1, 0, 10, 8, 0, 255)
REACTIVE_Q = [Obis(1, 0, c, 8, 0, 255) for c in (5, 6, 7, 8)]
# a single-phase meter's voltage and phase current are the "any phase" quantities of
# IEC 62056-6-1 (C = 12, 11), as IS 15959-2 lists them, not L1's (C = 32, 31)
VOLTAGE = Obis(1, 0, 12, 7, 0, 255)
PHASE_CURRENT = Obis(1, 0, 11, 7, 0, 255)
# IEC 62056-6-1 C = 91: the neutral current, measured by the meter's neutral CT (IS 15959-2
# single phase; public head-end sources read it as "Neutral Current", README)
NEUTRAL_CURRENT = Obis(1, 0, 91, 7, 0, 255)
ACTIVE_POWER = Obis(1, 0, 1, 7, 0, 255)
APPARENT_POWER = Obis(1, 0, 9, 7, 0, 255)
POWER_FACTOR = Obis(1, 0, 13, 7, 0, 255)
FREQUENCY = Obis(1, 0, 14, 7, 0, 255)
DISCONNECT_CONTROL = Obis(0, 0, 96, 3, 10, 255)
LIMITER = Obis(0, 0, 17, 0, 0, 255)
ACCOUNT = Obis(0, 0, 19, 0, 0, 255)
TOKEN_CREDIT = Obis(0, 0, 19, 10, 0, 255)
EMERGENCY_CREDIT = Obis(0, 0, 19, 10, 1, 255)
CONSUMPTION_CHARGE = Obis(0, 0, 19, 20, 0, 255)
TOKEN_GATEWAY = Obis(0, 0, 19, 40, 0, 255)
SPECIAL_DAYS = Obis(0, 0, 11, 0, 0, 255)
DISCONNECT_SCRIPT_TABLE = Obis(0, 0, 10, 0, 106, 255)
IEC_LOCAL_PORT_SETUP = Obis(0, 0, 20, 0, 0, 255)
BILLING_PROFILE = Obis(1, 0, 98, 1, 0, 255)
# IS 15959-2 prepaid data objects
METERING_MODE = Obis(0, 0, 94, 96, 19, 255)
PAYMENT_MODE = Obis(0, 0, 94, 96, 20, 255)
LAST_RECHARGE_AMOUNT = Obis(0, 0, 94, 96, 21, 255)
LAST_RECHARGE_TIME = Obis(0, 0, 94, 96, 22, 255)
TOTAL_AT_LAST_RECHARGE = Obis(0, 0, 94, 96, 23, 255)
CURRENT_BALANCE = Obis(0, 0, 94, 96, 24, 255)
CURRENT_BALANCE_TIME = Obis(0, 0, 94, 96, 25, 255)
BILLED_AMOUNT = Obis(0, 0, 94, 96, 26, 255)  # bijli: charges of the open billing period
# registers the profiles capture
AVERAGE_VOLTAGE = Obis(1, 0, 12, 27, 0, 255)
AVERAGE_CURRENT = Obis(1, 0, 11, 27, 0, 255)
BILLING_POWER_FACTOR = Obis(1, 0, 13, 0, 0, 255)  # average power factor of the billing period
MD_ACTIVE_IMPORT = Obis(1, 0, 1, 6, 0, 255)
MD_APPARENT_IMPORT = Obis(1, 0, 9, 6, 0, 255)
# the time-of-day registers: rate E = tariff zone TZ1..TZ8 of the totals above (IS 15959;
# firmware.tiers keeps them), kWh and kVAh cumulative, MD kW and MD kVA of the billing period.
# The zone energies' codes are confirmed by public IS 15959 head-end sources (README); for the
# zone MDs none was found, so they follow the OBIS rule itself (IEC 62056-6-1: value group E of
# an energy or demand quantity is its tariff rate, 0 the total, 1..63 the rates).
ACTIVE_IMPORT_TIERS = tuple(Obis(1, 0, 1, 8, t, 255) for t in TIERS)
APPARENT_IMPORT_TIERS = tuple(Obis(1, 0, 9, 8, t, 255) for t in TIERS)
MD_ACTIVE_IMPORT_TIERS = tuple(Obis(1, 0, 1, 6, t, 255) for t in TIERS)
MD_APPARENT_IMPORT_TIERS = tuple(Obis(1, 0, 9, 6, t, 255) for t in TIERS)
BILLING_DATE = Obis(0, 0, 0, 1, 2, 255)
BILLING_COUNT = Obis(0, 0, 0, 1, 0, 255)  # IEC 62056-6-1: billing period counter
AVAILABLE_BILLING_PERIODS = Obis(0, 0, 0, 1, 1, 255)
PROGRAMMING_COUNT = Obis(0, 0, 96, 2, 0, 255)  # IEC 62056-6-1: no. of configuration program changes
POWER_FAILURES = Obis(0, 0, 96, 7, 0, 255)  # IEC 62056-6-1: no. of power failures
# IS 15959's India block 0.0.94.91.x (the codes as public head-end and meter sources read
# them, e.g. github.com/ruhmany/Gurux-try GuruxIndiaBase/ObisList.cs: "Cumulative Tamper
# Count", "Cumulative Power ON Duration in Minutes", "Billing Total Power On Duration in
# Minutes", "Cumulative Power Failure Duration"); the standard's own table is not public
TAMPER_COUNT = Obis(0, 0, 94, 91, 0, 255)
POWER_FAIL_DURATION = Obis(0, 0, 94, 91, 8, 255)
PERIOD_POWER_ON_DURATION = Obis(0, 0, 94, 91, 13, 255)
POWER_ON_DURATION = Obis(0, 0, 94, 91, 14, 255)
# IEC 62056-6-1 C = 0, D = 8: the demand integration (measurement) period and the two load
# profiles' recording intervals, in seconds
DEMAND_INTEGRATION_PERIOD = Obis(1, 0, 0, 8, 0, 255)
BLOCK_LOAD_CAPTURE_PERIOD = Obis(1, 0, 0, 8, 4, 255)
DAILY_LOAD_CAPTURE_PERIOD = Obis(1, 0, 0, 8, 5, 255)
# name plate (IS 15959-2 0.0.94.91.10.255 and the Data objects it captures)
NAME_PLATE = Obis(0, 0, 94, 91, 10, 255)
MANUFACTURER_NAME = Obis(0, 0, 96, 1, 1, 255)
FIRMWARE_VERSION = Obis(1, 0, 0, 2, 0, 255)
METER_TYPE = Obis(0, 0, 94, 91, 9, 255)
METER_CATEGORY = Obis(0, 0, 94, 91, 11, 255)
CURRENT_RATING = Obis(0, 0, 94, 91, 12, 255)
YEAR_OF_MANUFACTURE = Obis(0, 0, 96, 1, 4, 255)
# scaler profiles: one row of the scaler_unit of each register a profile captures
INSTANTANEOUS_SCALERS = Obis(1, 0, 94, 91, 3, 255)
BLOCK_LOAD_SCALERS = Obis(1, 0, 94, 91, 4, 255)
DAILY_LOAD_SCALERS = Obis(1, 0, 94, 91, 5, 255)
BILLING_SCALERS = Obis(1, 0, 94, 91, 6, 255)
EVENT_SCALERS = Obis(1, 0, 94, 91, 7, 255)
# schedules, calendar, communication set-up, push
BILLING_SCHEDULE = Obis(0, 0, 15, 0, 0, 255)
BILLING_SCRIPT_TABLE = Obis(0, 0, 10, 0, 1, 255)  # end of billing period / MD reset script
ACTIVITY_CALENDAR = Obis(0, 0, 13, 0, 0, 255)
TARIFFICATION_SCRIPT_TABLE = Obis(0, 0, 10, 0, 100, 255)
HDLC_SETUP = Obis(0, 0, 22, 0, 0, 255)
TCP_UDP_SETUP = Obis(0, 0, 25, 0, 0, 255)
SAP_ASSIGNMENT = Obis(0, 0, 41, 0, 0, 255)
UTILITY_INVOCATION_COUNTER = Obis(0, 0, 43, 1, 3, 255)
UTILITY_SECURITY_SETUP = Obis(0, 0, 43, 0, 3, 255)  # security suite 0 of the utility association (IC 64)
PUSH_SETUP = Obis(0, 0, 25, 9, 0, 255)

# the public client (SAP 16) may read only these (IS 15959: identification and time)
# and the utility client's invocation counter, so a head-end that lost track can resynchronise
# before it can associate (the way gurux and most head-ends read it)
PUBLIC_OBJECTS = (CLOCK, LOGICAL_DEVICE_NAME, SERIAL_NUMBER, CURRENT_ASSOCIATION, ACTIVE_IMPORT,
                  UTILITY_INVOCATION_COUNTER)

SAP_PUBLIC = 16
SAP_READER = 32
SAP_UTILITY = 48
# the Association LN object of each (the current association is 0.0.40.0.0.255)
PUBLIC_ASSOCIATION = Obis(0, 0, 40, 0, 1, 255)
READER_ASSOCIATION = Obis(0, 0, 40, 0, 2, 255)
UTILITY_ASSOCIATION = Obis(0, 0, 40, 0, 3, 255)

# the name plate profile's columns, in IS 15959-2 order
NAME_PLATE_COLUMNS = (SERIAL_NUMBER, MANUFACTURER_NAME, FIRMWARE_VERSION, METER_TYPE, METER_CATEGORY,
                      CURRENT_RATING, YEAR_OF_MANUFACTURE)
