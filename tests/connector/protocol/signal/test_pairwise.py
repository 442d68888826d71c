"""Pairwise sessions between two Python parties: X3DH both ways, the ratchet, limits, failures."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.protocol.signal.errors import (
    BadMacError,
    DuplicateMessageError,
    InvalidMessageError,
    NoMatchingSessionError,
    NoSessionError,
    PreKeyError,
    TooFarAheadError,
    UntrustedIdentityError,
)
from connector.protocol.signal.session import MAX_SESSIONS, SessionRecord
from connector.protocol.signal.types import PreKeyBundle, SignalAddress
from shared.authstate import IDENTITY_KEY, PRE_KEY, SESSION

from .parties import make_party, pair


def test_pkmsg_then_msg_and_fifty_alternating() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    bundle = bob.bundle()
    assert bundle.pre_key_id is not None
    alice.repo.build_session(bob.address, bundle)
    assert alice.repo.has_session(bob.address)
    assert not bob.repo.has_session(alice.address)
    # Until Bob replies, every message Alice sends is a pkmsg.
    first = alice.repo.encrypt(bob.address, b"one")
    second = alice.repo.encrypt(bob.address, b"two")
    assert first[0] == second[0] == "pkmsg"
    assert bob.repo.decrypt(alice.address, *first) == b"one"
    assert str(bundle.pre_key_id) not in bob.pre_key_ids()  # the consumed pre-key is gone
    assert bob.repo.decrypt(alice.address, *second) == b"two"
    reply = bob.repo.encrypt(alice.address, b"three")
    assert reply[0] == "msg"
    assert alice.repo.decrypt(bob.address, *reply) == b"three"
    assert alice.repo.encrypt(bob.address, b"x")[0] == "msg"
    for i in range(50):
        sender, receiver = (alice, bob) if i % 2 else (bob, alice)
        text = f"message {i}".encode()
        kind, data = sender.repo.encrypt(receiver.address, text)
        assert kind == "msg"
        assert receiver.repo.decrypt(sender.address, kind, data) == text


def test_session_without_one_time_pre_key() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    alice.repo.build_session(bob.address, bob.bundle(with_pre_key=False))
    kind, data = alice.repo.encrypt(bob.address, b"no opk")
    assert bob.repo.decrypt(alice.address, kind, data) == b"no opk"


def test_out_of_order_and_duplicates() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    sent = [alice.repo.encrypt(bob.address, f"m{i}".encode()) for i in range(10)]
    for i in (3, 0, 9, 5, 1, 2, 4, 8, 7, 6):
        assert bob.repo.decrypt(alice.address, *sent[i]) == f"m{i}".encode()
    with pytest.raises(DuplicateMessageError):
        bob.repo.decrypt(alice.address, *sent[4])
    # Messages of a previous chain still decrypt after the ratchet moved on.
    old = [alice.repo.encrypt(bob.address, f"old{i}".encode()) for i in range(3)]
    assert bob.repo.decrypt(alice.address, *old[0]) == b"old0"
    r = bob.repo.encrypt(alice.address, b"turn")
    assert alice.repo.decrypt(bob.address, *r) == b"turn"
    new = alice.repo.encrypt(bob.address, b"new")
    assert bob.repo.decrypt(alice.address, *new) == b"new"
    assert bob.repo.decrypt(alice.address, *old[2]) == b"old2"
    assert bob.repo.decrypt(alice.address, *old[1]) == b"old1"


def test_gap_over_2000_is_refused_and_changes_nothing() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    for _ in range(2001):
        alice.repo.encrypt(bob.address, b"skipped")
    far = alice.repo.encrypt(bob.address, b"far")
    before = bob.store.snapshot()
    with pytest.raises(TooFarAheadError):
        bob.repo.decrypt(alice.address, *far)
    assert bob.store.snapshot() == before


def test_gap_of_2000_is_accepted() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    for _ in range(1999):
        alice.repo.encrypt(bob.address, b"skipped")
    last = alice.repo.encrypt(bob.address, b"last")
    assert bob.repo.decrypt(alice.address, *last) == b"last"


def test_bad_mac_changes_nothing_and_msg_without_session() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    kind, data = alice.repo.encrypt(bob.address, b"secret")
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    before = bob.store.snapshot()
    bob.changes.clear()
    with pytest.raises(BadMacError):
        bob.repo.decrypt(alice.address, kind, tampered)
    assert bob.store.snapshot() == before
    assert bob.changes == []
    assert bob.repo.decrypt(alice.address, kind, data) == b"secret"
    carol = make_party("carol")
    with pytest.raises(NoSessionError):
        carol.repo.decrypt(alice.address, kind, data)
    with pytest.raises(NoSessionError):
        carol.repo.encrypt(alice.address, b"x")
    with pytest.raises(InvalidMessageError):
        bob.repo.decrypt(alice.address, "skmsg", data)  # type: ignore[arg-type]


def test_one_set_keys_per_call_naming_what_changed() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    alice.repo.build_session(bob.address, bob.bundle())
    kind, data = alice.repo.encrypt(bob.address, b"hello")
    bob.changes.clear()
    bob.repo.decrypt(alice.address, kind, data)
    assert [change.categories for change in bob.changes] == [frozenset({SESSION, IDENTITY_KEY, PRE_KEY})]
    bob.changes.clear()
    reply = bob.repo.encrypt(alice.address, b"r")
    assert [change.categories for change in bob.changes] == [frozenset({SESSION})]
    alice.changes.clear()
    alice.repo.decrypt(bob.address, *reply)
    assert [change.categories for change in alice.changes] == [frozenset({SESSION})]


def test_replayed_pkmsg_after_pre_key_is_consumed() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    alice.repo.build_session(bob.address, bob.bundle())
    kind, data = alice.repo.encrypt(bob.address, b"hello")
    assert bob.repo.decrypt(alice.address, kind, data) == b"hello"
    with pytest.raises(DuplicateMessageError):
        bob.repo.decrypt(alice.address, kind, data)
    # The same pkmsg to a device that lost its session: the pre-key is gone, refused cleanly.
    bob.repo.delete_sessions([alice.address])
    with pytest.raises(PreKeyError):
        bob.repo.decrypt(alice.address, kind, data)


def test_changed_identity_replaces_session_and_is_reported() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    assert bob.identity_changes == []  # first use is not a change
    # Alice re-installs: new identity, same address.
    alice2 = make_party("alice-reinstalled", address=alice.address)
    alice2.repo.build_session(bob.address, bob.bundle())
    kind, data = alice2.repo.encrypt(bob.address, b"new me")
    assert bob.repo.decrypt(alice.address, kind, data) == b"new me"
    assert bob.identity_changes == [alice.address]
    record = SessionRecord.from_json(bob.store.get_keys(SESSION, [alice.address.name])[alice.address.name])
    assert len(record.sessions) == 1  # the old identity's session is gone
    assert bob.store.get_keys(IDENTITY_KEY, [alice.address.name])[alice.address.name] == alice2.identity_public()


def test_bad_bundle_signature_is_refused() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    good = bob.bundle()
    bad = PreKeyBundle(registration_id=good.registration_id, identity_key=good.identity_key,
                       signed_pre_key_id=good.signed_pre_key_id, signed_pre_key=good.signed_pre_key,
                       signed_pre_key_signature=bytes(64), pre_key_id=good.pre_key_id, pre_key=good.pre_key)
    with pytest.raises(UntrustedIdentityError):
        alice.repo.build_session(bob.address, bad)
    assert not alice.repo.has_session(bob.address)


def test_new_outgoing_session_closes_the_old_and_old_still_decrypts() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    late = bob.repo.encrypt(alice.address, b"late on the old session")
    alice.repo.build_session(bob.address, bob.bundle())
    kind, data = alice.repo.encrypt(bob.address, b"fresh")
    assert kind == "pkmsg"
    assert bob.repo.decrypt(alice.address, kind, data) == b"fresh"
    assert alice.repo.decrypt(bob.address, *late) == b"late on the old session"
    # Bob now sends on the newest session, which Alice decrypts, and that clears her pendingPreKey.
    reply = bob.repo.encrypt(alice.address, b"on the new one")
    assert alice.repo.decrypt(bob.address, *reply) == b"on the new one"
    assert alice.repo.encrypt(bob.address, b"x")[0] == "msg"


def test_at_most_40_sessions_kept() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    for i in range(MAX_SESSIONS + 5):
        alice.repo.build_session(bob.address, bob.bundle(with_pre_key=i % 2 == 0))
    value = alice.store.get_keys(SESSION, [bob.address.name])[bob.address.name]
    record = SessionRecord.from_json(value)
    assert len(record.sessions) == MAX_SESSIONS
    assert sum(entry.is_open for entry in record.sessions.values()) == 1
    kind, data = alice.repo.encrypt(bob.address, b"still works")
    assert bob.repo.decrypt(alice.address, kind, data) == b"still works"


def test_lid_mapping_resolves_and_migrates_sessions() -> None:
    pn = SignalAddress(user="4915550001", device=2)
    lid = SignalAddress(user="98765", device=2, domain=1)
    alice, bob = make_party("alice", address=pn), make_party("bob")
    pair(alice, bob)
    assert bob.store.get_keys(SESSION, [pn.name])
    bob.repo.store_lid_mapping(pn.user, lid.user)
    kind, data = alice.repo.encrypt(bob.address, b"via lid")
    assert bob.repo.decrypt(pn, kind, data) == b"via lid"
    assert not bob.store.get_keys(SESSION, [pn.name])
    assert bob.store.get_keys(SESSION, [lid.name])
    assert bob.store.get_keys(IDENTITY_KEY, [lid.name])
    # The LID address reaches the same session directly.
    kind, data = alice.repo.encrypt(bob.address, b"direct")
    assert bob.repo.decrypt(lid, kind, data) == b"direct"
    assert bob.repo.has_session(pn) and bob.repo.has_session(lid)


def test_encrypt_for_several_devices_builds_from_bundles() -> None:
    alice = make_party("alice")
    phones = [make_party(f"dev{i}", address=SignalAddress(user="4915550002", device=i)) for i in range(3)]
    pair(alice, phones[0])
    out = alice.repo.encrypt_for(b"to all", {phones[0].address: None, phones[1].address: phones[1].bundle(),
                                             phones[2].address: phones[2].bundle()})
    assert [out[p.address][0] for p in phones] == ["msg", "pkmsg", "pkmsg"]
    for phone in phones:
        assert phone.repo.decrypt(alice.address, *out[phone.address]) == b"to all"
    before = alice.store.snapshot()
    fresh = make_party("dev9", address=SignalAddress(user="4915550002", device=9))
    with pytest.raises(NoSessionError):  # one device without a session: nothing is built or moved
        alice.repo.encrypt_for(b"x", {phones[0].address: None, fresh.address: fresh.bundle(),
                                      SignalAddress(user="nobody"): None})
    assert alice.store.snapshot() == before


def test_chains_with_seeds_are_kept_spent_ones_bounded_and_replays_still_refused() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    old = alice.repo.encrypt(bob.address, b"read now, replayed much later")
    assert bob.repo.decrypt(alice.address, *old) == b"read now, replayed much later"
    alice.repo.decrypt(bob.address, *bob.repo.encrypt(alice.address, b"turn"))
    held = alice.repo.encrypt(bob.address, b"held on an old chain")
    recent = None
    for i in range(40):  # 40 turns: a ratchet step each
        sender, receiver = (alice, bob) if i % 2 else (bob, alice)
        message = sender.repo.encrypt(receiver.address, b"turn")
        receiver.repo.decrypt(sender.address, *message)
        if sender is alice:
            recent = message
    record = SessionRecord.from_json(bob.store.get_keys(SESSION, [alice.address.name])[alice.address.name])
    entry = record.open_session()
    assert entry is not None
    closed = [chain for chain in entry.chains.values() if chain.key is None]
    assert len([c for c in closed if not c.message_keys]) == 5
    assert len([c for c in closed if c.message_keys]) == 1  # the chain "held" waits on
    assert bob.repo.decrypt(alice.address, *held) == b"held on an old chain"
    before = bob.store.snapshot()
    assert recent is not None
    with pytest.raises(DuplicateMessageError):  # a recent chain is still known
        bob.repo.decrypt(alice.address, *recent)
    with pytest.raises(BadMacError):  # a spent chain long gone: the trial ratchet step fails, nothing kept
        bob.repo.decrypt(alice.address, *old)
    assert bob.store.snapshot() == before
    kind, data = alice.repo.encrypt(bob.address, b"still in step")
    assert bob.repo.decrypt(alice.address, kind, data) == b"still in step"


def test_previous_counter_sent_as_a_count_is_accepted() -> None:
    # libsignal-node sends the last index of the previous chain; libsignal-java/Signal send the count.
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    held = [alice.repo.encrypt(bob.address, f"old {i}".encode()) for i in range(3)]
    alice.repo.decrypt(bob.address, *bob.repo.encrypt(alice.address, b"turn"))  # Alice steps her ratchet
    value = alice.store.get_keys(SESSION, [bob.address.name])[bob.address.name]
    record = SessionRecord.from_json(value)
    entry = record.open_session()
    assert entry is not None
    entry.previous_counter += 1  # the count, not the last index
    alice.store.set_keys({SESSION: {bob.address.name: record.to_json()}})
    kind, data = alice.repo.encrypt(bob.address, b"new chain")
    assert bob.repo.decrypt(alice.address, kind, data) == b"new chain"
    for i in (2, 0, 1):
        assert bob.repo.decrypt(alice.address, *held[i]) == f"old {i}".encode()


def test_every_session_failing_is_no_matching_session() -> None:
    alice, bob = make_party("alice"), make_party("bob")
    pair(alice, bob)
    alice.repo.build_session(bob.address, bob.bundle())
    bob.repo.decrypt(alice.address, *alice.repo.encrypt(bob.address, b"second session"))
    kind, data = alice.repo.encrypt(bob.address, b"x")
    other = make_party("mallory")
    pair(other, make_party("someone"))
    _, foreign = other.repo.encrypt(SignalAddress("someone"), b"not for bob")
    with pytest.raises(NoMatchingSessionError):
        bob.repo.decrypt(alice.address, "msg", foreign)
    assert bob.repo.decrypt(alice.address, kind, data) == b"x"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["send", "deliver", "replay"]), st.booleans(), st.integers(0, 50)),
                max_size=60))
def test_any_interleaving_delivers_each_message_once(script: list[tuple[str, bool, int]]) -> None:
    """Sends, deliveries in any order and replays: every message decrypts once, a replay is refused
    without changing state."""
    alice, bob = make_party("model-alice"), make_party("model-bob")
    pair(alice, bob)
    pending: dict[bool, list[tuple[bytes, tuple[str, bytes]]]] = {True: [], False: []}
    delivered: dict[bool, list[tuple[str, bytes]]] = {True: [], False: []}
    for count, (op, from_alice, pick) in enumerate(script):
        sender, receiver = (alice, bob) if from_alice else (bob, alice)
        if op == "send":
            text = f"{sender.name} {count}".encode()
            pending[from_alice].append((text, sender.repo.encrypt(receiver.address, text)))
        elif op == "deliver" and pending[from_alice]:
            text, message = pending[from_alice].pop(pick % len(pending[from_alice]))
            assert receiver.repo.decrypt(sender.address, *message) == text  # type: ignore[arg-type]
            delivered[from_alice].append(message)
        elif op == "replay" and delivered[from_alice]:
            message = delivered[from_alice][pick % len(delivered[from_alice])]
            before = receiver.store.snapshot()
            with pytest.raises((DuplicateMessageError, BadMacError, NoMatchingSessionError)):
                receiver.repo.decrypt(sender.address, *message)  # type: ignore[arg-type]
            assert receiver.store.snapshot() == before
    for from_alice, messages in pending.items():  # whatever is still in flight arrives in the end
        sender, receiver = (alice, bob) if from_alice else (bob, alice)
        for text, message in reversed(messages):
            assert receiver.repo.decrypt(sender.address, *message) == text  # type: ignore[arg-type]
