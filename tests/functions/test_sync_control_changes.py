"""connectorSync reads a held lease sent with ``renew`` false only when something its holder must act
on happened (control change on the account, lease taken over or ended), and still tells the holder
within one call: removal, serve-off, reconnect request, revoke. A quiet held account costs no read."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from functions.firestore_stores import firestore_stores
from functions.model import Account, AccountStatus, ConnectorRecord
from functions.stores import Stores
from functions.validation import AddAccountInput
from functions.vault_adapter import VaultSealer, VaultSessions
from functions.wiring import Services, build_services
from shared.connector_sync import PairingMethod
from shared.events import ConnectionState, ConnectionUpdate
from shared.vault import Vault
from shared.vault.firestore_store import FirestoreVaultStore
from shared.vault.kek import LocalFileKek
from testkit.firestore_rpcs import RpcCounter
from testkit.functions_world import ALICE, T0, Clock, FakeConnector, RecordingPublisher, World, config, world
from testkit.memory_stores import MemoryStatusStore, memory_stores
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
    services = build_services(config(), counted.stores, VaultSessions(w.vault, w.vault_store), VaultSealer(w.vault.kek),
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


def _check_change_queries(stores: Stores) -> None:
    """The three queries a call asks, and the connector record it starts from, on one store bundle."""
    now = T0 + timedelta(seconds=100)
    for i, changed_at in enumerate((None, T0, now - timedelta(seconds=10), now)):
        stores.accounts.create(Account(
            account_id=f"a{i}", owner_uid="u", phone_number=f"+4070000000{i}", method=PairingMethod.QR,
            status=AccountStatus.CONNECTED, serve=True, created_at=T0, updated_at=T0, control_changed_at=changed_at))
    assert sorted(a.account_id for a in stores.accounts.control_changed_since(now - timedelta(seconds=10))) == [
        "a2", "a3"]
    leases = stores.leases
    leases.claim("released", "c1", T0, 30)
    leases.release("released", "c1", 1, now - timedelta(seconds=5))
    leases.claim("run-out", "c1", T0, 30)  # ran out at T0 + 30
    leases.claim("live", "c1", now, 30)
    leases.claim("taken", "c1", T0, 30)
    taken = leases.claim("taken", "c2", now, 30)
    assert taken is not None and taken.taken_at == now, "claimed from c1's lease that ran out unreleased"
    again = leases.claim("released", "c2", now, 30)
    assert again is not None and again.taken_at is None, "a released lease is not taken from anyone"
    renewed = leases.renew("taken", "c2", 2, now + timedelta(seconds=10), 30)
    assert renewed is not None and renewed.taken_at == now, "a renewal keeps the mark"
    assert [lease.account_id for lease in leases.taken_since(now - timedelta(seconds=60))] == ["taken"]
    assert leases.taken_since(now + timedelta(seconds=1)) == []
    ended = leases.ended_between(T0 + timedelta(seconds=20), now)
    assert sorted(lease.account_id for lease in ended) == ["run-out"]
    assert stores.status.connector("c1") is None
    stores.status.record_connector(ConnectorRecord("c1", now, 10, 3))
    assert stores.status.connector("c1") == ConnectorRecord("c1", now, 10, 3)


def test_change_queries_in_memory() -> None:
    _check_change_queries(memory_stores())


@pytest.mark.integration
def test_change_queries_on_firestore(firestore_client: Any) -> None:
    _check_change_queries(firestore_stores(firestore_client))


@pytest.mark.integration
def test_a_quiet_held_account_costs_no_firestore_read(firestore_client: Any, tmp_path: Path) -> None:
    clock = Clock()
    vault_store = FirestoreVaultStore(firestore_client)
    vault = Vault(vault_store, LocalFileKek(tmp_path / "kek.json"), clock=clock)
    services = build_services(config(), firestore_stores(firestore_client), VaultSessions(vault, vault_store),
                              VaultSealer(vault.kek), RecordingPublisher(), clock=clock)
    ids = [services.accounts.add(ALICE, AddAccountInput(f"+4070{i:07d}", PairingMethod.CODE))["accountId"]
           for i in range(20)]
    connector = FakeConnector("c-1", capacity=len(ids))
    connector.sync(services)
    assert sorted(connector.held) == sorted(ids)
    clock.advance(5)
    connector.sync(services, not_due=ids)
    rpcs = RpcCounter(firestore_client)
    clock.advance(5)
    response = connector.sync(services, not_due=ids)
    assert (response["renewed"], response["lost"], response["commands"]) == ([], [], [])
    # The connector record (one get), the three change queries, the record written back: no document of
    # the twenty held accounts or their leases is read.
    assert rpcs.take() == Counter({"batch_get_documents": 1, "run_query": 3, "commit": 1})
    services.accounts.reconnect(ALICE, ids[7])
    rpcs.take()
    clock.advance(5)
    response = connector.sync(services, not_due=ids)
    assert response["commands"] == [{"accountId": ids[7], "action": "reconnect"}]
    assert rpcs.take()["batch_get_documents"] == 2, "the connector record, and the changed account's lease"
