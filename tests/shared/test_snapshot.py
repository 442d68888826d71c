"""The snapshot format: canonical bytes, round trip, and malformed snapshots as typed errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.bufferjson import to_plain
from shared.errors import StateValidationError
from shared.snapshot import Snapshot, canonical_bytes, canonical_state_bytes, parse_state, snapshot_bytes
from testkit.auth_states import registered_state

MOMENT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def snapshot_json() -> dict[str, Any]:
    snapshot = Snapshot("acct-1", 3, MOMENT, "c-1", registered_state())
    data: dict[str, Any] = json.loads(snapshot.to_bytes())
    return data


def test_round_trip_keeps_every_field_and_the_exact_state() -> None:
    state = registered_state()
    snapshot = Snapshot("acct-1", 3, MOMENT, "c-1", state)
    opened = Snapshot.from_bytes(snapshot.to_bytes())
    assert (opened.account_id, opened.generation, opened.produced_at, opened.connector_id) == (
        "acct-1", 3, MOMENT, "c-1")
    assert canonical_state_bytes(opened.state) == canonical_state_bytes(state)
    assert parse_state(canonical_state_bytes(state)).to_json() == state.to_json()


def test_canonical_bytes_do_not_depend_on_insertion_order() -> None:
    state = registered_state()
    shuffled = state.copy()
    shuffled.keys = dict(reversed(list(state.keys.items())))
    assert canonical_state_bytes(shuffled) == canonical_state_bytes(state)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema": "keeper.snapshot.v0"}, "not keeper.snapshot.v1"),
        ({"accountId": ""}, "accountId"),
        ({"accountId": 7}, "accountId"),
        ({"generation": -1}, "generation"),
        ({"generation": True}, "generation"),
        ({"generation": "3"}, "generation"),
        ({"connectorId": None}, "connectorId"),
        ({"producedAt": "yesterday"}, "RFC 3339"),
        ({"producedAt": "2026-11-25T12:00:00"}, "UTC offset"),
        ({"state": {"creds": "no", "keys": {}}}, "creds is not an object"),
    ],
)
def test_malformed_snapshots_are_state_validation_errors(change: dict[str, Any], message: str) -> None:
    data = {**snapshot_json(), **change}
    with pytest.raises(StateValidationError, match=message):
        Snapshot.from_bytes(json.dumps(to_plain(data)).encode())


@pytest.mark.parametrize("raw", [b"", b"[]", b"{not json", b"\xff\xfe"])
def test_bytes_that_are_not_a_snapshot(raw: bytes) -> None:
    with pytest.raises(StateValidationError):
        Snapshot.from_bytes(raw)


def test_a_snapshot_spliced_around_ready_state_bytes_is_the_canonical_snapshot() -> None:
    # Restores seal the vault's stored bytes and flushes reuse the cache's: no second serialisation,
    # and the result must be byte for byte what serialising the whole snapshot gives.
    state = registered_state()
    snapshot = Snapshot("acct-1", 3, MOMENT, "c-1", state)
    whole = canonical_bytes({"schema": "keeper.snapshot.v1", "accountId": "acct-1", "generation": 3,
                             "producedAt": "2026-11-25T12:00:00Z", "connectorId": "c-1", "state": state.to_json()})
    assert snapshot.to_bytes() == whole
    assert snapshot.to_bytes(canonical_state_bytes(state)) == whole
    assert snapshot_bytes("acct-1", 3, MOMENT, "c-1", canonical_state_bytes(state)) == whole
    assert Snapshot.from_bytes(whole).state.to_json() == state.to_json()
