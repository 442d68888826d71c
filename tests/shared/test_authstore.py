"""MemoryAuthStore: Baileys key-store semantics and change reports."""

from __future__ import annotations

import random

from shared.authstate import AuthState, Contact
from shared.authstore import AuthStore, MemoryAuthStore, StateChange


def make_store() -> tuple[MemoryAuthStore, list[StateChange]]:
    rng = random.Random(3)
    changes: list[StateChange] = []
    store = MemoryAuthStore(AuthState.generate(rng.randbytes), changes.append)
    return store, changes


def test_memory_store_satisfies_protocol() -> None:
    store: AuthStore = make_store()[0]
    assert store.get_keys("session", ["x"]) == {}


def test_set_get_delete_keys() -> None:
    store, changes = make_store()
    store.set_keys({"session": {"a.0": b"\x01", "b.0": b"\x02"}, "pre-key": {"1": {"public": b"p"}}})
    assert store.get_keys("session", ["a.0", "zz"]) == {"a.0": b"\x01"}
    store.set_keys({"session": {"a.0": None}})
    assert store.get_keys("session", ["a.0", "b.0"]) == {"b.0": b"\x02"}
    assert changes == [
        StateChange("routine", frozenset({"session", "pre-key"})),
        StateChange("routine", frozenset({"session"})),
    ]
    assert store.revision == 2


def test_no_op_writes_report_nothing() -> None:
    store, changes = make_store()
    store.set_keys({"session": {"a.0": b"\x01"}})
    store.set_keys({"session": {"a.0": b"\x01", "missing": None}})
    store.update_creds({"nextPreKeyId": store.get_creds().next_pre_key_id, "notThere": None})
    assert len(changes) == 1


def test_creds_changes_are_classified() -> None:
    store, changes = make_store()
    store.update_creds({"nextPreKeyId": 31, "firstUnuploadedPreKeyId": 31})
    store.update_creds({"me": Contact(id="40700000001:2@s.whatsapp.net").to_json(), "registered": True})
    assert [c.kind for c in changes] == ["routine", "critical"]
    assert changes[1].creds_fields == {"me", "registered"}
    assert changes[1].categories == {"creds"}
    assert store.get_creds().registered is True


def test_snapshot_is_independent() -> None:
    store, _ = make_store()
    store.set_keys({"session": {"a.0": b"\x01"}})
    snap = store.snapshot()
    store.set_keys({"session": {"a.0": b"\x02"}})
    assert snap.keys["session"]["a.0"] == b"\x01"
