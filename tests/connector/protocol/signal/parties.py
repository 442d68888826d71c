"""Python Signal parties for the tests: an account's store, its repository and its bundle."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.protocol import prekeys
from connector.protocol.signal.repository import SignalRepository
from connector.protocol.signal.types import PreKeyBundle, SignalAddress
from shared.authstate import PRE_KEY, AuthState, StoredKeyPair
from shared.authstore import MemoryAuthStore, StateChange
from testkit.protocol.seeded import SeededRandom


class Clock:
    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def __call__(self) -> int:
        self.ms += 1
        return self.ms


@dataclass
class Party:
    """One device: its store (with the changes it reported), repository and address."""

    name: str
    address: SignalAddress
    store: MemoryAuthStore
    repo: SignalRepository
    random: SeededRandom
    changes: list[StateChange] = field(default_factory=list)
    identity_changes: list[SignalAddress] = field(default_factory=list)

    def bundle(self, with_pre_key: bool = True) -> PreKeyBundle:
        pre_key_id = None
        if with_pre_key:
            batch = prekeys.prepare_pre_keys(self.store, 1, self.random)
            pre_key_id, pre_key = batch.keys[0]
            prekeys.mark_uploaded(self.store, batch)
        bundle = self.repo.local_bundle(pre_key_id)
        assert bundle.pre_key == (pre_key if with_pre_key else None)
        return bundle

    def pre_key_ids(self) -> set[str]:
        return set(self.store.snapshot().entries(PRE_KEY) or {})

    def identity_public(self) -> bytes:
        return b"\x05" + self.store.get_creds().signed_identity_key.public

    def identity_pair(self) -> StoredKeyPair:
        return self.store.get_creds().signed_identity_key


def make_party(name: str, address: SignalAddress | None = None, state: AuthState | None = None) -> Party:
    random = SeededRandom(name)
    clock = Clock()
    store = MemoryAuthStore(state if state is not None else AuthState.generate(random))
    party = Party(name=name, address=address or SignalAddress(user=name, device=0), store=store,
                  repo=None, random=random)  # type: ignore[arg-type]
    store.set_listener(party.changes.append)
    party.repo = SignalRepository(store, random_bytes=random, now_ms=clock,
                                  on_identity_change=party.identity_changes.append)
    return party


def pair(alice: Party, bob: Party) -> None:
    """Alice builds a session from Bob's bundle, sends a pkmsg, Bob replies: both sides on ``msg``."""
    alice.repo.build_session(bob.address, bob.bundle())
    kind, data = alice.repo.encrypt(bob.address, b"hello")
    assert kind == "pkmsg"
    assert bob.repo.decrypt(alice.address, kind, data) == b"hello"
    kind, data = bob.repo.encrypt(alice.address, b"hi")
    assert kind == "msg"
    assert alice.repo.decrypt(bob.address, kind, data) == b"hi"
