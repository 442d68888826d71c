"""The client drives the send flow: queries out, answers in, the message after a critical CredsChanged
(persist before send), the server ack and the receipts as SendStatus events."""

from __future__ import annotations

from connector.protocol.binary import Jid, Node
from connector.protocol.bundles import bundle_node
from connector.protocol.client import SEND_STATE_CATEGORIES
from connector.protocol.events import CredsChanged, Event
from connector.protocol.outbound import SendRequest
from connector.protocol.send_status import SendStatus, Status
from connector.protocol.signal.types import SignalAddress
from connector.protocol.wamessage_encode import text_message
from testkit.protocol.fake_server import NOW
from tests.connector.protocol.signal.parties import make_party

from .test_client import FakeServer, connect, of_type, open_client, registered_store

BOB = Jid.parse("4915550002@s.whatsapp.net")


def _usync_answer(iq: Node) -> Node:
    users = [Node("user", {"jid": u.attrs["jid"]}, [Node("devices", {}, [Node("device-list", {}, [
        Node("device", {"id": "0"})] if u.attrs["jid"] == str(BOB) else [])])])
        for u in iq.child("usync", "list").children("user")]
    return Node("iq", {"id": iq.attrs["id"], "type": "result"}, [Node("usync", {}, [Node("list", {}, users)])])


def test_a_send_goes_out_after_its_signal_state_and_reports_sent_delivered_read() -> None:
    store, server = registered_store(), FakeServer()
    client, _ = open_client(store, server)
    client.events()
    bob = make_party(str(BOB), SignalAddress.from_jid(BOB))
    assert client.send_message(SendRequest("3EB0C1", BOB, text_message("hi Bob")), NOW)
    [usync] = server.receive(client.data_to_send())
    assert usync.attrs["xmlns"] == "usync"
    client.receive_data(server.send(_usync_answer(usync)), NOW)
    [fetch] = server.receive(client.data_to_send())
    assert fetch.attrs["xmlns"] == "encrypt"
    client.events()
    client.receive_data(server.send(Node("iq", {"id": fetch.attrs["id"], "type": "result"}, [
        Node("list", {}, [bundle_node(BOB, bob.bundle())])])), NOW)
    events: list[Event] = client.events()
    critical = [e for e in of_type(events, CredsChanged) if e.kind == "critical"]
    assert critical == [CredsChanged(kind="critical", categories=SEND_STATE_CATEGORIES)]
    # The session that produced the ciphertext is in the store by the time the bytes are handed over.
    assert store.get_keys("session", [SignalAddress.from_jid(BOB).name])
    [message] = server.receive(client.data_to_send())
    assert message.tag == "message" and message.attrs["id"] == "3EB0C1"
    assert client.sends_in_flight == 1

    client.receive_data(server.send(Node("ack", {"class": "message", "id": "3EB0C1", "t": "1780000005"})), NOW)
    assert of_type(client.events(), SendStatus) == [SendStatus("3EB0C1", Status.SENT, 1780000005)]
    assert client.sends_in_flight == 0
    client.receive_data(server.send(Node("receipt", {"id": "3EB0C1", "from": str(BOB), "t": "1780000006"}),
                                    Node("receipt", {"id": "3EB0C1", "from": str(BOB), "type": "read",
                                                     "t": "1780000007"})), NOW)
    statuses = of_type(client.events(), SendStatus)
    assert [(s.status, s.timestamp) for s in statuses] == [(Status.DELIVERED, 1780000006), (Status.READ, 1780000007)]
    acks = server.receive(client.data_to_send())
    assert [(a.tag, a.attrs["class"]) for a in acks] == [("ack", "receipt"), ("ack", "receipt")]


def test_no_send_before_login() -> None:
    store, server = registered_store(), FakeServer()
    client = connect(store, server)
    assert not client.send_message(SendRequest("3EB0C2", BOB, text_message("too early")), NOW)
    assert server.receive(client.data_to_send()) == []
