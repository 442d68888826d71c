"""Sending on the real stack: emulators, the functions over HTTP, the simulator (its phones are Signal
parties that decrypt what they get) and ``python -m connector`` child processes.

``sendMessage`` -> outbox -> the connector's send path -> the simulator -> the contact's phone, which
decrypts it (``GET /v1/phones/{phone}/messages``) and answers with receipts; the status goes pending ->
sent -> delivered -> read in Firestore. Then the restart rules: a send accepted while no connector
runs goes out after the restore, and a send accepted just before a kill -9 reaches the phone once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.testing import ControlClient, SimulatorHandle, simulator_process
from testkit.connector_stack import Stack, kill_hard, start_stack
from tests.connector.test_simulator_integration import account, pair_by_code, until, wa_env

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


async def phone_messages(control: ControlClient, phone: str) -> list[dict[str, Any]]:
    return list((await control.request("GET", f"/v1/phones/{phone}/messages"))["messages"])


def stored(firestore_client: Any, account_id: str, message_id: str) -> dict[str, Any]:
    doc = firestore_client.collection("accounts").document(account_id).collection("messages").document(message_id)
    return doc.get().to_dict() or {}


def send(stack: Stack, account_id: str, to: str, text: str, **extra: Any) -> str:
    answer = stack.call("sendMessage", {"accountId": account_id, "to": to, "text": text, **extra})
    assert answer["status"] == "pending"
    return str(answer["messageId"])


async def received_by(control: ControlClient, phone: str, message_id: str) -> list[dict[str, Any]]:
    return [m for m in await phone_messages(control, phone) if m["id"] == message_id and not m["fromMe"]]


async def test_send_reaches_the_phone_decrypted_and_the_status_goes_sent_delivered_read(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    me, contact = "+40700000041", "+40700000042"
    stack.start_connector("c-send", **wa_env(sim))
    await control.create_phone(contact)
    account_id = await pair_by_code(stack, control, firestore_client, me)

    message_id = await asyncio.to_thread(send, stack, account_id, contact, "hello from keeper")
    [got] = await until(lambda: received_by(control, contact, message_id), 60, "message at the phone")
    assert got["text"] == "hello from keeper" and got.get("undecryptable") is None
    await until(lambda: stored(firestore_client, account_id, message_id).get("status") == "delivered", 30,
                "delivered in the store")
    await control.request("POST", f"/v1/phones/{contact}/messages/read", {"ids": [message_id]})
    await until(lambda: stored(firestore_client, account_id, message_id).get("status") == "read", 30,
                "read in the store")

    # A second message rides the same sessions; a reply quotes the first.
    reply_id = await asyncio.to_thread(send, stack, account_id, contact, "and a reply",
                                       replyTo=message_id)
    [reply] = await until(lambda: received_by(control, contact, reply_id), 60, "reply at the phone")
    assert reply["text"] == "and a reply"


async def test_sends_accepted_while_down_or_just_before_a_kill_9_arrive_once_after_the_restore(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    me, contact = "+40700000043", "+40700000044"
    first, _ = stack.start_connector("c-first", **wa_env(sim))
    await control.create_phone(contact)
    account_id = await pair_by_code(stack, control, firestore_client, me)
    warm = await asyncio.to_thread(send, stack, account_id, contact, "before")
    await until(lambda: received_by(control, contact, warm), 60, "first message at the phone")

    # Accepted, and the connector killed at once: it may or may not have gone out.
    racing = await asyncio.to_thread(send, stack, account_id, contact, "racing the kill")
    kill_hard(first)
    # Accepted while no connector runs.
    while_down = await asyncio.to_thread(send, stack, account_id, contact, "while down")
    await asyncio.sleep(2.0)
    assert await received_by(control, contact, while_down) == []

    stack.start_connector("c-second", **wa_env(sim))
    for message_id, text in ((racing, "racing the kill"), (while_down, "while down")):
        [got] = await until(lambda m=message_id: received_by(control, contact, m), 90, f"{text!r} at the phone")
        assert got["text"] == text
        await until(lambda m=message_id: stored(firestore_client, account_id, m).get("status")
                    in ("sent", "delivered", "read"), 30, f"{text!r} sent in the store")
    await asyncio.sleep(3.0)  # a second copy, if any, would have come by now
    texts = [m["text"] for m in await phone_messages(control, contact) if not m["fromMe"]]
    assert texts.count("racing the kill") == 1 and texts.count("while down") == 1
    assert account(firestore_client, account_id).get("status") == "connected"


async def test_group_send_and_a_reaction_reach_the_members(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    me, contact = "+40700000045", "+40700000046"
    stack.start_connector("c-group", **wa_env(sim))
    await control.create_phone(contact)
    account_id = await pair_by_code(stack, control, firestore_client, me)
    group = await control.request("POST", "/v1/groups", {"creator": contact, "subject": "team",
                                                         "participants": [me]})
    group_jid = group["id"]
    message_id = await asyncio.to_thread(send, stack, account_id, group_jid, "hello team")
    [got] = await until(lambda: received_by(control, contact, message_id), 60, "group message at the member")
    assert got["text"] == "hello team" and got["chat"] == group_jid
    await until(lambda: stored(firestore_client, account_id, message_id).get("status")
                in ("sent", "delivered", "read"), 30, "group message sent in the store")
    second = await asyncio.to_thread(send, stack, account_id, group_jid, "second, on the same sender key")
    [again] = await until(lambda: received_by(control, contact, second), 60, "second group message")
    assert again["text"] == "second, on the same sender key"

    # A reaction to a 1:1 message (the phone lists text only: the status in the store is the witness).
    first = await asyncio.to_thread(send, stack, account_id, contact, "react to me")
    await until(lambda: received_by(control, contact, first), 60, "1:1 message at the phone")
    answer = await asyncio.to_thread(stack.call, "sendMessage", {
        "accountId": account_id, "to": contact, "react": {"messageId": first, "emoji": "👍"}})
    await until(lambda: stored(firestore_client, account_id, answer["messageId"]).get("status")
                in ("sent", "delivered", "read"), 30, "reaction sent in the store")
