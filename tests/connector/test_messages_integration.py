"""Receiving messages on the real stack: emulators, the functions over HTTP (``recordMessageEvent`` on the
messages topic writing the store), the simulator (its phones are Signal parties that send real messages)
and the connector as a child process, killed -9 at its worst moments.

The witnesses: the message store in Firestore (``accounts/{id}/messages``), a pull subscription of our
own on the messages topic (every event published, duplicates included), and the simulator's queue of
messages not yet confirmed by the keeper device.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.testing import ControlClient, SimulatorHandle, simulator_process
from testkit.connector_stack import Stack, kill_hard, start_stack
from tests.connector.test_simulator_integration import pair_by_code, until, wa_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def stack(children: Any, project_id: str, firestore_client: Any, pubsub_emulator: str, tmp_path: Path) -> Stack:
    return start_stack(children, project_id, uuid.uuid4().hex[:10], tmp_path / "home")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with simulator_process(log_path=tmp_path / "simulator.log", state_dir=tmp_path / "sim") as handle:
        yield handle


@pytest.fixture
async def control(sim: SimulatorHandle) -> AsyncIterator[ControlClient]:
    client = sim.control()
    yield client
    await client.close()


class Tap:
    """A pull subscription on the messages topic: every event the connector published."""

    def __init__(self, stack: Stack) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self._subscriber = pubsub_v1.SubscriberClient()
        self._path = self._subscriber.subscription_path(stack.project, f"messages-tap-{stack.suffix}")
        self._subscriber.create_subscription(request={
            "name": self._path, "topic": f"projects/{stack.project}/topics/{stack.topics['messages']}"})
        self.events: list[dict[str, Any]] = []

    def pull(self) -> list[dict[str, Any]]:
        response = self._subscriber.pull(request={"subscription": self._path, "max_messages": 100}, timeout=10)
        if response.received_messages:
            self._subscriber.acknowledge(request={"subscription": self._path,
                                                  "ack_ids": [m.ack_id for m in response.received_messages]})
        self.events += [json.loads(m.message.data) for m in response.received_messages]
        return self.events

    def close(self) -> None:
        self._subscriber.delete_subscription(request={"subscription": self._path})
        self._subscriber.close()


@pytest.fixture
def tap(stack: Stack) -> Iterator[Tap]:
    tap = Tap(stack)
    yield tap
    tap.close()


def stored(firestore_client: Any, account_id: str) -> dict[str, dict[str, Any]]:
    messages = firestore_client.collection("accounts").document(account_id).collection("messages")
    return {doc.id: doc.to_dict() for doc in messages.stream()}


async def send(control: ControlClient, sender: str, to: str, text: str) -> str:
    sent = await control.request("POST", f"/v1/phones/{sender}/messages", {"to": to, "text": text})
    return str(sent["id"])


async def no_pending(control: ControlClient, phone: str) -> bool:
    (device,) = await control.devices(phone)
    return not await control.pending_messages(phone, device["device"])


def metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


async def test_a_phones_messages_arrive_decoded_in_pubsub_and_the_store(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any, tap: Tap) -> None:
    phone, contact = "+40700000041", "+40700000042"
    _, port = stack.start_connector("c-recv", **wa_env(sim))
    account_id = await pair_by_code(stack, control, firestore_client, phone)
    await control.create_phone(contact)
    ids = [await send(control, contact, phone, f"hello {i}") for i in range(3)]
    await until(lambda: set(ids) <= set(stored(firestore_client, account_id)), what="messages stored")
    docs = stored(firestore_client, account_id)
    assert [docs[i]["text"] for i in ids] == ["hello 0", "hello 1", "hello 2"]
    assert all(docs[i]["fromMe"] is False and docs[i]["type"] == "text" for i in ids)
    await until(lambda: no_pending(control, phone), what="messages confirmed to the server")

    events = {e["key"]["id"]: e for e in await until(lambda: len(tap.pull()) >= 3 and tap.events)}
    first = events[ids[0]]
    assert first["type"] == "message.received" and first["messageType"] == "text"
    assert first["message"] == {"conversation": "hello 0"}
    assert first["key"]["fromMe"] is False and first["chat"] == first["key"]["remoteJid"]
    contact_jids = {(await control.request("GET", f"/v1/phones/{contact}"))[k] for k in ("jid", "lid")}
    assert first["chat"] in contact_jids and first["sender"] == first["chat"]

    # The account's own phone writes to the contact: our copy is fromMe, in the contact's chat.
    own = await send(control, phone, contact, "from my phone")
    await until(lambda: own in stored(firestore_client, account_id), what="own device's message stored")
    assert stored(firestore_client, account_id)[own]["fromMe"] is True

    # A group: the sender key travels in the same stanza, and then alone.
    group = (await control.request("POST", "/v1/groups", {"creator": contact, "subject": "team",
                                                          "participants": [phone]}))["id"]
    in_group = [await send(control, contact, group, "hello team"), await send(control, contact, group, "again")]
    await until(lambda: set(in_group) <= set(stored(firestore_client, account_id)), what="group messages stored")
    docs = stored(firestore_client, account_id)
    assert [docs[i]["text"] for i in in_group] == ["hello team", "again"]
    assert all(docs[i]["chat"] == group for i in in_group)
    await until(lambda: no_pending(control, phone), what="group messages confirmed")
    text = metrics(port)
    assert 'keeper_connector_messages_total{outcome="acked"}' in text
    assert 'keeper_connector_messages_undecryptable_total{' not in text


async def test_kill_9_mid_conversation_and_between_decrypt_and_ack_loses_nothing(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any, tap: Tap) -> None:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    from keeper.gateway import ensure_local_pubsub

    phone, contact = "+40700000043", "+40700000044"
    first, _ = stack.start_connector("c-a", **wa_env(sim))
    account_id = await pair_by_code(stack, control, firestore_client, phone)
    await control.create_phone(contact)
    sent: list[str] = []

    async def conversation(n: int, label: str) -> None:
        for i in range(n):
            sent.append(await send(control, contact, phone, f"{label} {i}"))
            sent.append(await send(control, phone, contact, f"{label} mine {i}"))  # our own device's copy

    await conversation(3, "before")
    await until(lambda: set(sent) <= set(stored(firestore_client, account_id)), what="first messages stored")
    await until(lambda: no_pending(control, phone), what="first messages confirmed")

    # 1. kill -9 mid-conversation, and the contact goes on writing while no connector runs.
    kill_hard(first)
    await conversation(3, "offline")
    second, _ = stack.start_connector("c-b", **wa_env(sim))
    await until(lambda: set(sent) <= set(stored(firestore_client, account_id)), timeout_s=90,
                what="messages sent while no connector ran stored after the restore")
    await until(lambda: no_pending(control, phone), what="offline messages confirmed")

    # 2. Between decrypt and ack: snapshots cannot reach Pub/Sub (their topic is gone), so the messages
    # are published and stored but never acknowledged; then kill -9.
    publisher = pubsub_v1.PublisherClient()
    publisher.delete_topic(request={"topic": f"projects/{stack.project}/topics/{stack.topics['snapshots']}"})
    window = len(sent)
    await conversation(2, "window")
    await until(lambda: set(sent) <= set(stored(firestore_client, account_id)), what="window messages stored")
    (device,) = await control.devices(phone)
    pending = {m["id"] for m in await control.pending_messages(phone, device["device"])}
    assert set(sent[window:]) <= pending  # published, not acknowledged: the snapshot is not durable
    kill_hard(second)
    ensure_local_pubsub(stack.project, stack.functions_base, topics=stack.topics, suffix=f"-{stack.suffix}")
    stack.start_connector("c-c", **wa_env(sim))
    await until(lambda: no_pending(control, phone), timeout_s=90, what="window messages redelivered and confirmed")

    # 3. The sessions go on.
    await conversation(3, "after")
    await until(lambda: set(sent) <= set(stored(firestore_client, account_id)), what="later messages stored")
    await until(lambda: no_pending(control, phone), what="later messages confirmed")
    docs = stored(firestore_client, account_id)
    assert [d for d in docs.values() if d.get("type") == "undecryptable"] == []
    assert len([i for i in docs if i in set(sent)]) == len(sent) == len(set(sent))  # each stored once
    received = [e for e in tap.pull() if e["type"] == "message.received"]
    assert {e["key"]["id"] for e in received} == set(sent)  # none lost; a redelivery may publish twice
    assert not [e for e in tap.events if e["type"] == "message.undecryptable"]


async def test_a_corrupted_ciphertext_gets_a_retry_receipt_then_is_published_undecryptable(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any, tap: Tap) -> None:
    phone, contact = "+40700000045", "+40700000046"
    _, port = stack.start_connector("c-bad", **wa_env(sim, KEEPER_RETRY_RESEND_WAIT_S="3"))
    account_id = await pair_by_code(stack, control, firestore_client, phone)
    await control.create_phone(contact)
    healthy = await send(control, contact, phone, "fine")
    await until(lambda: healthy in stored(firestore_client, account_id), what="first message stored")
    (device,) = await control.devices(phone)
    await control.fault("corrupt_ciphertext", phone=phone, device=device["device"], count=3)
    broken = [await send(control, contact, phone, f"lost in transit {i}") for i in range(3)]
    await until(lambda: set(broken) <= set(stored(firestore_client, account_id)), timeout_s=60,
                what="placeholders stored")
    docs = stored(firestore_client, account_id)
    assert all(docs[i]["type"] == "undecryptable" and docs[i].get("text") is None for i in broken)
    events = [e for e in tap.pull() if e["key"]["id"] in broken]
    assert sorted((e["type"], e["reason"], e["retries"]) for e in events) == [
        ("message.undecryptable", "bad_mac", 1)] * 3
    text = metrics(port)
    assert 'keeper_connector_retry_receipts_total{reason="bad_mac"} 3' in text
    assert 'keeper_connector_messages_undecryptable_total{reason="bad_mac"} 3' in text
    # Three in an hour: the account is alerted (the symptom of a bad restore).
    alerts = await until(lambda: [a.to_dict() for a in firestore_client.collection("alerts").stream()
                                  if (a.to_dict() or {}).get("accountId") == account_id
                                  and (a.to_dict() or {}).get("kind") == "messages_undecryptable"],
                         what="alert raised")
    assert alerts[0]["open"] is True
    # The session is not broken by it: the next message decrypts.
    after = await send(control, contact, phone, "and this one")
    await until(lambda: stored(firestore_client, account_id).get(after, {}).get("text") == "and this one",
                what="next message stored")
