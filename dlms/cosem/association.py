"""Association LN (class 15, version 2), IEC 62056-6-2 clause 4.4.3.

One instance per client association (0.0.40.0.e.255) plus the "current
association" alias 0.0.40.0.0.255, which answers for whichever association is
asking. The object list and access rights it reports are those the server
enforces, taken from the same :class:`AssociationPolicy`, so a client reading
the object list never sees rights the server would then refuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

from bijli.dlms import axdr
from bijli.dlms.acse import ApplicationContext, Mechanism
from bijli.dlms.association import AssociationState
from bijli.dlms.xdlms import Conformance
from bijli.dlms.apdu import ActionResult, DataAccessResult
from bijli.dlms.cosem.base import AttributeAccess, CosemError, CosemObject, MethodAccess, expect
from bijli.dlms.obis import Obis



@dataclass(frozen=True)
class ObjectRights:
    attributes: tuple[AttributeAccess, ...]  # index 0 is attribute 1
    methods: tuple[MethodAccess, ...]

    def attribute(self, index: int) -> AttributeAccess:
        return self.attributes[index - 1] if 1 <= index <= len(self.attributes) else AttributeAccess.NO_ACCESS

    def method(self, index: int) -> MethodAccess:
        return self.methods[index - 1] if 1 <= index <= len(self.methods) else MethodAccess.NO_ACCESS


RightsRule = Callable[[CosemObject], "ObjectRights | None"]  # None: the object is not visible


def read_only(obj: CosemObject) -> ObjectRights:
    return ObjectRights(
        tuple(AttributeAccess.READ_ONLY if hasattr(obj, f"get_{n}") else AttributeAccess.NO_ACCESS for n in obj.ATTRIBUTES),
        tuple(MethodAccess.NO_ACCESS for _ in obj.METHODS),
    )


def full_access(obj: CosemObject) -> ObjectRights:
    attrs = []
    for n in obj.ATTRIBUTES:
        r, w = hasattr(obj, f"get_{n}"), hasattr(obj, f"set_{n}")
        attrs.append(AttributeAccess(int(r) | (int(w) << 1)))
    methods = tuple(MethodAccess.ACCESS if hasattr(obj, f"do_{m}") else MethodAccess.NO_ACCESS for m in obj.METHODS)
    return ObjectRights(tuple(attrs), methods)


def only(logical_names: Iterable["Obis | str"], rule: RightsRule) -> RightsRule:
    """Apply ``rule`` to the listed objects and hide every other one."""
    names = {Obis.parse(n) for n in logical_names}

    def _rule(obj: CosemObject) -> ObjectRights | None:
        return rule(obj) if obj.logical_name in names else None

    return _rule


@dataclass(frozen=True)
class AssociationPolicy:
    """What one client SAP may do: how it authenticates and which rights it gets."""

    client_sap: int
    name: str
    mechanism: Mechanism = Mechanism.LOWEST
    secret: bytes | None = None  # LLS password or HLS secret
    rights: RightsRule = read_only
    conformance: Conformance = (Conformance.GET | Conformance.SELECTIVE_ACCESS | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
                                | Conformance.MULTIPLE_REFERENCES)
    ciphered: bool = False  # requires the LN-with-ciphering context and ciphered APDUs
    logical_name: Obis = field(default_factory=lambda: Obis(0, 0, 40, 0, 1, 255))
    server_sap: int = 1




class AssociationLN(CosemObject):
    CLASS_ID = 15
    VERSION = 2
    ATTRIBUTES = (
        "logical_name", "object_list", "associated_partners_id", "application_context_name",
        "xdlms_context_info", "authentication_mechanism_name", "secret", "association_status",
        "security_setup_reference", "user_list", "current_user",
    )
    METHODS = ("reply_to_hls_authentication", "change_hls_secret", "add_object", "remove_object")

    def __init__(self, logical_name, policy: AssociationPolicy | None, objects: Callable[[], Iterable[CosemObject]],
                 security_setup: Obis | None = None,
                 on_policy_change: Callable[[AssociationPolicy], None] | None = None):
        """``policy`` None makes this the current-association alias (0.0.40.0.0.255).
        ``security_setup`` is the security setup object of the ciphered associations: a
        ciphered association (or the alias while one is current) names it in attribute 9.
        ``on_policy_change`` hears of a changed secret, so the server and the meter's
        memory take the new policy (the object itself keeps no state worth saving)."""
        super().__init__(logical_name)
        self.policy = policy
        self._objects = objects
        self.security_setup = security_setup
        self.on_policy_change = on_policy_change

    def _policy(self, ctx) -> AssociationPolicy:
        if self.policy is not None:
            return self.policy
        session = getattr(ctx, "association", None)
        if session is None or session.policy is None:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, "no current association")
        return session.policy

    def get_object_list(self, ctx):
        policy = self._policy(ctx)
        entries = []
        for obj in self._objects():
            rights = policy.rights(obj)
            if rights is None:
                continue
            attr_access = axdr.Array(tuple(
                axdr.Structure((axdr.Integer(i), axdr.Enum(int(a) if a <= 3 else int(a) - 3), _selectors(obj, i)))
                for i, a in enumerate(rights.attributes, 1)
            ))
            method_access = axdr.Array(tuple(
                axdr.Structure((axdr.Integer(i), axdr.Enum(int(m)))) for i, m in enumerate(rights.methods, 1)
            ))
            entries.append(axdr.Structure((
                axdr.LongUnsigned(obj.CLASS_ID), axdr.Unsigned(obj.VERSION), axdr.OctetString(bytes(obj.logical_name)),
                axdr.Structure((attr_access, method_access)),
            )))
        return axdr.Array(tuple(entries))

    def get_associated_partners_id(self, ctx):
        p = self._policy(ctx)
        return axdr.Structure((axdr.Integer(p.client_sap), axdr.LongUnsigned(p.server_sap)))

    def get_application_context_name(self, ctx):
        p = self._policy(ctx)
        context = ApplicationContext.LOGICAL_NAME_CIPHERED if p.ciphered else ApplicationContext.LOGICAL_NAME
        return axdr.OctetString(context.oid())

    def get_xdlms_context_info(self, ctx):
        p = self._policy(ctx)
        session = getattr(ctx, "association", None)
        max_pdu = getattr(session, "server_max_pdu", 0xFFFF)
        return axdr.Structure((
            axdr.BitString.from_int(int(p.conformance), 24), axdr.LongUnsigned(max_pdu), axdr.LongUnsigned(max_pdu),
            axdr.Unsigned(6), axdr.Integer(0), axdr.OctetString(b""),
        ))

    def get_authentication_mechanism_name(self, ctx):
        return axdr.OctetString(self._policy(ctx).mechanism.oid())

    def get_association_status(self, ctx):
        session = getattr(ctx, "association", None)
        if self.policy is not None and (session is None or session.policy is not self.policy):
            return axdr.Enum(AssociationState.NON_ASSOCIATED)
        return axdr.Enum(session.status if session is not None else AssociationState.NON_ASSOCIATED)

    def get_security_setup_reference(self, ctx):
        ciphered = self.security_setup is not None and self._policy(ctx).ciphered
        return axdr.OctetString(bytes(self.security_setup) if ciphered else b"")

    def get_user_list(self, ctx):
        """Attribute 10 (version 2): the users this association may identify. bijli's
        associations do not use user identification (no calling-AE-invocation-id is
        checked), so the list is empty."""
        return axdr.Array(())

    def get_current_user(self, ctx):
        """Attribute 11: the user of the current association; user_id 0 and an empty name
        when, as here, user identification is not used."""
        return axdr.Structure((axdr.Unsigned(0), axdr.VisibleString("")))

    def do_reply_to_hls_authentication(self, params, ctx):
        session = getattr(ctx, "association", None)
        if session is None:
            raise CosemError(ActionResult.OBJECT_UNAVAILABLE, "no association")
        reply = expect(params, axdr.OctetString).value
        # the server checks f(StoC) and returns f(CtoS), or raises to refuse
        return session.reply_to_hls(reply)

    def set_secret(self, value, ctx):
        """Attribute 7: writing it changes the LLS password of this association
        (IS 15959 utilities change the meter reader's password this way). The secret
        is write-only: no get hook, so it is never read back."""
        policy = self.policy
        if policy is None or policy.mechanism != Mechanism.LLS:
            raise CosemError(DataAccessResult.READ_WRITE_DENIED, "only an LLS association's secret is written")
        self._change_secret(expect(value, axdr.OctetString).value)

    def do_change_hls_secret(self, params, ctx):
        """Method 2, for the HLS mechanisms that use a shared secret (2, 3, 4, 6). With
        mechanism 5 (GMAC) the secret is the authentication key, which changes through
        the security setup's key_transfer, so this refuses."""
        policy = self.policy
        if policy is None or policy.mechanism not in (Mechanism.HLS, Mechanism.HLS_MD5, Mechanism.HLS_SHA1,
                                                      Mechanism.HLS_SHA256):
            raise CosemError(ActionResult.READ_WRITE_DENIED,
                             "this association's HLS secret is its keys: use the security setup's key_transfer")
        self._change_secret(expect(params, axdr.OctetString).value)
        return None

    def _change_secret(self, secret: bytes) -> None:
        if not 1 <= len(secret) <= 64:
            raise CosemError(DataAccessResult.TYPE_UNMATCHED, "a secret is 1..64 octets")
        self.policy = replace(self.policy, secret=secret)
        if self.on_policy_change is not None:
            self.on_policy_change(self.policy)


def _selectors(obj, index: int) -> axdr.Data:
    """attribute_access_item.access_selectors: the selective-access selectors the attribute
    really supports (1 by range and 2 by entry on a profile buffer), or null for none."""
    selectors = obj.access_selectors(index)
    return axdr.Array(tuple(axdr.Integer(s) for s in selectors)) if selectors else axdr.NullData()
