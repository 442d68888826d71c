from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol import stanzas
from connector.protocol.binary import Jid, Node, decode_node, encode_node
from connector.protocol.errors import MessageFormatError, ProtocolError
from connector.protocol.message_ids import participant_hash
from connector.protocol.message_stanzas import (
    DeviceCiphertext,
    ResendTarget,
    device_identity,
    outgoing_message,
    resend_message,
    stanza_types,
)
from connector.protocol.proto import wa_e2e_pb2 as e2e
from connector.protocol.proto import wa_pb2
from connector.protocol.wamessage import decode_message
from shared.authstate import AdvSignedDeviceIdentity
from tests.connector.protocol.stanza_fuzz import mutated, nodes

PEER = Jid.parse("4915550001@s.whatsapp.net")
GROUP = Jid.parse("120363000000000001@g.us")
IDENTITY = b"\x0a\x03abc"
PHONE_COPY = DeviceCiphertext(Jid.parse("4915550001@s.whatsapp.net"), "msg", b"\x33ciphertext-1")
LAPTOP_COPY = DeviceCiphertext(Jid.parse("4915550001:3@s.whatsapp.net"), "pkmsg", b"\x33ciphertext-2")
OWN_COPY = DeviceCiphertext(Jid.parse("4915550009@s.whatsapp.net"), "msg", b"\x33ciphertext-3")


def test_one_to_one_send() -> None:
    node = outgoing_message("3EB0AA", PEER, "text", [PHONE_COPY, OWN_COPY])
    assert node.attrs == {"id": "3EB0AA", "to": "4915550001@s.whatsapp.net", "type": "text"}
    assert [c.tag for c in node.children()] == ["participants"]  # no pkmsg: no device-identity
    participants = node.child("participants")
    assert participants is not None
    to_nodes = participants.children("to")
    assert [t.attrs["jid"] for t in to_nodes] == ["4915550001@s.whatsapp.net", "4915550009@s.whatsapp.net"]
    enc = to_nodes[0].child("enc")
    assert enc is not None and enc.attrs == {"v": "2", "type": "msg"} and enc.content == b"\x33ciphertext-1"
    assert decode_node(encode_node(node)).attrs == node.attrs


def test_a_pkmsg_brings_the_device_identity() -> None:
    node = outgoing_message("3EB0AB", PEER, "reaction", [PHONE_COPY, LAPTOP_COPY], device_identity=IDENTITY)
    assert [c.tag for c in node.children()] == ["participants", "device-identity"]
    assert node.child_bytes("device-identity") == IDENTITY
    with pytest.raises(MessageFormatError):
        outgoing_message("3EB0AB", PEER, "text", [LAPTOP_COPY])


def test_group_send() -> None:
    devices = [PHONE_COPY.device, LAPTOP_COPY.device, OWN_COPY.device]
    phash = participant_hash(devices)
    node = outgoing_message("3EB0AC", GROUP, "media", [LAPTOP_COPY], group_ciphertext=b"\x33sk",
                            device_identity=IDENTITY, phash=phash, media_type="image", addressing_mode="lid")
    assert node.attrs == {"id": "3EB0AC", "to": "120363000000000001@g.us", "type": "media", "phash": phash,
                          "addressing_mode": "lid"}
    assert [c.tag for c in node.children()] == ["enc", "participants", "device-identity"]
    skmsg = node.children("enc")[0]
    assert skmsg.attrs == {"v": "2", "type": "skmsg", "mediatype": "image"} and skmsg.content == b"\x33sk"
    only_skmsg = outgoing_message("3EB0AD", GROUP, "text", [], group_ciphertext=b"\x33sk")
    assert [c.tag for c in only_skmsg.children()] == ["enc"]


@pytest.mark.parametrize("call", [
    lambda: outgoing_message("", PEER, "text", [PHONE_COPY]),
    lambda: outgoing_message("X", PEER, "sms", [PHONE_COPY]),
    lambda: outgoing_message("X", PEER, "text", []),
    lambda: outgoing_message("X", PEER, "text", [PHONE_COPY], group_ciphertext=b"x"),
    lambda: outgoing_message("X", GROUP, "text", [PHONE_COPY]),
    lambda: outgoing_message("X", PEER, "text", [DeviceCiphertext(PEER, "skmsg", b"x")]),
    lambda: outgoing_message("X", PEER, "text", [DeviceCiphertext(PEER, "msg", b"")]),
])
def test_misuse_is_refused(call: Callable[[], object]) -> None:
    with pytest.raises(MessageFormatError):
        call()


def test_resend_after_a_retry_receipt() -> None:
    dm = resend_message(ResendTarget("3EB0AA", "4915550001:3@s.whatsapp.net"), "text", LAPTOP_COPY, 2,
                        timestamp=1764800000, device_identity=IDENTITY)
    assert dm.attrs == {"id": "3EB0AA", "to": "4915550001:3@s.whatsapp.net", "type": "text", "t": "1764800000",
                        "device_fanout": "false"}
    assert [(c.tag, c.attrs) for c in dm.children()] == [("enc", {"v": "2", "type": "pkmsg", "count": "2"}),
                                                          ("device-identity", {})]
    group = resend_message(ResendTarget("3EB0AC", str(GROUP), participant="4915550001:3@s.whatsapp.net",
                                        group=True), "text", PHONE_COPY, 1)
    assert group.attrs == {"id": "3EB0AC", "to": "120363000000000001@g.us", "type": "text",
                           "participant": "4915550001:3@s.whatsapp.net"}
    assert [c.tag for c in group.children()] == ["enc"]
    with pytest.raises(MessageFormatError):
        resend_message(ResendTarget("3EB0AA", "x@s.whatsapp.net"), "text", PHONE_COPY, 0)


def test_device_identity_keeps_the_account_signature_key() -> None:
    account = AdvSignedDeviceIdentity(details=b"d", account_signature_key=b"k" * 32, account_signature=b"s" * 64,
                                      device_signature=b"v" * 64)
    parsed = wa_pb2.ADVSignedDeviceIdentity.FromString(device_identity(account))
    assert (parsed.details, parsed.accountSignatureKey, parsed.accountSignature, parsed.deviceSignature) == (
        b"d", b"k" * 32, b"s" * 64, b"v" * 64)


def test_stanza_types_follow_baileys() -> None:
    def types(message: e2e.Message) -> tuple[str, str | None]:
        return stanza_types(decode_message(message.SerializeToString()).content)

    key = e2e.MessageKey(id="X")
    assert types(e2e.Message(conversation="hi")) == ("text", None)
    assert types(e2e.Message(reactionMessage=e2e.Message.ReactionMessage(key=key, text="x"))) == ("reaction", None)
    assert types(e2e.Message(imageMessage=e2e.Message.ImageMessage(mimetype="image/jpeg"))) == ("media", "image")
    assert types(e2e.Message(videoMessage=e2e.Message.VideoMessage(gifPlayback=True))) == ("media", "gif")
    assert types(e2e.Message(videoMessage=e2e.Message.VideoMessage())) == ("media", "video")
    assert types(e2e.Message(audioMessage=e2e.Message.AudioMessage(ptt=True))) == ("media", "ptt")
    assert types(e2e.Message(audioMessage=e2e.Message.AudioMessage())) == ("media", "audio")
    assert types(e2e.Message(documentMessage=e2e.Message.DocumentMessage())) == ("media", "document")
    assert types(e2e.Message(stickerMessage=e2e.Message.StickerMessage())) == ("media", "sticker")
    assert types(e2e.Message(contactMessage=e2e.Message.ContactMessage(displayName="A"))) == ("media", "vcard")
    assert types(e2e.Message(liveLocationMessage=e2e.Message.LiveLocationMessage())) == ("media", "livelocation")
    assert types(e2e.Message(locationMessage=e2e.Message.LocationMessage())) == ("text", None)
    revoke = e2e.Message.ProtocolMessage(key=key, type=e2e.Message.ProtocolMessage.REVOKE)
    assert types(e2e.Message(protocolMessage=revoke)) == ("text", None)


# ------------------------------------------------------------------------------------------ incoming

REAL_INCOMING = Node("message", {
    "id": "3EB0FF", "from": "120363000000000001@g.us", "participant": "11111:3@lid", "t": "1764800000",
    "type": "text", "notify": "Ada", "addressing_mode": "lid", "participant_pn": "4915550001:3@s.whatsapp.net",
}, [Node("enc", {"v": "2", "type": "pkmsg"}, b"\x33pairwise"),
    Node("enc", {"v": "2", "type": "skmsg", "count": "2", "mediatype": "image"}, b"\x33group")])


def test_incoming_message_fields() -> None:
    message = stanzas.incoming_message(decode_node(encode_node(REAL_INCOMING)))
    assert (message.id, message.sender, message.participant, message.timestamp, message.type) == (
        "3EB0FF", "120363000000000001@g.us", "11111:3@lid", 1764800000, "text")
    assert (message.push_name, message.addressing_mode, message.sender_alt, message.author) == (
        "Ada", "lid", "4915550001:3@s.whatsapp.net", "11111:3@lid")
    assert [(p.type, p.version, p.count, p.media_type, p.ciphertext) for p in message.payloads] == [
        ("pkmsg", "2", None, None, b"\x33pairwise"), ("skmsg", "2", 2, "image", b"\x33group")]
    assert "Ada" not in repr(message)


def test_incoming_addressing_is_inferred_like_baileys() -> None:
    pn = stanzas.incoming_message(Node("message", {"id": "A", "from": "4915550001@s.whatsapp.net",
                                                   "sender_lid": "11111@lid", "recipient": "4915550009@s.whatsapp.net",
                                                   "recipient_lid": "99999@lid"}))
    assert (pn.addressing_mode, pn.sender_alt, pn.recipient_alt) == ("pn", "11111@lid", "99999@lid")
    lid = stanzas.incoming_message(Node("message", {"id": "B", "from": "11111@lid",
                                                    "sender_pn": "4915550001@s.whatsapp.net"}))
    assert (lid.addressing_mode, lid.sender_alt) == ("lid", "4915550001@s.whatsapp.net")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(nodes(), mutated(REAL_INCOMING)))
def test_fuzzed_incoming_messages_raise_only_protocol_errors(node: Node) -> None:
    with contextlib.suppress(ProtocolError):
        stanzas.incoming_message(node)
