"""The COSEM interface classes (IEC 62056-6-2 clause 4) and a registry of them.

``CLASSES`` maps each class_id this stack implements to its class, so a tool or
a test can walk "every interface class we have" and the object list can be
checked against the standard's numbering.
"""

from __future__ import annotations

from bijli.dlms.cosem.association import AssociationLN
from bijli.dlms.cosem.base import CosemError, CosemObject
from bijli.dlms.cosem.bound import BoundObject
from bijli.dlms.cosem.clock import Clock
from bijli.dlms.cosem.data import Data, ExtendedRegister, Register
from bijli.dlms.cosem.demand import DemandRegister, RegisterTable, TableCellDefinition
from bijli.dlms.cosem.disconnect import ControlState, DisconnectControl
from bijli.dlms.cosem.image_transfer import ImageTransfer
from bijli.dlms.cosem.limiter import EmergencyProfile, Limiter, LimiterActions
from bijli.dlms.cosem.monitor import ActionSet, RegisterMonitor
from bijli.dlms.cosem.payment import (
    Account, AccountModeAndStatus, AccountStatus, Charge, ChargeTableElement, ChargeType, Credit,
    CreditChargeConfiguration, CreditStatus, CreditType, Currency, PaymentMode, TokenGatewayConfiguration, UnitCharge,
)
from bijli.dlms.cosem.profile import (
    CaptureObjectDefinition, EntryDescriptor, ProfileGeneric, ProfileSource, RangeDescriptor,
)
from bijli.dlms.cosem.push import PushSetup, SendDestinationAndMethod, WindowElement
from bijli.dlms.cosem.security_setup import SecuritySetup
from bijli.dlms.cosem.schedule import (
    ActionSpecification, ActivityCalendar, DayProfile, DayProfileAction, ExecutionTime, Script, ScriptTable,
    SeasonProfile, SingleActionSchedule, SpecialDay, SpecialDaysTable, WeekProfile,
)
from bijli.dlms.cosem.setup import BaudRate, IecHdlcSetup, IecLocalPortSetup, SapAssignment, SapAssignmentObject, TcpUdpSetup
from bijli.dlms.cosem.token_gateway import (
    DeliveryMethod, TokenGateway, TokenGatewayResult, TokenRecord, TokenStatusCode,
)
from bijli.dlms.cosem.values import ScalerUnit, ScriptReference, ValueDefinition

CLASSES: dict[int, type[CosemObject]] = {
    cls.CLASS_ID: cls
    for cls in (
        Data, Register, ExtendedRegister, DemandRegister, ProfileGeneric, Clock, ScriptTable, SpecialDaysTable,
        AssociationLN, SapAssignmentObject, IecLocalPortSetup, ActivityCalendar, RegisterMonitor,
        SingleActionSchedule, IecHdlcSetup, PushSetup, TcpUdpSetup, RegisterTable, DisconnectControl, Limiter,
        Account, Credit, Charge, TokenGateway, ImageTransfer, SecuritySetup,
    )
}

__all__ = [
    "CLASSES", "ImageTransfer", "SecuritySetup", "Account", "AccountModeAndStatus", "AccountStatus", "ActionSet", "ActionSpecification",
    "ActivityCalendar", "AssociationLN", "BaudRate", "BoundObject", "CaptureObjectDefinition", "Charge",
    "ChargeTableElement", "ChargeType", "Clock", "ControlState", "CosemError", "CosemObject", "Credit",
    "CreditChargeConfiguration", "CreditStatus", "CreditType", "Currency", "Data", "DayProfile", "DayProfileAction",
    "DeliveryMethod", "DemandRegister", "DisconnectControl", "EmergencyProfile", "EntryDescriptor", "ExecutionTime",
    "ExtendedRegister", "IecHdlcSetup", "IecLocalPortSetup", "Limiter", "LimiterActions", "PaymentMode",
    "ProfileGeneric", "ProfileSource", "PushSetup", "RangeDescriptor", "Register", "RegisterMonitor", "RegisterTable",
    "SapAssignment", "SapAssignmentObject", "ScalerUnit", "Script", "ScriptReference", "ScriptTable", "SeasonProfile",
    "SendDestinationAndMethod", "SingleActionSchedule", "SpecialDay", "SpecialDaysTable", "TableCellDefinition",
    "TcpUdpSetup", "TokenGateway", "TokenGatewayConfiguration", "TokenGatewayResult", "TokenRecord",
    "TokenStatusCode", "UnitCharge", "ValueDefinition", "WeekProfile", "WindowElement",
]
