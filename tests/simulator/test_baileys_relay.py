"""Two real Baileys 7 clients (npm ``baileys7``) pair with the simulator and message each other through
it: 1:1 both ways with read receipts back to the sender, a group made over ``w:g2`` with messages
both ways, the offline queue across a reconnect, and a corrupted ciphertext healed by the client's
retry receipt. The relay is proven with a real client, independent of keeper's own engine. Last, a
simulated phone (its own Signal party on keeper's Signal layer) and a Baileys client message each
other both ways, 1:1 and in a group."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.testing import ControlClient, SimulatorHandle, running_simulator
from tests.simulator.baileys_peer import EVENT_TIMEOUT_S, BaileysClient

pytestmark = pytest.mark.integration

ALICE, BOB = "+40700000001", "+40700000002"
ALICE_JID, BOB_JID = "40700000001@s.whatsapp.net", "40700000002@s.whatsapp.net"
STATUS_READ = 4  # proto.WebMessageInfo.Status.READ


@pytest.fixture
async def sim() -> AsyncIterator[tuple[SimulatorHandle, ControlClient]]:
    async with running_simulator() as handle, handle.control() as control:
        await control.create_phone(ALICE, pushName="Alice")
        await control.create_phone(BOB, pushName="Bob")
        yield handle, control


async def pair_two(
    sim: tuple[SimulatorHandle, ControlClient], tmp_path: Path
) -> tuple[BaileysClient, BaileysClient]:
    handle, control = sim
    alice = await BaileysClient.paired(handle, control, ALICE, tmp_path / "alice")
    try:
        bob = await BaileysClient.paired(handle, control, BOB, tmp_path / "bob")
    except BaseException:
        await alice.stop()
        raise
    return alice, bob


async def test_two_baileys_clients_exchange_direct_messages_and_read_receipts(
    sim: tuple[SimulatorHandle, ControlClient], tmp_path: Path
) -> None:
    alice, bob = await pair_two(sim, tmp_path)
    try:
        sent_id = await alice.send(BOB_JID, "hello bob")
        got = await bob.received("hello bob")
        assert got["key"]["id"] == sent_id
        assert got["key"]["remoteJid"] == ALICE_JID
        assert got["key"]["remoteJidAlt"].endswith("@lid")  # sender_lid: Bob learns Alice's LID

        await bob.command("read", keys=[got["key"]])
        read = await alice.wait_for(lambda e: e["event"] == "update" and e["key"]["id"] == sent_id
                                    and e["status"] == STATUS_READ)
        assert read["key"]["remoteJid"].startswith("40700000002")

        await bob.send(ALICE_JID, "hello alice")
        assert (await alice.received("hello alice"))["key"]["remoteJid"] == BOB_JID
        for _ in range(3):  # sessions established: msg, not pkmsg, from here on
            await alice.send(BOB_JID, f"again {_}")
            await bob.received(f"again {_}")
        _, control = sim
        assert await control.pending_messages(BOB, 1) == []
    finally:
        await alice.stop()
        await bob.stop()


async def test_two_baileys_clients_message_each_other_in_a_group(
    sim: tuple[SimulatorHandle, ControlClient], tmp_path: Path
) -> None:
    alice, bob = await pair_two(sim, tmp_path)
    try:
        created = (await alice.command("group_create", subject="team", participants=[BOB_JID]))["group"]
        assert created["addressingMode"] == "lid"
        assert {p["phoneNumber"] for p in created["participants"]} == {ALICE_JID, BOB_JID}
        group = created["id"]
        # the server told Bob's device about the new group (w:gp2 create)
        assert (await bob.wait_for(lambda e: e["event"] == "group" and e["id"] == group))["subject"] == "team"

        await alice.send(group, "hi team")
        got = await bob.received("hi team")
        assert got["key"]["remoteJid"] == group
        assert got["key"]["participantAlt"] == ALICE_JID

        await bob.send(group, "hi alice")
        back = await alice.received("hi alice")
        assert back["key"]["participantAlt"] == BOB_JID
        await alice.send(group, "second")  # sender key already distributed: skmsg only
        await bob.received("second")

        # Alice removes Bob over w:g2: he is told, and what she sends next no longer reaches him
        removed = await alice.command("group_participants", jid=group, participants=[BOB_JID], action="remove")
        assert [r["status"] for r in removed["results"]] == ["200"]
        await bob.wait_for(lambda e: e["event"] == "group_participants" and e["action"] == "remove")
        await alice.send(group, "after you left")
        await alice.send(BOB_JID, "direct still works")
        await bob.received("direct still works")
        assert not [e for e in bob.events if e["event"] == "message" and e["text"] == "after you left"]

        _, control = sim
        assert [p["phone"] for p in (await control.request("GET", f"/v1/groups/{group}"))["participants"]] == [ALICE]
    finally:
        await alice.stop()
        await bob.stop()


async def test_a_message_for_an_offline_baileys_client_waits_and_comes_after_it_reconnects(
    sim: tuple[SimulatorHandle, ControlClient], tmp_path: Path
) -> None:
    handle, control = sim
    alice, bob = await pair_two(sim, tmp_path)
    try:
        await bob.stop()
        sent_id = await alice.send(BOB_JID, "while you were away")
        assert [m["id"] for m in await control.pending_messages(BOB, 1)] == [sent_id]

        bob = await BaileysClient.start(handle, tmp_path / "bob")
        got = await bob.received("while you were away")
        assert got["key"]["id"] == sent_id
        await bob.send(ALICE_JID, "back")  # the receipt went before this
        await alice.received("back")
        assert await control.pending_messages(BOB, 1) == []
    finally:
        await alice.stop()
        await bob.stop()


async def test_a_corrupted_ciphertext_is_healed_by_the_clients_retry_receipt(
    sim: tuple[SimulatorHandle, ControlClient], tmp_path: Path
) -> None:
    _, control = sim
    alice, bob = await pair_two(sim, tmp_path)
    try:
        await alice.send(BOB_JID, "first")
        await bob.received("first")
        await control.fault("corrupt_ciphertext", phone=BOB, device=1)
        sent_id = await alice.send(BOB_JID, "survives corruption")
        # Bob fails to decrypt, sends a retry receipt; the simulator routes it to Alice's device,
        # which re-encrypts for Bob alone.
        got = await bob.received("survives corruption")
        assert got["key"]["id"] == sent_id
        failed = [e for e in bob.events if e["event"] == "message" and e["key"]["id"] == sent_id and e["stub"]]
        assert failed, "Bob should have seen the corrupted copy fail first"
        assert await control.request("GET", "/v1/faults") == {"faults": []}  # spent
    finally:
        await alice.stop()
        await bob.stop()


async def test_a_simulated_phone_and_a_baileys_client_message_each_other_both_ways(
    sim: tuple[SimulatorHandle, ControlClient], tmp_path: Path
) -> None:
    handle, control = sim
    alice = await BaileysClient.paired(handle, control, ALICE, tmp_path / "alice")
    try:
        # Baileys -> Bob's phone (no companion: the phone itself decrypts)
        sent_id = await alice.send(BOB_JID, "hello phone")
        inbox = await phone_inbox(control, BOB, lambda m: m["id"] == sent_id and m["text"] is not None)
        assert inbox["chat"] == ALICE_JID and not inbox["fromMe"]
        assert (await alice.wait_for(lambda e: e["event"] == "update" and e["key"]["id"] == sent_id))["status"] >= 3

        # the phone -> Baileys, then the phone reads what it got: Alice sees the read receipt
        reply = await control.request("POST", f"/v1/phones/{BOB}/messages", {"to": ALICE, "text": "hello baileys"})
        got = await alice.received("hello baileys")
        assert got["key"]["id"] == reply["id"] and got["key"]["remoteJid"] == BOB_JID
        assert (await control.request("POST", f"/v1/phones/{BOB}/messages/read", {"ids": [sent_id]})) == {"read": 1}
        await alice.wait_for(lambda e: e["event"] == "update" and e["key"]["id"] == sent_id
                             and e["status"] == STATUS_READ)
        await phone_inbox(control, BOB, lambda m: m["id"] == reply["id"] and m.get("status") == "delivered")

        # a group made through the control API, both ways
        group = await control.request("POST", "/v1/groups", {"creator": BOB, "subject": "family",
                                                              "participants": [ALICE]})
        assert (await alice.wait_for(lambda e: e["event"] == "group" and e["id"] == group["id"]))["subject"] == "family"
        await control.request("POST", f"/v1/phones/{BOB}/messages", {"to": group["id"], "text": "from the phone"})
        assert (await alice.received("from the phone"))["key"]["participantAlt"] == BOB_JID
        group_id = await alice.send(group["id"], "from baileys")
        entry = await phone_inbox(control, BOB, lambda m: m["id"] == group_id and m["text"] is not None)
        assert entry["chat"] == group["id"] and entry["text"] == "from baileys"

        # Alice's own phone saw her companion's messages as its own (deviceSentMessage)
        own = await phone_inbox(control, ALICE, lambda m: m["id"] == sent_id)
        assert own["fromMe"] and own["chat"] == BOB_JID and own["text"] == "hello phone"
    finally:
        await alice.stop()


async def phone_inbox(control: ControlClient, phone: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first message in the phone's list that ``match`` accepts, polling until it is there."""
    async with asyncio.timeout(EVENT_TIMEOUT_S):
        while True:
            for message in (await control.request("GET", f"/v1/phones/{phone}/messages"))["messages"]:
                if match(message):
                    return dict(message)
            await asyncio.sleep(0.05)


async def test_a_phone_that_cannot_decrypt_asks_for_a_resend_with_a_retry_receipt(
    sim: tuple[SimulatorHandle, ControlClient], tmp_path: Path
) -> None:
    handle, control = sim
    alice = await BaileysClient.paired(handle, control, ALICE, tmp_path / "alice")
    try:
        await alice.send(BOB_JID, "first")
        await phone_inbox(control, BOB, lambda m: m["text"] == "first")
        await control.fault("corrupt_ciphertext", phone=BOB, device=0)
        sent_id = await alice.send(BOB_JID, "second")
        entry = await phone_inbox(control, BOB, lambda m: m["id"] == sent_id and m["text"] is not None)
        assert entry["text"] == "second" and "undecryptable" not in entry
        # the corrupted copy did reach the phone: what it listed is the resend its retry receipt asked for
        assert await control.request("GET", "/v1/faults") == {"faults": []}
        assert await control.pending_messages(BOB, 0) == []
    finally:
        await alice.stop()


async def test_a_phone_reads_a_duplicated_message_once(
    sim: tuple[SimulatorHandle, ControlClient], tmp_path: Path
) -> None:
    handle, control = sim
    alice = await BaileysClient.paired(handle, control, ALICE, tmp_path / "alice")
    try:
        await control.fault("duplicate_stanza", phone=BOB, device=0)
        sent_id = await alice.send(BOB_JID, "only once")
        await phone_inbox(control, BOB, lambda m: m["id"] == sent_id and m["text"] == "only once")
        await alice.send(BOB_JID, "next")  # relayed after the duplicate: the phone is done with both
        await phone_inbox(control, BOB, lambda m: m["text"] == "next")
        listed = (await control.request("GET", f"/v1/phones/{BOB}/messages"))["messages"]
        assert [m["text"] for m in listed] == ["only once", "next"]
        assert await control.request("GET", "/v1/faults") == {"faults": []}
    finally:
        await alice.stop()
