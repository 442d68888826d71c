"""Unit tests of the relay's pure parts: stanza faults in the book, queued stanzas and groups in the
state's JSON (and the first queue format), the corrupting of ciphertexts, the phone's keys."""

from __future__ import annotations

import json
import os

import pytest

from connector.protocol.binary import Node
from simulator import crypto, pairing
from simulator.core import SimulatorCore
from simulator.core.stanza_faults import corrupted
from simulator.errors import InvalidRequestError
from simulator.faults import Fault, FaultBook, FaultKind
from simulator.identity import new_server_identity
from simulator.state import Group, QueuedStanza, SimulatorState, node_from_json, node_to_json

NOW = 1_800_000_000.0


def new_core() -> SimulatorCore:
    state = SimulatorState(identity=new_server_identity(os.urandom, NOW))
    return SimulatorCore(state, clock=lambda: NOW, random_bytes=os.urandom)


def test_a_stanza_fault_acts_on_count_stanzas_of_its_kind_and_target_then_leaves_the_book() -> None:
    book = FaultBook()
    fault = Fault.from_json({"kind": "duplicate_stanza", "phone": "+40700000001", "device": 2, "count": 2})
    book.add(fault, NOW)
    assert book.take_stanza_fault("40700000001", 1, "message") is None  # another device
    assert book.take_stanza_fault("40700000001", 2, "receipt") is None  # another stanza kind
    assert book.take_stanza_fault("40700000001", 2, "message") is fault
    assert [f.fault.kind for f in book.active(NOW)] == [FaultKind.DUPLICATE_STANZA]
    assert book.take_stanza_fault("40700000001", 2, "message") is fault
    assert book.take_stanza_fault("40700000001", 2, "message") is None
    assert book.active(NOW) == []


def test_a_delay_fault_does_not_expire_after_its_delay() -> None:
    book = FaultBook()
    active = book.add(Fault.from_json({"kind": "delay_stanza", "seconds": 1}), NOW)
    assert active.expires_at is None
    assert book.active(NOW + 60) == [active]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "delay_stanza"},
        {"kind": "drop_stanza", "seconds": 1},
        {"kind": "reorder_stanza", "count": True},
        {"kind": "drop_stanza", "stanza": "iq"},
        {"kind": "stop_pings", "stanza": "message"},
    ],
)
def test_bad_stanza_fault_bodies_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(InvalidRequestError):
        Fault.from_json(body)


def test_corrupted_flips_one_byte_of_every_ciphertext_and_leaves_the_rest() -> None:
    enc = Node("enc", {"v": "2", "type": "msg"}, bytes(10))
    skmsg = Node("enc", {"v": "2", "type": "skmsg"}, bytes(4))
    identity = Node("device-identity", {}, bytes(6))
    node = Node("message", {"id": "1"}, [Node("participants", {}, [Node("to", {"jid": "x"}, [enc])]), skmsg, identity])
    out = corrupted(node)
    pairwise = out.child("participants", "to", "enc")
    assert pairwise is not None and isinstance(pairwise.content, bytes)
    assert sum(pairwise.content) != 0 and len(pairwise.content) == 10
    assert out.children("enc")[0].content != bytes(4)
    assert out.child("device-identity") == identity
    assert enc.content == bytes(10)  # the queued original is untouched


def test_queued_stanzas_round_trip_and_the_first_format_still_reads() -> None:
    node = Node("receipt", {"id": "A", "from": "1@s.whatsapp.net"}, [Node("list", {}, [Node("item", {"id": "B"})]),
                                                                    Node("registration", {}, b"\x00\x01")])
    assert node_from_json(json.loads(json.dumps(node_to_json(node)))) == node
    legacy = QueuedStanza.from_json(
        {"id": "3EB0", "from": "1@s.whatsapp.net", "t": 5, "type": "text", "encType": "pkmsg", "ciphertext": "AAE="}
    )
    assert legacy.klass == "message" and legacy.stanza_id == "3EB0"
    assert legacy.node.children("enc")[0].attrs == {"v": "2", "type": "pkmsg"}
    assert legacy.node.children("enc")[0].content == b"\x00\x01"


def test_the_state_keeps_groups_the_phones_keys_and_queues_and_finds_phones_by_lid() -> None:
    core = new_core()
    alice = core.create_phone("+40700000001")
    bob = core.create_phone("+40700000002")
    group, _ = core.create_group("+40700000001", "team", ["+40700000002"])
    assert alice.primary is not None
    alice.primary.pending.append(QueuedStanza(Node("message", {"id": "M"}, b"x")))
    text = json.dumps(core.state.to_json())
    loaded = SimulatorState.from_json(json.loads(text))
    assert loaded.to_json() == core.state.to_json()
    assert loaded.phone_by_jid_user(bob.lid_user, "lid") is loaded.phones[bob.user]
    assert loaded.phone_by_jid_user(bob.lid_user, "s.whatsapp.net") is None
    restored = loaded.groups[group.group_id]
    assert isinstance(restored, Group) and restored.participants == {alice.user: "superadmin", bob.user: ""}
    assert loaded.phones[alice.user].queue(0)[0].stanza_id == "M"


def test_the_phone_publishes_a_signed_pre_key_its_identity_signed_and_one_time_pre_keys() -> None:
    phone = new_core().create_phone("+40700000001")
    assert phone.primary is not None
    spk = phone.primary.signed_pre_key
    assert pairing.signed_pre_key_valid(phone.identity_public, spk.public, spk.signature)
    assert crypto.x25519_public(phone.primary.signed_pre_key_private) == spk.public
    assert len(phone.primary.pre_keys) == 30
    assert all(crypto.x25519_public(phone.primary.pre_key_privates[i]) == public
               for i, public in phone.primary.pre_keys.items())
    assert phone.device_ids() == [0]
