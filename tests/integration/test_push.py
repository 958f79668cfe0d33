"""Push from a real `bijli meter` process to a TCP listener in the test: the utility
association invokes the Push setup's push method, and a recharge token pushes on its
own (``[push] on_events``); what arrives is decoded with our wrapper and APDU codecs
and deciphered with the demo keys, and deciphered and read again by gurux's getData
as an independent check."""

from __future__ import annotations

import socket
from datetime import datetime
from decimal import Decimal

from bijli.dlms import apdu, axdr, security
from bijli.dlms.client import Client, ClientSettings
from bijli.dlms.link import wrapper
from bijli.firmware.meter import MeterConfig
from bijli.firmware.sts.vend import vend_credit
from bijli.tools.node.client_transports import open_client_transport

PUSH_SETUP = "0.0.25.9.0.255"
START = datetime(2024, 6, 10, 10, 0)
DEMO = MeterConfig.from_dict({})


def _receive(listener: socket.socket, timeout: float = 15.0) -> wrapper.ApduReceived:
    listener.settimeout(timeout)
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(timeout)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return wrapper.decode_frame(data)


def _notification(frame: wrapper.ApduReceived) -> apdu.DataNotification:
    ciphered = apdu.decode(frame.apdu)
    assert isinstance(ciphered, apdu.GeneralGloCiphering)
    assert ciphered.system_title == DEMO.identity.system_title
    _, plain = security.decrypt(ciphered.content, ciphered.system_title, DEMO.dlms.encryption_key,
                                DEMO.dlms.authentication_key)
    note = apdu.decode(plain)
    assert isinstance(note, apdu.DataNotification)
    return note


def test_push_on_request_and_on_a_recharge(bijli_meter_factory, tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = tmp_path / "meter.toml"
    config.write_text(f'[push]\ndestination = "127.0.0.1:{port}"\non_events = true\nretries = 2\n'
                      f'repetition_delay_s = 1\n')
    meter = bijli_meter_factory(start=START.isoformat(), config=config)

    transport = open_client_transport(meter.endpoints.wrapper, 48)
    with Client(transport, ClientSettings.for_association(48, invocation_counter=1)) as client:
        client.associate()
        client.action(40, PUSH_SETUP, 1, axdr.Integer(0))
        energy = client.get(3, "1.0.1.8.0.255", 2)
        client.release()

    frame = _receive(listener)
    assert (frame.source_wport, frame.destination_wport) == (1, 102)
    note = _notification(frame)
    clock, pushed_energy, balance, relay = note.body.value
    assert axdr.CosemDateTime.decode(clock.value).to_datetime().replace(tzinfo=None) == START
    assert pushed_energy == energy and balance == axdr.DoubleLong(0) and relay == axdr.Boolean(True)
    assert _gurux_reads(frame) == [bytearray(clock.value), energy.value, 0, True]

    digits = vend_credit(DEMO.sts.vend_key(), Decimal("100"), subclass=4, time=datetime(2024, 6, 9, 23)).digits
    assert meter.console("token " + digits).startswith("accepted")
    balances = []
    for _ in range(3):  # token accepted (and any relay event it causes): each pushes
        balances.append(_notification(_receive(listener)).body.value[2])
        if balances[-1] == axdr.DoubleLong(10000):
            break
    assert balances[-1] == axdr.DoubleLong(10000), balances  # INR 100 in paisa
    listener.close()


def _gurux_reads(frame: wrapper.ApduReceived) -> list:
    """The same wrapper frame deciphered and parsed by gurux's getData (an independent check)."""
    from gurux_dlms import GXByteBuffer, GXReplyData
    from gurux_dlms.enums import Authentication, InterfaceType, Security
    from gurux_dlms.secure import GXDLMSSecureClient

    client = GXDLMSSecureClient(True, 102, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
    client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    client.ciphering.systemTitle = bytearray(b"BJLCLT01")
    client.ciphering.blockCipherKey = bytearray(DEMO.dlms.encryption_key)
    client.ciphering.authenticationKey = bytearray(DEMO.dlms.authentication_key)
    reply, notify = GXReplyData(), GXReplyData()
    client.getData(GXByteBuffer(wrapper.encode_frame(frame.source_wport, frame.destination_wport, frame.apdu)),
                   reply, notify)
    assert notify.command == apdu.Tag.DATA_NOTIFICATION
    return list(notify.value)
