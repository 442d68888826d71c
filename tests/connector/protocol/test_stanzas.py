from __future__ import annotations

import hashlib

import pytest

from connector.protocol import linking, stanzas
from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.errors import MessageFormatError, PairingError
from connector.protocol.payload import DeviceDescription, login_payload, registration_payload
from connector.protocol.proto import wa_pb2
from shared.authstate import Credentials


def test_ack_copies_routing_attributes_and_names_us_for_messages() -> None:
    message = Node("message", {"id": "M", "from": "1@g.us", "participant": "2@s.whatsapp.net", "type": "text",
                               "t": "5"})
    assert stanzas.ack_for(message, "9:1@s.whatsapp.net").attrs == {
        "id": "M", "to": "1@g.us", "class": "message", "participant": "2@s.whatsapp.net", "type": "text",
        "from": "9:1@s.whatsapp.net",
    }
    receipt = Node("receipt", {"id": "R", "from": "3@s.whatsapp.net"})
    assert stanzas.ack_for(receipt, "9:1@s.whatsapp.net").attrs == {"id": "R", "to": "3@s.whatsapp.net",
                                                                     "class": "receipt"}


def test_count_value_and_message_reading() -> None:
    assert stanzas.count_value(Node("iq", {}, [Node("count", {"value": "12"})])) == 12
    assert stanzas.count_value(Node("iq", {}, [Node("count", {"value": "x"})])) is None
    with pytest.raises(MessageFormatError):
        stanzas.incoming_message(Node("message", {"from": "1@s.whatsapp.net"}))
    message = stanzas.incoming_message(Node("message", {"id": "A", "from": "1@s.whatsapp.net", "t": "bad"},
                                            [Node("enc", {"type": "msg", "v": "2"}, b"x"), Node("enc")]))
    assert message.timestamp is None and [p.type for p in message.payloads] == ["msg"]


def test_pair_device_iq_result_goes_back_to_the_sender() -> None:
    request = Node("iq", {"id": "7", "from": S_WHATSAPP_NET, "type": "set"})
    assert stanzas.iq_result(request).attrs == {"to": S_WHATSAPP_NET, "id": "7", "type": "result"}


@pytest.mark.parametrize(("raw", "digits"), [("+40 700 000 001", "40700000001"), ("15551234567", "15551234567")])
def test_phone_digits(raw: str, digits: str) -> None:
    assert linking.phone_digits(raw) == digits


@pytest.mark.parametrize("raw", ["0700000001", "+12345", ""])
def test_phone_digits_rejects_local_or_short_numbers(raw: str) -> None:
    with pytest.raises(PairingError):
        linking.phone_digits(raw)


def test_pair_success_without_device_is_a_format_error() -> None:
    node = Node("iq", {"id": "1"}, [Node("pair-success", {}, [Node("device-identity", {}, b"x")])])
    with pytest.raises(MessageFormatError):
        linking.pair_success(node, Credentials.generate(), bytes)


def test_login_and_registration_payload_fields() -> None:
    device = DeviceDescription(os_name="Ubuntu", browser="Firefox", version=(2, 3000, 1), push_name="Shop")
    login = wa_pb2.ClientPayload.FromString(login_payload("40700000001:12@s.whatsapp.net", device))
    assert (login.username, login.device, login.passive, login.pull, login.pushName) == (
        40700000001, 12, True, True, "Shop")
    assert login.userAgent.platform == wa_pb2.ClientPayload.UserAgent.WEB
    assert (login.userAgent.appVersion.primary, login.userAgent.appVersion.tertiary) == (2, 1)
    with pytest.raises(MessageFormatError):
        login_payload("abc@s.whatsapp.net", device)

    registration = wa_pb2.ClientPayload.FromString(registration_payload(
        registration_id=0x1234, identity_public=b"i" * 32, signed_pre_key_id=1, signed_pre_key_public=b"p" * 32,
        signed_pre_key_signature=b"s" * 64, device=device,
    ))
    data = registration.devicePairingData
    assert (data.eRegid, data.eSkeyId, data.eKeytype) == (b"\x00\x00\x12\x34", b"\x00\x00\x01", b"\x05")
    assert data.buildHash == hashlib.md5(b"2.3000.1").digest()
    props = wa_pb2.DeviceProps.FromString(data.deviceProps)
    assert (props.os, props.platformType) == ("Ubuntu", wa_pb2.DeviceProps.FIREFOX)
    assert not registration.passive and not registration.HasField("username")
    assert device.platform_id == "3" and device.display_name == "Firefox (Ubuntu)"
