"""Pre-keys left as text when a canonical state is parsed, parsed on first use, written back as they came."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from shared.authstate import AuthState, StoredKeyPair
from shared.authstore import MemoryAuthStore
from shared.bufferjson import revive
from shared.deferred import DeferredCategory, revive_deferring_pre_keys
from shared.errors import StateValidationError
from shared.snapshot import Snapshot, canonical_state_bytes, parse_state
from testkit.auth_states import registered_state

MOMENT = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def linked_state(pre_keys: int = 812, seed: int = 3) -> AuthState:
    """A registered state with a full stock of pre-keys (as after the first upload) beside the others."""
    state = registered_state(seed)
    rng = random.Random(seed)
    keys = state.keys
    keys["pre-key"] = {str(i): StoredKeyPair.generate(rng.randbytes).to_json() for i in range(1, pre_keys + 1)}
    state.keys = keys
    return state


def fully_parsed(data: bytes) -> AuthState:
    return AuthState.from_json(revive(data))


def test_a_canonical_state_is_parsed_with_its_pre_keys_deferred_and_equal_to_a_full_parse() -> None:
    data = canonical_state_bytes(linked_state())
    state = parse_state(data)
    assert set(state.deferred()) == {"pre-key"}
    assert state.deferred()["pre-key"].count == 812
    assert state.key_count() == fully_parsed(data).key_count()
    assert "pre-key=812" not in repr(state) and "'pre-key': 812" in repr(state)
    # Writing it back does not parse it: the text goes out as it came in.
    assert canonical_state_bytes(state) == data
    assert set(state.deferred()) == {"pre-key"}
    assert state == fully_parsed(data)  # comparing parses it
    assert state.deferred() == {}
    assert canonical_state_bytes(state) == data


def test_a_snapshot_defers_the_pre_keys_of_its_state_and_round_trips_byte_for_byte() -> None:
    data = Snapshot("acct-1", 4, MOMENT, "c-1", linked_state()).to_bytes()
    opened = Snapshot.from_bytes(data)
    assert set(opened.state.deferred()) == {"pre-key"}
    assert opened.to_bytes() == data
    assert opened.state.entries("session") == fully_parsed(canonical_state_bytes(opened.state)).keys["session"]


def test_the_store_parses_the_category_on_first_read_and_serialises_edits_as_a_full_parse_would() -> None:
    data = canonical_state_bytes(linked_state())
    store = MemoryAuthStore.adopt(parse_state(data))
    assert store.get_keys("session", ["40700000000.0"])  # another category: pre-keys stay deferred
    assert set(store.snapshot().deferred()) == {"pre-key"}
    reference = fully_parsed(data)
    assert store.get_keys("pre-key", ["7", "9999"]) == {"7": reference.keys["pre-key"]["7"]}
    assert store.snapshot().deferred() == {}
    store.set_keys({"pre-key": {"7": None, "813": {"private": b"\x01" * 32, "public": b"\x02" * 32}}})
    reference_store = MemoryAuthStore(reference)
    reference_store.set_keys({"pre-key": {"7": None, "813": {"private": b"\x01" * 32, "public": b"\x02" * 32}}})
    assert canonical_state_bytes(store.snapshot()) == canonical_state_bytes(reference_store.snapshot())


def test_deleting_every_pre_key_of_a_deferred_category_drops_it() -> None:
    state = linked_state(pre_keys=200)
    ids = list(state.keys["pre-key"])
    store = MemoryAuthStore.adopt(parse_state(canonical_state_bytes(state)))
    store.set_keys({"pre-key": dict.fromkeys(ids)})
    assert "pre-key" not in store.snapshot().keys
    assert b'"pre-key"' not in canonical_state_bytes(store.snapshot())


def test_copies_keep_the_category_deferred_and_independent() -> None:
    state = parse_state(canonical_state_bytes(linked_state()))
    shallow, deep = state.shallow_copy(), state.copy()
    assert set(shallow.deferred()) == set(deep.deferred()) == {"pre-key"}
    shallow.editable("pre-key")["1"] = {"private": b"x", "public": b"y"}
    assert set(state.deferred()) == {"pre-key"} and set(deep.deferred()) == {"pre-key"}
    assert state.keys["pre-key"]["1"] != shallow.keys["pre-key"]["1"]
    assert deep == state


def _with_creds_field(data: bytes, name: str, value: object) -> bytes:
    obj = json.loads(data)
    obj["creds"][name] = value
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize("variant", ["spaced", "escaped", "second_key", "small", "odd_value"])
def test_text_that_is_not_exactly_canonical_is_parsed_whole(variant: str) -> None:
    data = canonical_state_bytes(linked_state(pre_keys=100 if variant != "small" else 3))
    if variant == "spaced":  # a writer that puts spaces after separators
        data = json.dumps(json.loads(data), sort_keys=True).encode()
    elif variant == "escaped":  # a string with an escape inside the category
        obj = json.loads(data)
        obj["keys"]["pre-key"]["1"]["note"] = 'a "quoted" word'
        data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    elif variant == "second_key":  # another object also has a "pre-key" key
        data = _with_creds_field(data, "extra", {"pre-key": {"1": 2}})
    elif variant == "odd_value":  # one entry lacks its public key
        obj = json.loads(data)
        del obj["keys"]["pre-key"]["1"]["public"]
        data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    value, deferred = revive_deferring_pre_keys(data)
    assert deferred is None
    assert value == revive(data)
    assert parse_state(data) == fully_parsed(data)


def test_the_placeholder_must_land_at_the_state_keys() -> None:
    # "pre-key" only inside creds (no such category): found once, but not where the state keeps keys.
    state = registered_state()
    keys = state.keys
    del keys["pre-key"]
    state.keys = keys
    data = _with_creds_field(canonical_state_bytes(state), "stash",
                             json.loads(canonical_state_bytes(linked_state(pre_keys=100)))["keys"])
    value, deferred = revive_deferring_pre_keys(data)
    assert deferred is None and value == revive(data)


def test_a_deferred_category_that_does_not_parse_is_a_validation_error_when_first_used() -> None:
    state = AuthState(registered_state().creds, deferred={"pre-key": DeferredCategory(b'{"1":{"private":,}}', 1)})
    with pytest.raises(StateValidationError, match="pre-key"):
        state.entries("pre-key")


def test_a_category_cannot_be_both_parsed_and_deferred() -> None:
    with pytest.raises(ValueError, match="both"):
        AuthState(registered_state().creds, {"pre-key": {}}, deferred={"pre-key": DeferredCategory(b"{}", 0)})
