"""Messages on the real stack: the functions over HTTP on the Firestore and Pub/Sub emulators.

- recordMessageEvent, fed the CloudEvents Eventarc sends (the relay's own request builder) and fed
  through the push subscription ``keeper functions`` sets up: stored once, in order, status monotonic;
- sendMessage: validation over the callable protocol, the pending message and its outbox entry,
  clientMessageId dedupe under concurrent calls;
- pickup: a connector's OutboxSubscription and OutboxDispatcher get a send within a second of the call;
- catch-up: a send accepted while no connector holds the account reaches the connector that claims
  it, again after a crash of that connector, and no more once its status says sent;
- retention: cleanup deletes messages older than the retention.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from connector.leases import LeaseKeeper
from connector.outbox import OutboxDispatcher, OutboxSubscription
from connector.snapshot_codec import SnapshotCodec
from connector.sync import HttpSyncClient
from functions.firestore_stores import account_to_doc
from functions.model import Account, AccountStatus, PairingMethod
from keeper.relay import Delivery, Route, cloud_event
from shared.connector_sync import Claim, Command, HeldLease, Lost, SyncRequest
from shared.events import (
    MessageKey,
    MessageReceived,
    MessageStatus,
    MessageStatusUpdate,
    OutboundSend,
    SnapshotAttributes,
)
from testkit.auth_states import registered_state
from tests.functions.conftest import CONNECTOR_TOKEN, SCHEDULER_TOKEN, Gateway

pytestmark = pytest.mark.integration

PEER = "40711111111@s.whatsapp.net"
NOW = datetime.now(UTC)


def linked_account(firestore_client: Any, account_id: str, owner: str = "alice",
                   phone: str = "+40700000001") -> None:
    at = datetime.now(UTC)
    firestore_client.collection("accounts").document(account_id).set(account_to_doc(Account(
        account_id=account_id, owner_uid=owner, phone_number=phone, method=PairingMethod.CODE,
        status=AccountStatus.CONNECTED, serve=False, created_at=at, updated_at=at,
        linked_jid=f"{phone[1:]}:4@s.whatsapp.net")))


def post_event(gw: Gateway, data: bytes, attributes: dict[str, str], message_id: str = "1") -> requests.Response:
    """POST one messages-topic event to recordMessageEvent as Eventarc does (what the local relay sends)."""
    route = Route("recordMessageEvent", f"projects/{gw.project}/topics/{gw.topics['messages']}",
                  f"projects/{gw.project}/subscriptions/recordMessageEvent-test", gw.url("recordMessageEvent"))
    headers, body = cloud_event(route, Delivery(message_id, data, attributes, datetime.now(UTC)))
    return requests.post(route.endpoint, data=body, headers=headers, timeout=15)


def incoming(account_id: str, message_id: str, text: str, at: int) -> MessageReceived:
    return MessageReceived(account_id, MessageKey(PEER, False, message_id), {"conversation": text}, PEER, PEER, at,
                           "text", text, "Bob")


def doc(firestore_client: Any, account_id: str, kind: str, doc_id: str) -> dict[str, Any] | None:
    snap = firestore_client.collection("accounts").document(account_id).collection(kind).document(doc_id).get()
    return snap.to_dict() if snap.exists else None


def wait_for(check: Any, timeout_s: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout_s} s")


def test_received_messages_are_stored_once_in_order_over_http(functions_gateway: Gateway,
                                                               firestore_client: Any) -> None:
    gw = functions_gateway
    linked_account(firestore_client, "acc-m1")
    t = int(NOW.timestamp())
    first, second = incoming("acc-m1", "3EB0M1", "first", t), incoming("acc-m1", "3EB0M2", "second", t + 5)
    for event in (second, first, first, second):  # out of order, and each delivered twice
        response = post_event(gw, event.to_json(), event.attributes())
        assert response.status_code == 200, response.text
    stored = doc(firestore_client, "acc-m1", "messages", "3EB0M1")
    assert stored is not None and stored["text"] == "first" and stored["message"] == {"conversation": "first"}
    assert stored["timestamp"] == datetime.fromtimestamp(t, UTC) and stored["key"]["id"] == "3EB0M1"
    chat = doc(firestore_client, "acc-m1", "chats", PEER)
    assert chat is not None
    assert chat["unreadCount"] == 2 and chat["lastMessage"]["id"] == "3EB0M2" and chat["name"] == "Bob"
    # garbage is acknowledged (2xx, not redelivered) and changes nothing
    assert post_event(gw, b"{not json", {"type": "message.received"}).status_code == 200
    assert post_event(gw, first.to_json().replace(b'"v":1', b'"v":7'), first.attributes()).status_code >= 500


def test_concurrent_redeliveries_count_a_message_once(functions_gateway: Gateway, firestore_client: Any) -> None:
    gw = functions_gateway
    linked_account(firestore_client, "acc-m3")
    event = incoming("acc-m3", "3EB0C1", "raced", int(NOW.timestamp()))

    def deliver(n: int) -> int:
        """One delivery as Pub/Sub makes it: a refusal (5xx: the transactions contended) is retried."""
        for attempt in range(20):
            status = post_event(gw, event.to_json(), event.attributes(), f"{n}-{attempt}").status_code
            if status == 200:
                return attempt
            assert status >= 500
            time.sleep(0.2)
        raise AssertionError("never accepted")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(deliver, range(8)))
    chat = doc(firestore_client, "acc-m3", "chats", PEER)
    assert chat is not None and chat["unreadCount"] == 1


def test_published_events_reach_the_store_through_the_subscription(functions_gateway: Gateway,
                                                                    firestore_client: Any) -> None:
    gw = functions_gateway
    linked_account(firestore_client, "acc-m2")
    event = incoming("acc-m2", "3EB0P1", "through pubsub", int(NOW.timestamp()))
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    topic = publisher.topic_path(gw.project, gw.topics["messages"])
    publisher.publish(topic, event.to_json(), ordering_key="acc-m2", **event.attributes()).result(30)
    stored = wait_for(lambda: doc(firestore_client, "acc-m2", "messages", "3EB0P1"), what="message stored")
    assert stored["text"] == "through pubsub"


def test_send_message_validation_pending_store_and_dedupe(functions_gateway: Gateway, firestore_client: Any) -> None:
    gw = functions_gateway
    linked_account(firestore_client, "acc-s1")
    bad = gw.call("sendMessage", {"accountId": "acc-s1", "to": "0711", "text": "x"})
    assert bad.status_code == 400
    assert bad.json()["error"]["status"] == "INVALID_ARGUMENT" and bad.json()["error"]["details"] == {"field": "to"}
    assert gw.call("sendMessage", {"accountId": "acc-s1", "to": PEER, "text": "x"}, "mallory").status_code == 403
    long_text = "ü" * 65_536  # the largest text: 128 KiB of UTF-8, over the default callable limit
    reply = gw.call("sendMessage", {"accountId": "acc-s1", "to": "+40711111111", "text": long_text})
    assert reply.status_code == 200, reply.text
    assert reply.json()["result"]["status"] == "pending"

    def send_once(_: int) -> Any:
        return gw.call("sendMessage", {"accountId": "acc-s1", "to": PEER, "text": "once",
                                       "clientMessageId": "order-42"}).json()

    with ThreadPoolExecutor(6) as pool:
        replies = list(pool.map(send_once, range(6)))
    ids = {r["result"]["messageId"] for r in replies}
    assert len(ids) == 1, replies
    (message_id,) = ids
    outbox = firestore_client.collection("accounts").document("acc-s1").collection("outbox").stream()
    entries = {snap.id: snap.to_dict() for snap in outbox}
    assert message_id in entries and len(entries) == 2  # the long text and this one, once
    stored = doc(firestore_client, "acc-s1", "messages", message_id)
    assert stored is not None and (stored["status"], stored["fromMe"], stored["chat"]) == ("pending", True, PEER)
    conflict = gw.call("sendMessage", {"accountId": "acc-s1", "to": PEER, "text": "other",
                                       "clientMessageId": "order-42"})
    assert conflict.status_code == 409 and conflict.json()["error"]["details"] == {"field": "clientMessageId"}

    status = MessageStatusUpdate("acc-s1", message_id, PEER, MessageStatus.SENT, datetime.now(UTC))
    assert post_event(gw, status.to_json(), status.attributes()).status_code == 200
    delivered = MessageStatusUpdate("acc-s1", message_id, PEER, MessageStatus.READ, datetime.now(UTC))
    assert post_event(gw, delivered.to_json(), delivered.attributes()).status_code == 200
    assert post_event(gw, status.to_json(), status.attributes()).status_code == 200  # late redelivery
    stored = doc(firestore_client, "acc-s1", "messages", message_id)
    assert stored is not None and stored["status"] == "read"
    assert doc(firestore_client, "acc-s1", "outbox", message_id) is None


async def test_the_holding_connector_picks_a_send_up_within_a_second(functions_gateway: Gateway,
                                                                     firestore_client: Any) -> None:
    gw = functions_gateway
    linked_account(firestore_client, "acc-p1")
    got: dict[str, float] = {}
    arrived = asyncio.Event()

    async def handler(send: OutboundSend) -> None:
        got[send.message_id] = time.monotonic()
        arrived.set()

    dispatcher = OutboxDispatcher(lambda account_id: account_id == "acc-p1", handler)
    feed = OutboxSubscription(gw.project, gw.topics["outbox"], "pickup-test", dispatcher.offer)
    await feed.start()
    try:
        latencies = []
        for n in range(3):
            arrived.clear()
            started = time.monotonic()
            reply = await asyncio.to_thread(gw.call, "sendMessage",
                                            {"accountId": "acc-p1", "to": PEER, "text": f"ping {n}"})
            message_id = reply.json()["result"]["messageId"]
            await asyncio.wait_for(arrived.wait(), 10)
            latencies.append(got[message_id] - started)
        assert max(latencies) < 1.0, latencies
        # another connector's account: seen on the topic, not handed over here
        linked_account(firestore_client, "acc-p2", phone="+40700000002")
        await asyncio.to_thread(gw.call, "sendMessage", {"accountId": "acc-p2", "to": PEER, "text": "not mine"})
        await asyncio.sleep(1.0)
        assert len(got) == 3 and dispatcher.parked() == 1
    finally:
        await feed.close()
        await dispatcher.close()


class _Owner:
    """The connector service's part in the catch-up: claims make accounts held, sends go to the dispatcher."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.handed: list[str] = []
        self.dispatcher = OutboxDispatcher(lambda a: a in self.held, self._handle)

    async def _handle(self, send: OutboundSend) -> None:
        self.handed.append(send.message_id)

    def on_vault_key(self, public_key: bytes, key_id: str) -> None: ...

    def on_claimed(self, claim: Claim) -> None:
        self.held.add(claim.account_id)
        self.dispatcher.account_claimed(claim.account_id)

    def on_lost(self, lost: Lost) -> None:
        self.held.discard(lost.account_id)

    def on_expiring(self, account_id: str) -> None: ...

    def on_command(self, command: Command) -> None: ...

    def on_pending_sends(self, sends: Any) -> None:
        self.dispatcher.offer_all(sends)


async def _linked_with_state(gw: Gateway, firestore_client: Any, phone: str) -> str:
    """An account with a stored linked state that no connector holds (claimed in restore mode)."""
    added = gw.call("addAccount", {"phoneNumber": phone, "method": "code"}, "alice").json()["result"]["accountId"]
    codec = SnapshotCodec("setup")
    client = HttpSyncClient(gw.base, CONNECTOR_TOKEN)
    try:
        answer = await client.sync(SyncRequest("setup", 50, codec.public_key))
        (claim,) = [c for c in answer.claimed if c.account_id == added]
        codec.vault_public_key, codec.vault_key_id = answer.vault_public_key, answer.vault_key_id
        publisher = pubsub_v1.PublisherClient()
        attrs = SnapshotAttributes(added, claim.generation, "setup").to_attributes()
        sealed = codec.seal(added, claim.generation, registered_state(3))
        publisher.publish(publisher.topic_path(gw.project, gw.topics["snapshots"]), sealed, **attrs).result(30)
        head = firestore_client.collection("whatsapp_sessions").document(added)
        wait_for(lambda: (head.get().to_dict() or {}).get("latestVersion"), what="state stored")
        await client.sync(SyncRequest("setup", 0, codec.public_key, release=[HeldLease(added, claim.generation)]))
    finally:
        await client.close()
    firestore_client.collection("accounts").document(added).update(
        {"status": "connected", "linkedJid": f"{phone[1:]}:4@s.whatsapp.net"})
    return str(added)


async def test_a_send_accepted_while_no_connector_holds_the_account_goes_out_after_the_claim(
        functions_gateway: Gateway, firestore_client: Any) -> None:
    gw = functions_gateway
    account_id = await _linked_with_state(gw, firestore_client, "+40733333301")
    reply = gw.call("sendMessage", {"accountId": account_id, "to": PEER, "text": "while nobody holds it"})
    message_id = reply.json()["result"]["messageId"]

    async def connector(connector_id: str) -> tuple[_Owner, LeaseKeeper, HttpSyncClient]:
        owner = _Owner()
        client = HttpSyncClient(gw.base, CONNECTOR_TOKEN)
        keeper = LeaseKeeper(client, owner, connector_id=connector_id, capacity=10,
                             public_key=SnapshotCodec(connector_id).public_key, interval_s=5)
        await keeper.sync_once()
        return owner, keeper, client

    first, _, client = await connector("catchup-1")
    try:
        assert account_id in first.held
        await asyncio.wait_for(_until(lambda: first.handed == [message_id]), 5)
    finally:
        await first.dispatcher.close()
        await client.close()
    # catchup-1 "crashed" before the server ack: no status came; its lease runs out (forced here)
    lapse(firestore_client, account_id)
    second, _, client = await connector("catchup-2")
    try:
        assert account_id in second.held
        await asyncio.wait_for(_until(lambda: second.handed == [message_id]), 5)
        sent = MessageStatusUpdate(account_id, message_id, PEER, MessageStatus.SENT, datetime.now(UTC))
        assert post_event(gw, sent.to_json(), sent.attributes()).status_code == 200
        stored = doc(firestore_client, account_id, "messages", message_id)
        assert stored is not None and stored["status"] == "sent"
    finally:
        await second.dispatcher.close()
        await client.close()
    lapse(firestore_client, account_id)
    third, _, client = await connector("catchup-3")
    try:
        assert account_id in third.held
        await asyncio.sleep(0.3)
        assert third.handed == []  # sent: out of the outbox
    finally:
        await third.dispatcher.close()
        await client.close()


def lapse(firestore_client: Any, account_id: str) -> None:
    """The holder's lease ran out (as 30 s after a crash): lease and claim index moved into the past."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    firestore_client.collection("leases").document(account_id).update({"expiresAt": past})
    firestore_client.collection("accounts").document(account_id).update({"claimableAfter": past})


async def _until(check: Any) -> None:
    while not check():
        await asyncio.sleep(0.02)


def test_cleanup_deletes_messages_past_the_retention(functions_gateway: Gateway, firestore_client: Any) -> None:
    gw = functions_gateway
    linked_account(firestore_client, "acc-r1")
    old = int((datetime.now(UTC) - timedelta(days=29, hours=23)).timestamp())
    for event in (incoming("acc-r1", "3EB0R1", "old", old), incoming("acc-r1", "3EB0R2", "new", int(NOW.timestamp()))):
        assert post_event(gw, event.to_json(), event.attributes()).status_code == 200
    # a day passes: the first is now past the 30 days (moved back in the document, as time would)
    messages = firestore_client.collection("accounts").document("acc-r1").collection("messages")
    messages.document("3EB0R1").update({"timestamp": datetime.now(UTC) - timedelta(days=31)})
    response = requests.post(gw.url("cleanup"), headers={"Authorization": f"Bearer {SCHEDULER_TOKEN}"},
                             json={}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["messages"] >= 1
    assert doc(firestore_client, "acc-r1", "messages", "3EB0R1") is None
    assert doc(firestore_client, "acc-r1", "messages", "3EB0R2") is not None
