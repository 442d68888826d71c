"""connectorSync renews only the leases a connector asks to renew (``held[].renew``); the rest are checked."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from functions.errors import InvalidArgumentError
from functions.validation import parse_sync_request
from shared import sealing
from testkit.functions_world import ALICE, FakeConnector, World, world


def _sync(w: World, connector: FakeConnector, renew: dict[str, bool], capacity: int | None = None) -> Any:
    public = base64.b64encode(sealing.public_key_bytes(connector.key)).decode()
    request = parse_sync_request({
        "connectorId": connector.connector_id, "capacity": connector.capacity if capacity is None else capacity,
        "publicKey": public,
        "held": [{"accountId": a, "generation": g, **({} if renew.get(a, True) else {"renew": False})}
                 for a, g in connector.held.items()]})
    return w.services.sync.sync(request).to_json()


def _holding(w: World, n: int) -> tuple[FakeConnector, list[str]]:
    ids = [w.add(ALICE, f"+4070{i:07d}") for i in range(n)]
    connector = FakeConnector("c-1", capacity=n)
    connector.sync(w.services)
    assert sorted(connector.held) == sorted(ids)
    return connector, ids


def test_leases_not_asked_to_renew_are_confirmed_without_a_write(tmp_path: Path) -> None:
    w = world(tmp_path)
    connector, (due, not_due) = _holding(w, 2)
    before = w.services.stores.leases.get(not_due)
    w.clock.advance(10)
    response = _sync(w, connector, {not_due: False})
    assert [r["accountId"] for r in response["renewed"]] == [due]
    assert response["lost"] == []
    assert w.services.stores.leases.get(not_due) == before, "expiry unchanged: nothing written"
    assert response["claimed"] == []
    w.add(ALICE, "+40799999999")
    response = _sync(w, connector, {not_due: False}, capacity=2)
    assert response["claimed"] == [], "a confirmed lease still counts against the capacity"


def test_a_lease_not_asked_to_renew_but_taken_is_reported_lost(tmp_path: Path) -> None:
    w = world(tmp_path)
    connector, ids = _holding(w, 2)
    w.clock.advance(31)  # both leases ran out; another connector takes one of them
    [claim] = FakeConnector("c-2", capacity=1).sync(w.services)["claimed"]
    gone = claim["accountId"]
    [still] = [a for a in ids if a != gone]
    response = _sync(w, connector, dict.fromkeys(ids, False))
    assert response["lost"] == [{"accountId": gone, "reason": "taken"}]
    assert [r["accountId"] for r in response["renewed"]] == [still], \
        "run out but claimed by nobody: renewed after all"
    lease = w.services.stores.leases.get(still)
    assert lease is not None and lease.expires_at > w.clock.now


def test_renew_is_a_boolean_and_only_on_held_entries() -> None:
    body = {"connectorId": "c-1", "capacity": 1, "publicKey": base64.b64encode(bytes(range(32))).decode()}
    with pytest.raises(InvalidArgumentError):
        parse_sync_request({**body, "held": [{"accountId": "a1", "generation": 1, "renew": "no"}]})
    with pytest.raises(InvalidArgumentError):
        parse_sync_request({**body, "release": [{"accountId": "a1", "generation": 1, "renew": False}]})
    request = parse_sync_request({**body, "held": [{"accountId": "a1", "generation": 1, "renew": False},
                                                   {"accountId": "a2", "generation": 1}]})
    assert [h.renew for h in request.held] == [False, True]
