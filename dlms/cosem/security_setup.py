"""Security setup (class 64, version 1), IEC 62056-6-2 clause 4.4.7.

One instance per ciphered association (0.0.43.0.e.255) shows the security policy
and suite in force, the client system title of the current association and the
server's own, and carries the two methods suite 0 needs: ``security_activate``
(the policy may only be strengthened) and ``key_transfer`` (global keys sent
wrapped with the AES key wrap of RFC 3394 under the master key, the KEK). A new
key takes effect after the response to the key_transfer has gone out, ciphered
with the old key, so the client can read that answer.
The keys and counters themselves live in :class:`dlms.security.SecuritySettings`,
which the server owns; this object is only their COSEM face.
"""

from __future__ import annotations

from typing import Callable

from bijli.dlms import axdr, security
from bijli.dlms.apdu import ActionResult, DataAccessResult
from bijli.dlms.cosem.base import CosemError, CosemObject, expect
from bijli.dlms.errors import SecurityError
from bijli.dlms.security import KeyId, SecuritySettings

# security_policy of version 1 is a bit map
POLICY_AUTHENTICATED_REQUEST = 0x04
POLICY_ENCRYPTED_REQUEST = 0x08
POLICY_DIGITALLY_SIGNED_REQUEST = 0x10
POLICY_AUTHENTICATED_RESPONSE = 0x20
POLICY_ENCRYPTED_RESPONSE = 0x40
POLICY_DIGITALLY_SIGNED_RESPONSE = 0x80
POLICY_ALL_AUTHENTICATED_ENCRYPTED = (POLICY_AUTHENTICATED_REQUEST | POLICY_ENCRYPTED_REQUEST
                                      | POLICY_AUTHENTICATED_RESPONSE | POLICY_ENCRYPTED_RESPONSE)


class SecuritySetup(CosemObject):
    CLASS_ID = 64
    VERSION = 1
    ATTRIBUTES = ("logical_name", "security_policy", "security_suite", "client_system_title",
                  "server_system_title", "certificates")
    METHODS = ("security_activate", "key_transfer", "key_agreement", "generate_key_pair",
               "generate_certificate_request", "import_certificate", "export_certificate", "remove_certificate")

    def __init__(self, logical_name, settings: SecuritySettings,
                 security_policy: int = POLICY_ALL_AUTHENTICATED_ENCRYPTED,
                 on_policy_change: Callable[[int], None] | None = None):
        super().__init__(logical_name)
        self.settings = settings
        self.security_policy = security_policy
        self._on_policy_change = on_policy_change

    def get_security_policy(self, ctx):
        return axdr.Enum(self.security_policy)

    def get_security_suite(self, ctx):
        return axdr.Enum(security.SUITE_0)

    def get_client_system_title(self, ctx):
        session = getattr(ctx, "association", None)
        title = getattr(session, "client_system_title", None)
        return axdr.OctetString(title or b"")

    def get_server_system_title(self, ctx):
        return axdr.OctetString(self.settings.system_title)

    def get_certificates(self, ctx):
        return axdr.Array(())

    def do_security_activate(self, params, ctx):
        value = expect(params, axdr.Enum).value
        if value & ~0xFC or value & (POLICY_DIGITALLY_SIGNED_REQUEST | POLICY_DIGITALLY_SIGNED_RESPONSE):
            raise CosemError(ActionResult.TYPE_UNMATCHED, "suite 0 cannot sign")
        if value & self.security_policy != self.security_policy:
            # the standard lets a policy be strengthened only
            raise CosemError(ActionResult.READ_WRITE_DENIED, "security policy may not be weakened")
        self.security_policy = value
        if self._on_policy_change is not None:
            self._on_policy_change(value)
        return None

    def do_key_transfer(self, params, ctx):
        """array of structure {key_id enum, key_wrapped octet-string}."""
        items = expect(params, axdr.Array).value
        if not items:
            raise CosemError(ActionResult.TYPE_UNMATCHED, "no key in key_transfer")
        new_keys: list[tuple[KeyId, bytes]] = []
        for item in items:
            fields = expect(item, axdr.Structure).value
            if len(fields) != 2:
                raise CosemError(ActionResult.TYPE_UNMATCHED, "key_data is {key_id, key_wrapped}")
            try:
                key_id = KeyId(expect(fields[0], axdr.Enum).value)
            except ValueError:
                raise CosemError(ActionResult.TYPE_UNMATCHED, "unknown key_id") from None
            if key_id == KeyId.MASTER:
                # the KEK is not transferred under itself (the standard uses key agreement for that)
                raise CosemError(ActionResult.READ_WRITE_DENIED, "the master key cannot be transferred")
            wrapped = expect(fields[1], axdr.OctetString).value
            try:
                key = security.unwrap_key(self.settings.master_key, wrapped)
            except SecurityError:
                raise CosemError(ActionResult.OTHER_REASON, "key unwrap failed") from None
            if len(key) != 16:
                raise CosemError(ActionResult.TYPE_UNMATCHED, "suite 0 keys are 16 octets")
            new_keys.append((key_id, key))

        def install() -> None:
            for key_id, key in new_keys:
                self.settings.set_key(key_id, key)

        session = getattr(ctx, "association", None)
        queue = getattr(session, "after_response", None)
        if queue is not None:
            queue.append(install)  # the answer still goes out under the old key
        else:
            install()
        return None


__all__ = ["SecuritySetup", "POLICY_ALL_AUTHENTICATED_ENCRYPTED", "DataAccessResult"]
