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


def test_a_value_edited_after_reading_is_a_change_when_written_back() -> None:
    """The read-modify-write of a session record must be reported, never stay only in memory."""
    store, changes = make_store()
    store.set_keys({"session": {"a.0": {"counter": 1, "chain": [b"k1"]}}})
    record = store.get_keys("session", ["a.0"])["a.0"]
    assert isinstance(record, dict) and isinstance(record["chain"], list)
    record["counter"] = 2
    record["chain"].append(b"k2")
    assert store.get_keys("session", ["a.0"])["a.0"] == {"counter": 1, "chain": [b"k1"]}
    store.set_keys({"session": {"a.0": record}})
    assert len(changes) == 2 and store.revision == 2
    record["counter"] = 3  # editing what was written does not reach the store either
    assert store.snapshot().keys["session"]["a.0"] == {"counter": 2, "chain": [b"k1", b"k2"]}


def test_creds_written_are_not_shared_with_the_caller() -> None:
    store, changes = make_store()
    me = Contact(id="40700000001:2@s.whatsapp.net").to_json()
    store.update_creds({"me": me})
    assert isinstance(me, dict)
    me["id"] = "40799999999:9@s.whatsapp.net"  # the caller reuses its dict: the store must not see it
    stored = store.get_creds().me
    assert stored is not None and stored.id == "40700000001:2@s.whatsapp.net"
    assert len(changes) == 1


def test_a_snapshot_keeps_its_keys_and_creds_through_later_writes() -> None:
    store, _ = make_store()
    store.set_keys({"session": {"a.0": {"counter": 1}}, "pre-key": {"1": {"public": b"p"}}})
    snap = store.snapshot()
    store.set_keys({"session": {"a.0": {"counter": 2}, "b.0": b"\x02"}, "pre-key": {"1": None}})
    store.update_creds({"nextPreKeyId": 99})
    assert snap.keys == {"session": {"a.0": {"counter": 1}}, "pre-key": {"1": {"public": b"p"}}}
    assert snap.creds.next_pre_key_id != 99
    assert store.snapshot().keys == {"session": {"a.0": {"counter": 2}, "b.0": b"\x02"}}


def test_an_adopted_state_is_served_without_copying_and_left_as_it_was() -> None:
    # The connector adopts each restored state (a deep copy of 800 pre-keys costs milliseconds) and
    # still reads the original later (its digest joins the cache lineage): writes must not reach it.
    state = AuthState.generate(random.Random(5).randbytes)
    state.keys = {"pre-key": {"1": {"public": b"p1"}, "2": {"public": b"p2"}}}
    before = state.copy()
    changes: list[StateChange] = []
    store = MemoryAuthStore.adopt(state, changes.append)
    assert store.get_keys("pre-key", ["1"]) == {"1": {"public": b"p1"}}
    store.set_keys({"pre-key": {"1": None, "3": {"public": b"p3"}}, "session": {"a.0": b"\x01"}})
    store.update_creds({"nextPreKeyId": 4, "me": Contact(id="40700000001:2@s.whatsapp.net").to_json()})
    assert state.to_json() == before.to_json()
    assert [c.kind for c in changes] == ["routine", "critical"] and store.revision == 2
    assert store.snapshot().keys == {"pre-key": {"2": {"public": b"p2"}, "3": {"public": b"p3"}},
                                     "session": {"a.0": b"\x01"}}
