"""The send flow (connector/protocol/outbound.py) against a scripted server and real Signal parties:
each recipient decrypts what the flow sent, so a wrong device list, session or fan-out fails here."""

from __future__ import annotations

import itertools

import pytest

from connector.protocol import stanzas
from connector.protocol.binary import Jid, Node, decode_node, encode_node
from connector.protocol.bundles import bundle_node
from connector.protocol.errors import MessageFormatError
from connector.protocol.events import IncomingMessage
from connector.protocol.outbound import MAX_RESENDS, Outbound, SendRequest, SentLog
from connector.protocol.padding import unpad
from connector.protocol.receipts import retry_keys, retry_receipt
from connector.protocol.send_status import SendStatus, Status
from connector.protocol.signal.types import SignalAddress
from connector.protocol.wamessage import ContentKind, DecodedMessage, MessageRef, decode_message
from connector.protocol.wamessage_encode import ReplyTarget, reaction_message, reply_message, text_message
from tests.connector.protocol.signal.parties import Party, make_party

ME = Jid.parse("4915550001:3@s.whatsapp.net")  # the keeper device
MY_PHONE = Jid.parse("4915550001@s.whatsapp.net")
BOB = Jid.parse("4915550002@s.whatsapp.net")
BOB_LAPTOP = Jid.parse("4915550002:7@s.whatsapp.net")
CAROL = Jid.parse("4915550003@s.whatsapp.net")
GROUP = Jid.parse("120363000000000001@g.us")
IDENTITY = b"\x0a\x02id"
NOW = 1_000.0


def _party(jid: Jid) -> Party:
    return make_party(str(jid), SignalAddress.from_jid(jid))


class Server:
    """Answers the flow's iqs from the parties' real keys and hands each device its copy."""

    def __init__(self, me: Party, devices: list[Jid], members: list[Jid] | None = None) -> None:
        self.parties = {str(d): _party(d) for d in devices}
        self.devices = devices
        self.members = members
        ids = itertools.count(1)
        self.outbound = Outbound(me.repo, ME, None, device_identity=IDENTITY, rand=me.random,
                                 next_id=lambda: f"iq-{next(ids)}")
        self.bundle_fetches: list[list[str]] = []
        self.sent: list[Node] = []

    def run(self, *, ack_error: int | None = None) -> None:
        """Answer every query until the flow sends its message (which is then acked)."""
        for _ in range(10):
            out = self.outbound.outgoing()
            if not out:
                return
            for item in out:
                node = decode_node(encode_node(item.node))
                if node.tag == "message":
                    assert item.signal_changed
                    self.sent.append(node)
                    attrs = {"class": "message", "id": node.attrs["id"], "t": "1700000000"}
                    if ack_error is not None:
                        attrs["error"] = str(ack_error)
                    assert self.outbound.handle(Node("ack", attrs), NOW)
                else:
                    assert not item.signal_changed
                    assert self.outbound.handle(self.answer(node), NOW)

    def answer(self, iq: Node) -> Node:
        result = {"id": iq.attrs["id"], "type": "result", "from": "s.whatsapp.net"}
        if iq.attrs.get("xmlns") == "w:g2":
            assert self.members is not None
            return Node("iq", result, [Node("group", {"id": GROUP.user}, [
                Node("participant", {"jid": str(m)}) for m in self.members])])
        if iq.attrs.get("xmlns") == "usync":
            users = [Jid.parse(u.attrs["jid"]) for u in iq.child("usync", "list").children("user")]
            nodes = []
            for user in users:
                devices = [Node("device", {"id": str(d.device or 0), **({"key-index": "1"} if d.device else {})})
                           for d in [*self.devices, ME] if d.user == user.user]
                listing = Node("devices", {}, [Node("device-list", {}, devices)])
                nodes.append(Node("user", {"jid": str(user)}, [listing]))
            return Node("iq", result, [Node("usync", {}, [Node("list", {}, nodes)])])
        assert iq.attrs.get("xmlns") == "encrypt"
        wanted = [u.attrs["jid"] for u in iq.child("key").children("user")]
        self.bundle_fetches.append(wanted)
        return Node("iq", result, [Node("list", {}, [bundle_node(Jid.parse(j), self.parties[j].bundle())
                                                      for j in wanted])])

    def open(self, device: Jid, stanza: Node | None = None) -> DecodedMessage:
        """What ``device`` reads of the stanza (the last message sent by default)."""
        stanza = stanza if stanza is not None else self.sent[-1]
        encs = [e for e in stanza.children("enc")]
        participants = stanza.child("participants")
        for to in participants.children("to") if participants is not None else []:
            if to.attrs["jid"] == str(device):
                encs = to.children("enc") + encs
        group = stanza.attrs["to"].endswith("@g.us")
        attrs = {"id": stanza.attrs["id"], "from": str(GROUP) if group else str(ME), "t": "1", "type": "text"}
        if group:
            attrs["participant"] = str(ME)
        message: IncomingMessage = stanzas.incoming_message(Node("message", attrs, encs))
        party = self.parties[str(device)]
        decoded: DecodedMessage | None = None
        for payload in message.payloads:
            author = SignalAddress.from_jid(ME)
            if payload.type == "skmsg":
                plaintext = party.repo.group_decrypt(str(GROUP), author, payload.ciphertext)
            else:
                plaintext = party.repo.decrypt(author, payload.type, payload.ciphertext)  # type: ignore[arg-type]
            decoded = decode_message(unpad(plaintext))
            if decoded.sender_key_distribution is not None:
                skdm = decoded.sender_key_distribution
                party.repo.process_sender_key_distribution(skdm.group_id, author, skdm.axolotl_message)
        assert decoded is not None
        return decoded


def _statuses(server: Server) -> list[tuple[str, Status]]:
    return [(s.message_id, s.status) for s in server.outbound.statuses()]


def test_one_to_one_text_reaches_every_device_and_reports_sent_with_the_ack_time() -> None:
    me = _party(ME)
    server = Server(me, [BOB, BOB_LAPTOP, MY_PHONE])
    server.outbound.send(SendRequest("3EB0AAAA", BOB, text_message("hello Bob")), NOW)
    server.run()
    [sent] = server.outbound.statuses()
    assert sent == SendStatus("3EB0AAAA", Status.SENT, 1700000000)
    assert sorted(server.bundle_fetches[0]) == sorted([str(BOB), str(BOB_LAPTOP), str(MY_PHONE)])
    stanza = server.sent[0]
    assert stanza.attrs["to"] == str(BOB) and stanza.attrs["type"] == "text"
    assert stanza.child_bytes("device-identity") == IDENTITY
    assert server.open(BOB).text == "hello Bob" and server.open(BOB_LAPTOP).text == "hello Bob"
    at_phone = server.open(MY_PHONE)
    assert at_phone.text == "hello Bob" and at_phone.device_sent is not None
    assert at_phone.device_sent.destination_jid == str(BOB)

    # The second send reuses the sessions (no bundle fetch); they stay pending (pkmsg) until the
    # recipients answer, and every copy opens in order.
    server.outbound.send(SendRequest("3EB0BBBB", BOB, text_message("again")), NOW)
    server.run()
    assert len(server.bundle_fetches) == 1
    assert server.open(BOB).text == "again" and server.open(MY_PHONE).text == "again"


def test_reply_and_reaction_carry_their_target() -> None:
    me = _party(ME)
    server = Server(me, [BOB])
    quoted = text_message("the question")
    reply = reply_message("the answer", ReplyTarget("3EB0Q", str(BOB), message=quoted))
    server.outbound.send(SendRequest("3EB0R1", BOB, reply), NOW)
    server.run()
    at_bob = server.open(BOB)
    assert at_bob.text == "the answer"
    server.outbound.send(SendRequest("3EB0R2", BOB, reaction_message(MessageRef("3EB0Q", str(BOB)), "👍", 5)), NOW)
    server.run()
    assert server.sent[-1].attrs["type"] == "reaction"
    reaction = server.open(BOB).content.reaction
    assert reaction is not None and (reaction.target.id, reaction.emoji) == ("3EB0Q", "👍")
    assert [s for _, s in _statuses(server)] == [Status.SENT, Status.SENT]


def test_group_send_gives_the_sender_key_once_to_each_device() -> None:
    me = _party(ME)
    server = Server(me, [BOB, CAROL, MY_PHONE], members=[MY_PHONE, BOB, CAROL])
    server.outbound.send(SendRequest("3EB0G1", GROUP, text_message("hello group")), NOW)
    server.run()
    first = server.sent[0]
    assert first.child("enc").attrs["type"] == "skmsg" and first.attrs["phash"].startswith("2:")
    assert {to.attrs["jid"] for to in first.child("participants").children("to")} == {str(BOB), str(CAROL),
                                                                                      str(MY_PHONE)}
    for device in (BOB, CAROL, MY_PHONE):
        assert server.open(device).text == "hello group"
    server.outbound.send(SendRequest("3EB0G2", GROUP, text_message("second")), NOW)
    server.run()
    second = server.sent[1]
    assert second.child("participants") is None  # everyone holds our sender key
    assert server.open(CAROL).text == "second"
    assert [s for _, s in _statuses(server)] == [Status.SENT, Status.SENT]


def test_receipts_move_the_status_forward_only() -> None:
    me = _party(ME)
    server = Server(me, [BOB])
    server.outbound.send(SendRequest("3EB0S1", BOB, text_message("hi")), NOW)
    server.run()
    assert server.outbound.handle(Node("receipt", {"id": "3EB0S1", "from": str(BOB), "t": "5"}), NOW)
    assert server.outbound.handle(Node("receipt", {"id": "3EB0S1", "from": str(BOB), "type": "read", "t": "6"}), NOW)
    # A late delivery receipt from another device changes nothing; an unknown id is not ours.
    assert server.outbound.handle(Node("receipt", {"id": "3EB0S1", "from": str(BOB_LAPTOP)}), NOW)
    assert not server.outbound.handle(Node("receipt", {"id": "3EB0OTHER", "from": str(BOB)}), NOW)
    statuses = server.outbound.statuses()
    assert [(s.status, s.timestamp, s.device) for s in statuses] == [
        (Status.SENT, 1700000000, None), (Status.DELIVERED, 5, str(BOB)), (Status.READ, 6, str(BOB))]


def test_error_ack_and_silence_fail_the_send_with_a_reason() -> None:
    me = _party(ME)
    server = Server(me, [BOB])
    server.outbound.send(SendRequest("3EB0F1", BOB, text_message("hi")), NOW)
    server.run(ack_error=479)
    [failed] = server.outbound.statuses()
    assert (failed.status, failed.reason) == (Status.FAILED, "server_error_479")

    server.outbound.send(SendRequest("3EB0F2", BOB, text_message("hi")), NOW)
    [usync] = server.outbound.outgoing()  # never answered
    assert usync.node.attrs["xmlns"] == "usync"
    deadline = server.outbound.next_deadline()
    assert deadline is not None and deadline > NOW
    server.outbound.tick(deadline)
    [timed_out] = server.outbound.statuses()
    assert (timed_out.message_id, timed_out.status) == ("3EB0F2", Status.FAILED)
    assert timed_out.reason == "devices_timeout"
    assert server.outbound.next_deadline() is None


def test_a_refused_device_list_fails_and_a_recipient_without_devices_too() -> None:
    me = _party(ME)
    server = Server(me, [])
    server.outbound.send(SendRequest("3EB0N1", BOB, text_message("hi")), NOW)
    server.run()
    [failed] = server.outbound.statuses()
    assert (failed.status, failed.reason) == (Status.FAILED, "no_devices")
    assert server.sent == []


def test_retry_receipt_with_keys_resends_to_that_device_only() -> None:
    me = _party(ME)
    server = Server(me, [BOB, BOB_LAPTOP])
    server.outbound.send(SendRequest("3EB0T1", BOB, text_message("can you read me")), NOW)
    server.run()
    server.outbound.statuses()
    # Bob's laptop lost its state (a bad restore): a new identity, and it sends its keys with count 2.
    laptop = _party(BOB_LAPTOP)
    server.parties[str(BOB_LAPTOP)] = laptop
    keys = retry_keys(laptop.store, laptop.random, b"\x0a\x01d")
    asked = retry_receipt(stanzas.incoming_message(Node("message", {
        "id": "3EB0T1", "from": str(ME), "t": "1", "type": "text"}, [])), 2,
        laptop.repo.local_bundle().registration_id, keys=keys)
    asked.attrs["from"] = str(BOB_LAPTOP)
    asked.attrs.pop("to", None)
    assert server.outbound.handle(decode_node(encode_node(asked)), NOW)
    [resend] = server.outbound.outgoing()
    assert resend.signal_changed
    node = decode_node(encode_node(resend.node))
    assert node.attrs["to"] == str(BOB_LAPTOP) and node.attrs["device_fanout"] == "false"
    assert node.attrs["t"] == "1700000000" and node.child("enc").attrs["count"] == "2"
    assert node.child("participants") is None
    assert server.open(BOB_LAPTOP, Node("message", node.attrs, [node.child("enc")])).text == "can you read me"
    assert server.outbound.statuses() == []  # a resend does not change the status


def test_retry_receipt_without_keys_fetches_a_fresh_bundle_from_the_second_try_and_stops_after_five() -> None:
    me = _party(ME)
    server = Server(me, [BOB])
    server.outbound.send(SendRequest("3EB0T2", BOB, text_message("once more")), NOW)
    server.run()
    bob = _party(BOB)  # lost its state, and its bundle on the server is new
    server.parties[str(BOB)] = bob
    for count in range(1, MAX_RESENDS + 2):
        retry = Node("receipt", {"id": "3EB0T2", "from": str(BOB), "type": "retry"}, [
            Node("retry", {"count": str(count), "id": "3EB0T2", "t": "1", "v": "1"}),
            Node("registration", {}, bob.repo.local_bundle().registration_id.to_bytes(4, "big"))])
        assert server.outbound.handle(retry, NOW)
        out = server.outbound.outgoing()
        if count > MAX_RESENDS:
            assert out == []
            break
        if count == 1:  # the first try resends on the session we hold
            [resend] = out
            assert resend.node.tag == "message" and resend.node.child("enc").attrs["count"] == "1"
            continue
        [fetch] = out
        assert fetch.node.attrs["xmlns"] == "encrypt"
        assert fetch.node.child("key").child("user").attrs["reason"] == "identity"
        assert server.outbound.handle(server.answer(decode_node(encode_node(fetch.node))), NOW)
        [resend] = server.outbound.outgoing()
        node = decode_node(encode_node(resend.node))
        assert node.child("enc").attrs["type"] == "pkmsg" and node.child_bytes("device-identity") == IDENTITY
        if count == 2:
            assert server.open(BOB, Node("message", node.attrs, [node.child("enc")])).text == "once more"


def test_group_retry_resends_the_message_with_the_sender_key_inside() -> None:
    me = _party(ME)
    server = Server(me, [BOB, CAROL], members=[MY_PHONE, BOB, CAROL])
    server.outbound.send(SendRequest("3EB0GR", GROUP, text_message("group text")), NOW)
    server.run()
    carol = _party(CAROL)
    server.parties[str(CAROL)] = carol
    keys = retry_keys(carol.store, carol.random, b"\x0a\x01d")
    asked = retry_receipt(stanzas.incoming_message(Node("message", {
        "id": "3EB0GR", "from": str(GROUP), "participant": str(ME), "t": "1", "type": "text"}, [])), 2,
        carol.repo.local_bundle().registration_id, keys=keys)
    asked.attrs.update({"from": str(GROUP), "participant": str(CAROL)})
    asked.attrs.pop("to", None)
    assert server.outbound.handle(decode_node(encode_node(asked)), NOW)
    [resend] = server.outbound.outgoing()
    node = decode_node(encode_node(resend.node))
    assert (node.attrs["to"], node.attrs["participant"]) == (str(GROUP), str(CAROL))
    assert "device_fanout" not in node.attrs
    seen = server.open(CAROL, Node("message", node.attrs, [node.child("enc")]))
    assert seen.text == "group text" and seen.content.kind is ContentKind.TEXT


def test_sent_log_is_bounded_by_count_and_age() -> None:
    log = SentLog(keep_s=10.0, max_count=2)
    me = _party(ME)
    server = Server(me, [BOB])
    server.outbound = Outbound(me.repo, ME, None, device_identity=IDENTITY, rand=me.random,
                                   next_id=lambda: "iq", sent=log)
    for i in range(3):
        server.outbound.send(SendRequest(f"3EB0L{i}", BOB, text_message("x")), NOW + i)
    assert len(log) == 2 and log.get("3EB0L0", NOW) is None and log.get("3EB0L2", NOW + 2) is not None
    assert log.get("3EB0L2", NOW + 20) is None and len(log) == 0


def test_a_malformed_message_is_refused_before_anything_is_sent() -> None:
    me = _party(ME)
    server = Server(me, [BOB])
    with pytest.raises(MessageFormatError):
        server.outbound.send(SendRequest("3EB0BAD", BOB, b"\xff\xff\xff"), NOW)
    assert server.outbound.outgoing() == []


def test_a_receipt_that_overtakes_the_ack_still_leaves_sent_reported_and_our_own_receipts_count_not() -> None:
    me = _party(ME)
    server = Server(me, [BOB, MY_PHONE])
    server.outbound.send(SendRequest("3EB0O1", BOB, text_message("hi")), NOW)
    for _ in range(3):  # answer the queries, hold the ack back
        for item in server.outbound.outgoing():
            if item.node.tag != "message":
                assert server.outbound.handle(server.answer(decode_node(encode_node(item.node))), NOW)
    assert not server.outbound.handle(Node("receipt", {"id": "3EB0O1", "from": str(MY_PHONE)}), NOW)
    assert server.outbound.handle(Node("receipt", {"id": "3EB0O1", "from": str(BOB), "t": "3"}), NOW)
    assert server.outbound.handle(Node("ack", {"class": "message", "id": "3EB0O1", "t": "2"}), NOW)
    assert [(s.status, s.timestamp) for s in server.outbound.statuses()] == [(Status.DELIVERED, 3), (Status.SENT, 2)]


def test_a_refused_query_fails_the_send_with_the_step_and_code() -> None:
    me = _party(ME)
    server = Server(me, [BOB])
    server.outbound.send(SendRequest("3EB0Q1", BOB, text_message("hi")), NOW)
    [usync] = server.outbound.outgoing()
    refusal = Node("iq", {"id": usync.node.attrs["id"], "type": "error"}, [Node("error", {"code": "503", "text": "x"})])
    assert server.outbound.handle(refusal, NOW)
    assert [(s.status, s.reason) for s in server.outbound.statuses()] == [(Status.FAILED, "devices_refused_503")]
    assert server.outbound.next_deadline() is None
    # An iq that is not the flow's is left to the client.
    assert not server.outbound.handle(Node("iq", {"id": "other", "type": "result"}), NOW)
