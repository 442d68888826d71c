"""Sender keys: SKDM, skmsg both ways between Python parties, Baileys' odd iterations, limits, formats."""

from __future__ import annotations

import base64
import json

import pytest

from connector.protocol.signal import group
from connector.protocol.signal.errors import (
    BadMacError,
    DuplicateMessageError,
    NoSenderKeyError,
    TooFarAheadError,
)
from connector.protocol.signal.store import sender_key_id
from connector.protocol.signal.types import SignalAddress
from shared.authstate import SENDER_KEY, SENDER_KEY_MEMORY
from shared.bufferjson import dumps, revive
from testkit.protocol.seeded import SeededRandom

from .parties import make_party

GROUP = "120363000000000001@g.us"


def test_skdm_then_skmsg_and_state_moves() -> None:
    alice, bob = make_party("alice", SignalAddress("111", 0, 1)), make_party("bob")
    skmsg, skdm = alice.repo.group_encrypt(GROUP, alice.address, b"first")
    with pytest.raises(NoSenderKeyError):
        bob.repo.group_decrypt(GROUP, alice.address, skmsg)
    bob.repo.process_sender_key_distribution(GROUP, alice.address, skdm)
    assert bob.repo.group_decrypt(GROUP, alice.address, skmsg) == b"first"
    more = [alice.repo.group_encrypt(GROUP, alice.address, f"g{i}".encode()) for i in range(5)]
    assert all(m[1] != skdm for m in more)  # the SKDM carries the chain as it stands
    for i in (4, 1, 0, 3, 2):
        assert bob.repo.group_decrypt(GROUP, alice.address, more[i][0]) == f"g{i}".encode()
    with pytest.raises(DuplicateMessageError):
        bob.repo.group_decrypt(GROUP, alice.address, more[2][0])
    # A late SKDM repeating the key does not rewind the chain.
    bob.repo.process_sender_key_distribution(GROUP, alice.address, skdm)
    with pytest.raises(DuplicateMessageError):
        bob.repo.group_decrypt(GROUP, alice.address, skmsg)
    # Stored under Baileys' name for the sender: group::user_domain::device
    key = sender_key_id(GROUP, alice.address)
    assert key == f"{GROUP}::111_1::0"
    assert isinstance(bob.store.get_keys(SENDER_KEY, [key])[key], bytes)


def test_bad_signature_and_far_ahead_change_nothing() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    skmsg, skdm = alice.repo.group_encrypt(GROUP, alice.address, b"x")
    bob.repo.process_sender_key_distribution(GROUP, alice.address, skdm)
    before = bob.store.snapshot()
    with pytest.raises(BadMacError):
        bob.repo.group_decrypt(GROUP, alice.address, skmsg[:-1] + bytes([skmsg[-1] ^ 1]))
    with pytest.raises(BadMacError):  # a changed ciphertext breaks the signature
        bob.repo.group_decrypt(GROUP, alice.address, skmsg[:-70] + bytes([skmsg[-70] ^ 1]) + skmsg[-69:])
    assert bob.store.snapshot() == before
    for _ in range(2001):
        alice.repo.group_encrypt(GROUP, alice.address, b"skip")
    far, _ = alice.repo.group_encrypt(GROUP, alice.address, b"far")
    with pytest.raises(TooFarAheadError):
        bob.repo.group_decrypt(GROUP, alice.address, far)
    assert bob.store.snapshot() == before


def test_baileys_odd_iterations_and_2000_skipped_keys_kept() -> None:
    rand = SeededRandom("odd")
    state = group.create_own_state(rand)
    record = group.SenderKeyRecord()
    record.add(group.state_from_distribution(group.distribution_message(state)))
    # Baileys' encrypt: iteration 0, then chain+1 (2, 4, ...), skipping every other key.
    sent = []
    for n in range(2100):
        iteration = 0 if state.iteration == 0 else state.iteration + 1
        state.message_seed(iteration - 1) if iteration else None  # what Baileys stores as skipped
        sent.append((n, _encrypt_at(state, iteration, f"m{n}".encode(), rand)))
    for n, data in sent:
        assert group.decrypt(record, data) == f"m{n}".encode()
    receiving = record.state()
    assert receiving is not None
    assert len(receiving.skipped) <= group.MAX_SKIPPED_KEYS
    assert receiving.iteration == 2 * 2099 + 1


def _encrypt_at(state: group.SenderKeyState, iteration: int, plaintext: bytes, rand: SeededRandom) -> bytes:
    assert state.iteration == iteration
    return group.encrypt(state, plaintext, rand)


def test_five_states_kept() -> None:
    rand = SeededRandom("states")
    record = group.SenderKeyRecord()
    states = [group.create_own_state(rand) for _ in range(7)]
    for state in states:
        record.add(group.state_from_distribution(group.distribution_message(state)))
    assert [s.key_id for s in record.states] == [s.key_id for s in states[2:]]
    with pytest.raises(NoSenderKeyError):
        group.decrypt(record, group.encrypt(states[0], b"old", rand))
    assert group.decrypt(record, group.encrypt(states[3], b"kept", rand)) == b"kept"


def test_7x_format_is_buffer_json_text_and_round_trips() -> None:
    rand = SeededRandom("fmt")
    own = group.create_own_state(rand)
    other = group.state_from_distribution(group.distribution_message(own))
    other.message_seed(3)
    record = group.SenderKeyRecord([other])
    stored = record.to_store()
    parsed = json.loads(stored)
    assert list(parsed[0]) == ["senderKeyId", "senderChainKey", "senderSigningKey", "senderMessageKeys"]
    assert parsed[0]["senderChainKey"]["seed"]["type"] == "Buffer"
    assert isinstance(parsed[0]["senderChainKey"]["seed"]["data"], str)  # base64: Baileys revives only that
    assert parsed[0]["senderSigningKey"]["private"] == {"type": "Buffer", "data": ""}
    assert [k["iteration"] for k in parsed[0]["senderMessageKeys"]] == [0, 1, 2]
    assert group.SenderKeyRecord.from_store(stored) == record
    assert group.SenderKeyRecord.from_store(stored).to_store() == stored
    # What Node itself writes (ints) reads the same.
    as_node = json.dumps(json.loads(stored, object_hook=lambda o: {**o, "data": list(base64.b64decode(o["data"]))}
                                    if o.get("type") == "Buffer" else o), separators=(",", ":")).encode()
    assert b'"data":[' in as_node
    assert group.SenderKeyRecord.from_store(as_node) == record


def test_6x_format_list_of_states_is_read_and_written_back_as_7x() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    skmsg1, skdm = alice.repo.group_encrypt(GROUP, alice.address, b"one")
    skmsg2, _ = alice.repo.group_encrypt(GROUP, alice.address, b"two")
    bob.repo.process_sender_key_distribution(GROUP, alice.address, skdm)
    key = sender_key_id(GROUP, alice.address)
    seven = bob.store.get_keys(SENDER_KEY, [key])[key]
    assert isinstance(seven, bytes)
    # A 6.x file: the state list itself, written with BufferJSON (base64 Buffer objects).
    six_text = dumps(revive(seven))
    assert '"data":"' in six_text
    bob.store.set_keys({SENDER_KEY: {key: revive(six_text)}})
    assert isinstance(bob.store.get_keys(SENDER_KEY, [key])[key], list)
    assert bob.repo.group_decrypt(GROUP, alice.address, skmsg2) == b"two"
    assert isinstance(bob.store.get_keys(SENDER_KEY, [key])[key], bytes)
    assert bob.repo.group_decrypt(GROUP, alice.address, skmsg1) == b"one"


def test_sender_key_memory() -> None:
    alice = make_party("alice")
    assert alice.repo.sender_key_devices(GROUP) == frozenset()
    alice.repo.mark_sender_key_devices(GROUP, ["1@s.whatsapp.net", "2:3@s.whatsapp.net"])
    alice.repo.mark_sender_key_devices(GROUP, ["9@lid"])
    assert alice.repo.sender_key_devices(GROUP) == {"1@s.whatsapp.net", "2:3@s.whatsapp.net", "9@lid"}
    assert alice.store.get_keys(SENDER_KEY_MEMORY, [GROUP])[GROUP] == {
        "1@s.whatsapp.net": True, "2:3@s.whatsapp.net": True, "9@lid": True}
    alice.repo.clear_sender_key_memory(GROUP)
    assert alice.repo.sender_key_devices(GROUP) == frozenset()
    assert alice.store.get_keys(SENDER_KEY_MEMORY, [GROUP]) == {}


def test_parsed_records_are_reused_only_while_the_store_holds_their_bytes() -> None:
    rand = SeededRandom("cache")
    alice, bob = make_party("alice"), make_party("bob")
    state = group.create_own_state(rand)
    bob.repo.process_sender_key_distribution(GROUP, alice.address, group.distribution_message(state))
    sent = []
    for n in range(60):  # Baileys-style: the receiver keeps every other key
        iteration = 0 if state.iteration == 0 else state.iteration + 1
        if iteration:
            state.message_seed(iteration - 1)
        sent.append(group.encrypt(state, f"m{n}".encode(), rand))
    for n in range(0, 40):
        assert bob.repo.group_decrypt(GROUP, alice.address, sent[n]) == f"m{n}".encode()
    key = sender_key_id(GROUP, alice.address)
    stored = bob.store.get_keys(SENDER_KEY, [key])[key]
    assert isinstance(stored, bytes)
    # What the cache-backed calls wrote is what a fresh parse reads: a new repository goes on from it.
    fresh = make_party("bob-again", state=bob.store.snapshot())
    assert fresh.repo.group_decrypt(GROUP, alice.address, sent[40]) == b"m40"
    # Another writer replaces the record (here: the state as it was after message 40): the cache
    # must not be used, the stored record is.
    bob.store.set_keys({SENDER_KEY: {key: fresh.store.get_keys(SENDER_KEY, [key])[key]}})
    with pytest.raises(DuplicateMessageError):
        bob.repo.group_decrypt(GROUP, alice.address, sent[40])
    for n in range(41, 60):
        assert bob.repo.group_decrypt(GROUP, alice.address, sent[n]) == f"m{n}".encode()
