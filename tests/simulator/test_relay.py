"""The relay's rules at the stanza level, with scripted companions on real sockets: usync device
lists, bundles by LID and for the phone itself, fan-out and server acks, error acks, the offline
queue, receipts routed to the sender, and every stanza fault."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from connector.protocol.binary import Node
from simulator.companion import ScriptedCompanion
from simulator.testing import ControlClient, ControlError, SimulatorHandle, running_simulator
from tests.simulator.support import paired_and_logged_in

pytestmark = pytest.mark.integration

ALICE, BOB = "+40700000001", "+40700000002"
A_JID, B_JID = "40700000001@s.whatsapp.net", "40700000002@s.whatsapp.net"
B_DEVICE = "40700000002:1@s.whatsapp.net"


@dataclass
class World:
    sim: SimulatorHandle
    control: ControlClient
    alice: ScriptedCompanion
    bob: ScriptedCompanion
    alice_lid: str
    bob_lid: str


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with running_simulator() as sim, sim.control() as control:
        alice_phone = await control.create_phone(ALICE)
        bob_phone = await control.create_phone(BOB)
        alice = await paired_and_logged_in(sim, control, ALICE)
        bob = await paired_and_logged_in(sim, control, BOB)
        try:
            yield World(sim, control, alice, bob, alice_phone["lid"], bob_phone["lid"])
        finally:
            await alice.close()
            await bob.close()


def direct(message_id: str, payload: bytes, to: str = B_JID, device: str = B_DEVICE) -> Node:
    enc = Node("enc", {"v": "2", "type": "msg"}, payload)
    participants = Node("participants", {}, [Node("to", {"jid": device}, [enc])])
    return Node("message", {"id": message_id, "to": to, "type": "text"}, [participants])


def message_with(message_id: str) -> Callable[[Node], bool]:
    return lambda n: n.tag == "message" and n.attrs.get("id") == message_id


def ack_of(message_id: str) -> Callable[[Node], bool]:
    return lambda n: n.tag == "ack" and n.attrs.get("id") == message_id


async def settled(companion: ScriptedCompanion) -> None:
    """Every stanza sent before this has been handled by the server (a ping is answered in order)."""
    await companion.iq("w:p", "get", [Node("ping")])


async def test_usync_lists_every_device_by_pn_and_by_lid(world: World) -> None:
    query = Node("query", {}, [Node("devices", {"version": "2"}), Node("lid")])
    users = Node("list", {}, [Node("user", {"jid": B_JID}), Node("user", {"jid": world.bob_lid})])
    usync = Node("usync", {"sid": "s1", "mode": "query", "context": "message", "last": "true", "index": "0"},
                 [query, users])
    answer = await world.alice.iq("usync", "get", [usync])
    by_pn, by_lid = answer.child("usync", "list").children("user")  # type: ignore[union-attr]
    assert by_pn.attrs["jid"] == B_JID and by_lid.attrs["jid"] == world.bob_lid
    for user in (by_pn, by_lid):
        devices = user.child("devices", "device-list").children("device")  # type: ignore[union-attr]
        assert [d.attrs for d in devices] == [{"id": "0"}, {"id": "1", "key-index": "1"}]
    assert by_pn.child("lid").attrs == {"val": world.bob_lid}  # type: ignore[union-attr]
    assert by_lid.child("lid").attrs == {}  # type: ignore[union-attr]


async def test_bundles_by_lid_for_the_phone_and_a_companion_consume_one_time_pre_keys(world: World) -> None:
    await world.bob.upload_pre_keys(3)
    lid_user = world.bob_lid.split("@")[0]
    key = Node("key", {}, [Node("user", {"jid": world.bob_lid}), Node("user", {"jid": f"{lid_user}:1@lid"}),
                           Node("user", {"jid": "40799999999@s.whatsapp.net"})])
    answer = await world.alice.iq("encrypt", "get", [key])
    phone, companion, unknown = answer.child("list").children("user")  # type: ignore[union-attr]
    for bundle in (phone, companion):
        assert [c.tag for c in bundle.children()] == ["registration", "type", "identity", "key", "skey"]
        assert len(bundle.child_bytes("skey", "signature") or b"") == 64
    assert phone.attrs["jid"] == world.bob_lid
    assert unknown.child("error").attrs["code"] == "404"  # type: ignore[union-attr]
    assert (await world.control.device(BOB, 1))["preKeyCount"] == 2


async def test_a_message_goes_to_the_named_device_and_the_sender_gets_the_server_ack(world: World) -> None:
    payload = os.urandom(48)
    await world.alice.send(direct("3EB0A1", payload))
    got = await world.bob.wait_for(message_with("3EB0A1"))
    assert got.attrs["from"] == "40700000001:1@s.whatsapp.net"
    assert got.attrs["sender_lid"] == world.alice_lid
    assert got.children("enc")[0].content == payload
    ack = await world.alice.wait_for(ack_of("3EB0A1"))
    assert ack.attrs["class"] == "message" and ack.attrs["from"] == B_JID and "error" not in ack.attrs
    assert int(ack.attrs["t"]) > 0

    # the receipt confirms it in Bob's queue and reaches Alice's device as from=<account>
    assert [m["id"] for m in await world.control.pending_messages(BOB, 1)] == ["3EB0A1"]
    await world.bob.send(Node("receipt", {"id": "3EB0A1", "to": "40700000001:1@s.whatsapp.net", "type": "read"}))
    receipt = await world.alice.wait_for(lambda n: n.tag == "receipt")
    assert receipt.attrs["from"] == B_JID and receipt.attrs["participant"] == B_DEVICE
    assert receipt.attrs["type"] == "read"
    assert await world.control.pending_messages(BOB, 1) == []


async def test_stanzas_the_server_cannot_route_get_error_acks(world: World) -> None:
    await world.alice.send(direct("3EB0E1", b"x", to="40799999999@s.whatsapp.net"))
    assert (await world.alice.wait_for(ack_of("3EB0E1"))).attrs["error"] == "404"
    await world.alice.send(Node("message", {"id": "3EB0E2", "type": "text"}))
    assert (await world.alice.wait_for(ack_of("3EB0E2"))).attrs["error"] == "400"
    group = await world.control.request("POST", "/v1/groups", {"creator": BOB, "subject": "b only"})
    await world.alice.send(Node("message", {"id": "3EB0E3", "to": group["id"], "type": "text"},
                                [Node("enc", {"v": "2", "type": "skmsg"}, b"k")]))
    assert (await world.alice.wait_for(ack_of("3EB0E3"))).attrs["error"] == "403"


async def test_a_group_message_reaches_every_member_device_with_a_phash_in_the_ack(world: World) -> None:
    group = await world.control.request("POST", "/v1/groups", {"creator": ALICE, "subject": "g",
                                                               "participants": [BOB]})
    skmsg = Node("enc", {"v": "2", "type": "skmsg"}, b"sender-key-ciphertext")
    await world.alice.send(Node("message", {"id": "3EB0G1", "to": group["id"], "type": "text"}, [skmsg]))
    got = await world.bob.wait_for(message_with("3EB0G1"))
    assert got.attrs["from"] == group["id"] and got.attrs["participant"].endswith(":1@lid")
    assert got.attrs["participant_pn"] == A_JID and got.attrs["addressing_mode"] == "lid"
    assert [c.content for c in got.children("enc")] == [b"sender-key-ciphertext"]
    assert (await world.alice.wait_for(ack_of("3EB0G1"))).attrs["phash"].startswith("2:")
    # Bob's phone (device 0) got it too (and Alice's own); it cannot decrypt this made-up ciphertext,
    # lists it as such and asks Alice's device for a resend
    retry = await world.alice.wait_for(lambda n: n.tag == "receipt" and n.attrs.get("type") == "retry"
                                       and n.attrs.get("participant") == world.bob_lid)
    assert retry.attrs["from"] == group["id"]
    assert retry.child("retry").attrs["count"] == "1"  # type: ignore[union-attr]
    listed = (await world.control.request("GET", f"/v1/phones/{BOB}/messages"))["messages"]
    assert [(m["id"], m["undecryptable"]) for m in listed] == [("3EB0G1", "NoSenderKeyError")]


async def test_drop_stanza_loses_it_in_transit_and_the_next_login_brings_it(world: World) -> None:
    await world.control.fault("drop_stanza", phone=BOB, device=1)
    await world.alice.send(direct("3EB0D1", b"one"))
    await world.alice.send(direct("3EB0D2", b"two"))
    assert (await world.bob.wait_for(lambda n: n.tag == "message")).attrs["id"] == "3EB0D2"
    await world.bob.close()
    assert (await world.bob.connect_and_login()).tag == "success"
    again = await world.bob.wait_for(message_with("3EB0D1"))
    assert again.attrs["offline"] == "1"


async def test_delay_stanza_sends_it_later(world: World) -> None:
    await world.control.fault("delay_stanza", phone=BOB, device=1, seconds=0.5)
    await world.alice.send(direct("3EB0L1", b"late"))
    await world.alice.wait_for(ack_of("3EB0L1"))
    with pytest.raises(TimeoutError):
        await world.bob.wait_for(message_with("3EB0L1"), timeout=0.2)
    assert (await world.bob.wait_for(message_with("3EB0L1"), timeout=5)).children("enc")[0].content == b"late"


async def test_duplicate_stanza_sends_it_twice(world: World) -> None:
    await world.control.fault("duplicate_stanza", phone=BOB, device=1)
    await world.alice.send(direct("3EB0U1", b"twice"))
    await world.bob.wait_for(message_with("3EB0U1"))
    await world.bob.wait_for(message_with("3EB0U1"))
    await world.alice.send(direct("3EB0U2", b"once"))  # count 1: spent
    await world.bob.wait_for(message_with("3EB0U2"))
    await settled(world.bob)
    assert not [n for n in world.bob.inbox if n.tag == "message"]


async def test_reorder_stanza_holds_it_until_the_next_one_went(world: World) -> None:
    await world.control.fault("reorder_stanza", phone=BOB, device=1)
    await world.alice.send(direct("3EB0R1", b"first"))
    await world.alice.send(direct("3EB0R2", b"second"))
    first = await world.bob.wait_for(lambda n: n.tag == "message")
    second = await world.bob.wait_for(lambda n: n.tag == "message")
    assert [first.attrs["id"], second.attrs["id"]] == ["3EB0R2", "3EB0R1"]


async def test_corrupt_ciphertext_flips_a_byte_of_each_enc(world: World) -> None:
    await world.control.fault("corrupt_ciphertext", phone=BOB, device=1)
    payload = bytes(32)
    await world.alice.send(direct("3EB0C1", payload))
    got = (await world.bob.wait_for(message_with("3EB0C1"))).children("enc")[0].content
    assert isinstance(got, bytes) and len(got) == len(payload) and got != payload
    assert sum(a != b for a, b in zip(got, payload, strict=True)) == 1


async def test_stanza_fault_bodies_are_checked(world: World) -> None:
    for body in ({"kind": "delay_stanza", "phone": BOB}, {"kind": "drop", "count": 2},
                 {"kind": "drop_stanza", "count": 0}, {"kind": "corrupt_ciphertext", "stanza": "receipt"}):
        with pytest.raises(ControlError) as error:
            await world.control.request("POST", "/v1/faults", body)
        assert error.value.status == 400
    listed = await world.control.fault("drop_stanza", phone=BOB, count=2, stanza="receipt")
    assert listed["fault"]["count"] == 2 and listed["fault"]["stanza"] == "receipt"
    await asyncio.sleep(0)


async def test_the_offline_queue_survives_a_simulator_restart(tmp_path: Path) -> None:
    async with running_simulator(state_dir=tmp_path) as sim, sim.control() as control:
        await control.create_phone(ALICE)
        await control.create_phone(BOB)
        alice = await paired_and_logged_in(sim, control, ALICE)
        bob = await paired_and_logged_in(sim, control, BOB)
        await bob.close()
        await alice.send(direct("3EB0P1", b"kept"))
        await alice.wait_for(ack_of("3EB0P1"))
        await alice.close()
        creds = bob.creds
    async with running_simulator(state_dir=tmp_path) as sim:
        bob = ScriptedCompanion(sim.ws_url, sim.root_public_key, creds)
        assert (await bob.connect_and_login()).tag == "success"
        got = await bob.wait_for(message_with("3EB0P1"))
        assert got.children("enc")[0].content == b"kept" and got.attrs["offline"] == "1"
        await bob.close()


async def group_iq(companion: ScriptedCompanion, to: str, kind: str, content: list[Node]) -> Node:
    attrs = {"id": "g." + os.urandom(4).hex(), "xmlns": "w:g2", "type": kind, "to": to}
    await companion.send(Node("iq", attrs, content))
    return await companion.wait_for(lambda n: n.tag == "iq" and n.attrs.get("id") == attrs["id"])


async def test_groups_through_w_g2_create_list_change_and_refuse_outsiders(world: World) -> None:
    created = await group_iq(world.alice, "@g.us", "set", [
        Node("create", {"subject": "made by iq", "key": "k"}, [Node("participant", {"jid": B_JID})])])
    group = created.child("group")
    assert group is not None and group.attrs["subject"] == "made by iq" and group.attrs["addressing_mode"] == "lid"
    members = {p.attrs["phone_number"]: p.attrs.get("type") for p in group.children("participant")}
    assert members == {A_JID: "superadmin", B_JID: None}
    group_jid = group.attrs["id"] + "@g.us"

    listed = await group_iq(world.bob, "@g.us", "get", [Node("participating")])
    assert [g.attrs["id"] for g in listed.child("groups").children("group")] == [group.attrs["id"]]  # type: ignore[union-attr]

    changed = await group_iq(world.alice, group_jid, "set", [Node("remove", {}, [
        Node("participant", {"jid": B_JID}), Node("participant", {"jid": "40799999999@s.whatsapp.net"})])])
    results = {p.attrs["jid"]: p.attrs.get("error") for p in changed.child("remove").children("participant")}  # type: ignore[union-attr]
    assert results == {B_JID: None, "40799999999@s.whatsapp.net": "404"}

    refused = await group_iq(world.bob, group_jid, "get", [Node("query", {"request": "interactive"})])
    assert refused.attrs["type"] == "error" and refused.child("error").attrs["code"] == "403"  # type: ignore[union-attr]
    unknown = await group_iq(world.bob, "120363999999999999@g.us", "get", [Node("query")])
    assert unknown.child("error").attrs["code"] == "404"  # type: ignore[union-attr]
    view = await world.control.request("GET", f"/v1/groups/{group_jid}")
    assert [p["phone"] for p in view["participants"]] == [ALICE]
