"""connectorSync reads a held lease sent with ``renew`` false only when something its holder must act
on happened (control change on the account, lease taken over or ended), and still tells the holder
within one call: removal, serve-off, reconnect request, revoke. A quiet held account costs no read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from functions.memory_stores import MemoryStatusStore
from functions.model import AccountStatus
from functions.vault_adapter import VaultSealer, VaultSessions
from functions.wiring import Services, build_services
from shared.events import ConnectionState, ConnectionUpdate
from tests.functions.support import ALICE, FakeConnector, World, config, world
from tests.functions.test_connection_events import CountingStores

_READS = {("accounts", "get"), ("accounts", "get_many"), ("leases", "get"), ("leases", "get_many")}
#: What a call holding only quiet leases asks of the stores (capacity full: no claim queries).
_QUIET_CALL = [("status", "connector"), ("accounts", "control_changed_since"), ("leases", "taken_since"),
               ("leases", "ended_between"), ("status", "record_connector")]


def _steady(w: World, n: int, pairing: int = 0) -> tuple[FakeConnector, list[str]]:
    """A connector holding ``n`` accounts (the first ``pairing`` still pairing, the rest linked),
    after one call that renewed nothing."""
    ids = [w.add(ALICE, f"+4070{i:07d}") for i in range(n)]
    connector = FakeConnector("c-1", capacity=n)
    connector.sync(w.services)
    assert sorted(connector.held) == sorted(ids)
    for account_id in ids[pairing:]:
        w.services.stores.accounts.update(account_id, {"status": AccountStatus.CONNECTED})
    w.clock.advance(5)
    response = connector.sync(w.services, not_due=ids)
    assert (response["renewed"], response["lost"], response["commands"]) == ([], [], [])
    return connector, ids


def _counted(w: World) -> tuple[Services, CountingStores]:
    """The world's services again, over its stores wrapped to log every call."""
    counted = CountingStores(w.services.stores)
    services = build_services(config(), counted.stores, VaultSessions(w.vault, w.vault_store), VaultSealer(w.vault),
                              w.alerts_out, clock=w.clock)
    return services, counted


def _read_ids(counted: CountingStores) -> dict[tuple[str, str], list[str]]:
    """The account ids each read of accounts or leases asked for, since the last take."""
    out: dict[tuple[str, str], list[str]] = {}
    for call in counted.take_calls():
        if (call.store, call.method) in _READS:
            ids = call.args[0] if call.method == "get_many" else [call.args[0]]
            out.setdefault((call.store, call.method), []).extend(ids)
    return out


def _next_call(w: World, connector: FakeConnector, ids: list[str]) -> dict[str, Any]:
    w.clock.advance(5)
    return connector.sync(w.services, not_due=ids)


def test_a_removal_reaches_a_holder_that_does_not_renew(tmp_path: Path) -> None:
    w = world(tmp_path)
    connector, ids = _steady(w, 3)
    assert w.services.accounts.remove(ALICE, ids[0])["status"] == "removing"
    response = _next_call(w, connector, ids)
    assert response["commands"] == [{"accountId": ids[0], "action": "remove"}]
    assert (response["lost"], response["renewed"]) == ([], [])
    assert sorted(connector.held) == sorted(ids), "removing accounts stay held until the logout"


@pytest.mark.parametrize(("state", "reason"), [
    (ConnectionState.NEEDS_PAIRING, "logged_out"), (ConnectionState.REPLACED, "replaced"),
])
def test_a_serve_off_from_a_connection_event_reaches_a_holder_that_does_not_renew(
        tmp_path: Path, state: ConnectionState, reason: str) -> None:
    w = world(tmp_path)
    connector, ids = _steady(w, 3)
    w.services.events.handle(ConnectionUpdate(ids[1], "c-1", 1, w.clock.now, state, reason).to_json())
    response = _next_call(w, connector, ids)
    assert response["lost"] == [{"accountId": ids[1], "reason": "not_served"}]
    assert sorted(connector.held) == sorted([ids[0], ids[2]])


def test_a_pairing_expired_by_cleanup_reaches_a_holder_that_does_not_renew(tmp_path: Path) -> None:
    w = world(tmp_path, pairing_ttl_s=20.0)
    connector, ids = _steady(w, 3, pairing=1)
    w.clock.advance(16)  # 21 s into the pairing, the leases (30 s) still live
    assert w.services.cleaner.run()["pairingExpired"] == 1
    response = _next_call(w, connector, ids)
    assert response["lost"] == [{"accountId": ids[0], "reason": "not_served"}]
    assert response["renewed"] == []


def test_a_reconnect_request_reaches_a_holder_that_does_not_renew_once(tmp_path: Path) -> None:
    w = world(tmp_path)
    connector, ids = _steady(w, 3)
    w.services.accounts.reconnect(ALICE, ids[2])
    assert _next_call(w, connector, ids)["commands"] == [{"accountId": ids[2], "action": "reconnect"}]
    assert _next_call(w, connector, ids)["commands"] == [], "handed out once"
    assert sorted(connector.held) == sorted(ids)


def test_a_pairing_restart_revokes_the_lease_of_a_holder_that_does_not_renew(tmp_path: Path) -> None:
    w = world(tmp_path)
    connector, ids = _steady(w, 3)
    # Set up as a status no connector event marks (so only the restart below can tell the holder).
    w.services.stores.accounts.update(ids[0], {"status": AccountStatus.NEEDS_PAIRING})
    assert w.services.accounts.reconnect(ALICE, ids[0])["status"] == "pairing"
    response = _next_call(w, connector, ids)
    assert response["lost"] == [{"accountId": ids[0], "reason": "released"}]


def test_a_lease_revoked_with_no_account_change_reaches_its_holder(tmp_path: Path) -> None:
    w = world(tmp_path)
    connector, ids = _steady(w, 2)
    w.services.stores.leases.revoke(ids[1], w.clock.now)
    response = _next_call(w, connector, ids)
    assert response["lost"] == [{"accountId": ids[1], "reason": "released"}]


def test_a_quiet_held_account_costs_no_read(tmp_path: Path) -> None:
    w = world(tmp_path)
    connector, ids = _steady(w, 4)
    services, counted = _counted(w)
    connector.sync(services, not_due=ids)  # the vault key is put once per service
    counted.take()
    w.clock.advance(5)
    response = connector.sync(services, not_due=ids)
    assert (response["renewed"], response["lost"], response["commands"], response["claimed"]) == ([], [], [], [])
    assert counted.take() == _QUIET_CALL
    w.clock.advance(5)
    response = connector.sync(services, not_due=ids[1:])
    assert [r["accountId"] for r in response["renewed"]] == [ids[0]]
    assert _read_ids(counted) == {("accounts", "get_many"): [ids[0]]}, "only the lease due is read"
    w.services.accounts.reconnect(ALICE, ids[3])
    w.clock.advance(5)
    response = connector.sync(services, not_due=ids)
    assert response["commands"] == [{"accountId": ids[3], "action": "reconnect"}]
    assert _read_ids(counted) == {("leases", "get_many"): [ids[3]]}, \
        "the changed account comes with the query; its lease is read"


@pytest.mark.parametrize("gap_s", [None, 61.0], ids=["no-previous-call", "previous-call-too-old"])
def test_without_a_recent_previous_call_every_held_account_is_read(tmp_path: Path, gap_s: float | None) -> None:
    w = world(tmp_path)
    connector, ids = _steady(w, 3)
    services, counted = _counted(w)
    if gap_s is None:
        status = w.services.stores.status
        assert isinstance(status, MemoryStatusStore)
        status.records.clear()
        w.clock.advance(5)
    else:
        w.clock.advance(gap_s)
    counted.take()
    response = connector.sync(services, not_due=ids)
    reads = _read_ids(counted)
    assert sorted(reads[("accounts", "get_many")]) == sorted(ids)
    assert sorted(reads[("leases", "get_many")]) == sorted(ids)
    assert len(response["renewed"]) == (3 if gap_s else 0), "run out after the gap: renewed after all"


def test_a_change_is_seen_again_by_every_call_within_the_margin(tmp_path: Path) -> None:
    # An answer lost on the way must not lose the news: the next calls see the change too.
    w = world(tmp_path)
    connector, ids = _steady(w, 2)
    w.services.accounts.remove(ALICE, ids[0])
    for _ in range(3):
        assert _next_call(w, connector, ids)["commands"] == [{"accountId": ids[0], "action": "remove"}]
    for _ in range(13):  # renewals (renew true) read it and command the removal as ever
        w.clock.advance(5)
        assert connector.sync(w.services)["commands"] == [{"accountId": ids[0], "action": "remove"}]
    response = _next_call(w, connector, ids)
    assert response["commands"] == [], "long after the change, quiet again until the next renewal"
