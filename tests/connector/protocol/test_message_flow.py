"""A message's whole way through the protocol core, with the real Signal layer and no server:
device list -> bundles -> Message -> pad -> encrypt -> <message> stanza -> wire -> the recipient's view of
it -> decrypt in order -> unpad -> decoded content, for a 1:1 send, our own other device's copy, a
reaction back, and a group send with its sender key."""

from __future__ import annotations

from connector.protocol import stanzas
from connector.protocol.binary import Jid, Node, decode_node, encode_node
from connector.protocol.bundles import bundle_node, parse_bundles
from connector.protocol.events import IncomingMessage
from connector.protocol.message_ids import new_message_id, participant_hash
from connector.protocol.message_stanzas import DeviceCiphertext, outgoing_message, stanza_types
from connector.protocol.padding import pad, unpad
from connector.protocol.signal.types import SignalAddress
from connector.protocol.usync import message_devices, parse_device_list
from connector.protocol.wamessage import ContentKind, DecodedMessage, MessageRef, decode_message
from connector.protocol.wamessage_encode import (
    device_sent_message,
    reaction_message,
    sender_key_distribution_message,
    text_message,
)
from tests.connector.protocol.signal.parties import Party, make_party

ALICE_PHONE = Jid.parse("4915550001@s.whatsapp.net")
ALICE_LAPTOP = Jid.parse("4915550001:3@s.whatsapp.net")  # us
BOB_PHONE = Jid.parse("4915550002@s.whatsapp.net")
GROUP = Jid.parse("120363000000000001@g.us")
DEVICE_IDENTITY = b"\x0a\x02id"
NOW_S = 1_764_800_000


def _party(jid: Jid) -> Party:
    return make_party(str(jid), SignalAddress.from_jid(jid))


def _usync_reply() -> Node:
    users = [Node("user", {"jid": str(jid)}, [Node("devices", {}, [Node("device-list", {}, devices)])])
             for jid, devices in [(BOB_PHONE, [Node("device", {"id": "0"})]),
                                  (ALICE_PHONE, [Node("device", {"id": "0"}),
                                                 Node("device", {"id": "3", "key-index": "1"})])]]
    return Node("iq", {"type": "result"}, [Node("usync", {}, [Node("list", {}, users)])])


def _delivered(stanza: Node, device: Jid, sender: Jid, **attrs: str) -> IncomingMessage:
    """What the server hands ``device``: the stanza's copy for it (and the skmsg), as an incoming message."""
    stanza = decode_node(encode_node(stanza))
    encs = list(stanza.children("enc"))
    participants = stanza.child("participants")
    for to in participants.children("to") if participants is not None else []:
        if to.attrs["jid"] == str(device):
            encs = to.children("enc") + encs  # the pairwise copy comes first (it may carry the SKDM)
    node = Node("message", {"id": stanza.attrs["id"], "from": str(sender), "t": str(NOW_S), "type": "text",
                            **attrs}, encs)
    return stanzas.incoming_message(decode_node(encode_node(node)))


def _open(receiver: Party, message: IncomingMessage, group: str | None = None) -> DecodedMessage:
    """Decrypt the payloads in order, as the connector will: SKDMs first, then the group message."""
    author = SignalAddress.from_jid(Jid.parse(message.author))
    decoded: DecodedMessage | None = None
    for payload in message.payloads:
        if payload.type == "skmsg":
            assert group is not None
            plaintext = receiver.repo.group_decrypt(group, author, payload.ciphertext)
        else:
            assert payload.type in ("pkmsg", "msg")
            plaintext = receiver.repo.decrypt(author, payload.type, payload.ciphertext)  # type: ignore[arg-type]
        decoded = decode_message(unpad(plaintext))
        if decoded.sender_key_distribution is not None:
            skdm = decoded.sender_key_distribution
            receiver.repo.process_sender_key_distribution(skdm.group_id, author, skdm.axolotl_message)
    assert decoded is not None
    return decoded


def test_one_to_one_send_reaches_the_peer_and_our_other_device() -> None:
    laptop, phone, bob = _party(ALICE_LAPTOP), _party(ALICE_PHONE), _party(BOB_PHONE)
    rand = laptop.random
    devices = message_devices(parse_device_list(_usync_reply()), ALICE_LAPTOP)
    assert devices == [BOB_PHONE, ALICE_PHONE]
    fetched = parse_bundles(Node("iq", {"type": "result"}, [Node("list", {}, [
        bundle_node(BOB_PHONE, bob.bundle()), bundle_node(ALICE_PHONE, phone.bundle())])]))
    bundles = {SignalAddress.from_jid(f.device): f.bundle for f in fetched}
    message_id = new_message_id(NOW_S, ALICE_LAPTOP.user, rand)
    plaintext = text_message("hello Bob")
    to_bob = laptop.repo.encrypt_for(pad(plaintext, rand), {SignalAddress.from_jid(BOB_PHONE):
                                                           bundles[SignalAddress.from_jid(BOB_PHONE)]})
    to_me = laptop.repo.encrypt_for(pad(device_sent_message(plaintext, str(BOB_PHONE)), rand),
                                    {SignalAddress.from_jid(ALICE_PHONE): bundles[SignalAddress.from_jid(ALICE_PHONE)]})
    copies = [DeviceCiphertext(address.to_jid(), kind, data) for address, (kind, data) in [*to_bob.items(),
                                                                                          *to_me.items()]]
    message_type, media_type = stanza_types(decode_message(plaintext).content)
    stanza = outgoing_message(message_id, BOB_PHONE, message_type, copies, device_identity=DEVICE_IDENTITY,
                              media_type=media_type)
    assert stanza.child_bytes("device-identity") == DEVICE_IDENTITY  # first contact: pkmsg copies

    at_bob = _open(bob, _delivered(stanza, BOB_PHONE, ALICE_LAPTOP))
    assert (at_bob.content.kind, at_bob.text, at_bob.device_sent) == (ContentKind.TEXT, "hello Bob", None)
    at_phone = _open(phone, _delivered(stanza, ALICE_PHONE, ALICE_LAPTOP, recipient=str(BOB_PHONE)))
    assert at_phone.text == "hello Bob" and at_phone.device_sent is not None
    assert at_phone.device_sent.destination_jid == str(BOB_PHONE)

    # Bob reacts: his first message on the session Alice started is a msg, and needs no device identity.
    reaction = reaction_message(MessageRef(id=message_id, remote_jid=str(ALICE_PHONE), from_me=False), "👍",
                                NOW_S * 1000)
    [(kind, data)] = bob.repo.encrypt_for(pad(reaction, bob.random),
                                          {SignalAddress.from_jid(ALICE_LAPTOP): None}).values()
    assert kind == "msg"
    back = outgoing_message(new_message_id(NOW_S, BOB_PHONE.user, bob.random), ALICE_PHONE, "reaction",
                            [DeviceCiphertext(ALICE_LAPTOP, kind, data)])
    assert back.child("device-identity") is None
    seen = _open(laptop, _delivered(back, ALICE_LAPTOP, BOB_PHONE))
    assert seen.content.kind is ContentKind.REACTION and seen.content.reaction is not None
    assert (seen.content.reaction.target.id, seen.content.reaction.emoji) == (message_id, "👍")


def test_group_send_carries_the_sender_key_first() -> None:
    laptop, bob = _party(ALICE_LAPTOP), _party(BOB_PHONE)
    me = SignalAddress.from_jid(ALICE_LAPTOP)
    skmsg, skdm = laptop.repo.group_encrypt(str(GROUP), me, pad(text_message("hello group"), laptop.random))
    carrier = sender_key_distribution_message(str(GROUP), skdm)
    [(kind, data)] = laptop.repo.encrypt_for(pad(carrier, laptop.random),
                                             {SignalAddress.from_jid(BOB_PHONE): bob.bundle()}).values()
    stanza = outgoing_message(new_message_id(NOW_S, ALICE_LAPTOP.user, laptop.random), GROUP, "text",
                              [DeviceCiphertext(BOB_PHONE, kind, data)], group_ciphertext=skmsg,
                              device_identity=DEVICE_IDENTITY, phash=participant_hash([BOB_PHONE, ALICE_LAPTOP]))
    delivered = _delivered(stanza, BOB_PHONE, GROUP, participant=str(ALICE_LAPTOP))
    assert [p.type for p in delivered.payloads] == ["pkmsg", "skmsg"]
    at_bob = _open(bob, delivered, group=str(GROUP))
    assert (at_bob.content.kind, at_bob.text) == (ContentKind.TEXT, "hello group")
    # The next group message needs no pairwise copy: Bob holds the sender key now.
    skmsg2, _ = laptop.repo.group_encrypt(str(GROUP), me, pad(text_message("second"), laptop.random))
    second = outgoing_message("3EB0SECOND", GROUP, "text", [], group_ciphertext=skmsg2)
    assert _open(bob, _delivered(second, BOB_PHONE, GROUP, participant=str(ALICE_LAPTOP)),
                 group=str(GROUP)).text == "second"
