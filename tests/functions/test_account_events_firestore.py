"""The account-event store and alert closing on the Firestore emulator: what they read and write,
and in how many RPCs (a connection event is one read and one commit)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from functions.alerts import Alerter, alert_id, alert_ids
from functions.connection_events import ConnectionEventRecorder
from functions.errors import StaleMessageError
from functions.firestore_stores import firestore_stores
from functions.model import Account, AccountStatus, Alert
from functions.stores import AccountEventWrite, Stores
from shared.connector_sync import PairingMethod
from shared.events import ConnectionState, ConnectionUpdate, ConnectionUpdates
from testkit.firestore_rpcs import RpcCounter
from testkit.functions_world import T0, Clock, RecordingPublisher, world

pytestmark = pytest.mark.integration

LINKED = Account(account_id="a1", owner_uid="alice", phone_number="+40700000001", method=PairingMethod.QR,
                 status=AccountStatus.RECONNECTING, serve=True, created_at=T0, updated_at=T0,
                 linked_jid="40700000001:1@s.whatsapp.net", claimable_after=T0)


def _alert(account_id: str, kind: str) -> Alert:
    return Alert(alert_id(account_id, kind), account_id, kind, f"{kind} on {account_id}", T0)


def _seed(client: Any) -> Stores:
    """a1 linked and leased (generation 1); alerts: a1 logged_out open, a1 replaced closed, a2 logged_out open."""
    stores = firestore_stores(client)
    stores.accounts.create(LINKED)
    assert stores.leases.claim("a1", "c-1", T0, 60) is not None
    for alert in (_alert("a1", "logged_out"), _alert("a1", "replaced"), _alert("a2", "logged_out")):
        assert stores.alerts.raise_alert(alert)
    assert stores.alerts.close("a1", ["replaced"]) == 1
    return stores


def _update_times(client: Any, *paths: str) -> list[Any]:
    return [client.document(path).get().update_time for path in paths]


def test_read_takes_account_lease_and_open_alerts_in_one_call(firestore_client: Any) -> None:
    stores = _seed(firestore_client)
    rpcs = RpcCounter(firestore_client)
    wanted = [*alert_ids("a1", ("logged_out", "replaced", "stale")), alert_id("a2", "logged_out")]
    view = stores.account_events.read("a1", with_lease=True, alert_ids=wanted)
    assert rpcs.take() == {"batch_get_documents": 1}
    assert view.account == LINKED
    assert view.lease is not None and (view.lease.connector_id, view.lease.generation) == ("c-1", 1)
    # Closed (replaced), missing (stale) and another account's alert are not this account's open ones.
    assert view.open_alert_ids == ("a1.logged_out",)
    plain = stores.account_events.read("a1")
    assert (plain.account, plain.lease, plain.open_alert_ids) == (LINKED, None, ())
    assert stores.account_events.read("missing", with_lease=True).account is None
    assert rpcs.take() == {"batch_get_documents": 2}


def test_write_updates_the_account_and_closes_alerts_in_one_commit(firestore_client: Any) -> None:
    stores = _seed(firestore_client)
    untouched = _update_times(firestore_client, "alerts/a1.replaced", "alerts/a2.logged_out")
    rpcs = RpcCounter(firestore_client)
    assert stores.account_events.write("a1", {"status": AccountStatus.CONNECTED, "last_connected_at": T0},
                                       ["a1.logged_out"])
    assert rpcs.take() == {"commit": 1}
    account = stores.accounts.get("a1")
    assert account is not None and (account.status, account.last_connected_at) == (AccountStatus.CONNECTED, T0)
    assert [a.alert_id for a in stores.alerts.open_alerts()] == ["a2.logged_out"]
    assert _update_times(firestore_client, "alerts/a1.replaced", "alerts/a2.logged_out") == untouched


def test_write_to_an_account_gone_meanwhile_closes_the_alerts_and_creates_nothing(firestore_client: Any) -> None:
    stores = _seed(firestore_client)
    stores.accounts.delete("a1")
    assert not stores.account_events.write("a1", {"status": AccountStatus.CONNECTED}, ["a1.logged_out", "a1.gone"])
    assert stores.accounts.get("a1") is None
    assert not firestore_client.document("alerts/a1.gone").get().exists
    assert [a.alert_id for a in stores.alerts.open_alerts()] == ["a2.logged_out"]


def test_write_with_an_unknown_field_writes_nothing(firestore_client: Any) -> None:
    stores = _seed(firestore_client)
    with pytest.raises(ValueError, match="unknown account fields"):
        stores.account_events.write("a1", {"nope": 1}, ["a1.logged_out"])
    assert sorted(a.alert_id for a in stores.alerts.open_alerts()) == ["a1.logged_out", "a2.logged_out"]


def test_close_ids_reads_by_id_and_commits_only_what_is_open(firestore_client: Any) -> None:
    stores = _seed(firestore_client)
    rpcs = RpcCounter(firestore_client)
    assert stores.alerts.close_ids("a1", ["a1.replaced", "a1.stale", "a2.logged_out"]) == 0
    assert rpcs.take() == {"batch_get_documents": 1}, "nothing open: no write"
    assert stores.alerts.close_ids("a1", ["a1.logged_out", "a1.replaced"]) == 1
    assert rpcs.take() == {"batch_get_documents": 1, "commit": 1}
    assert [a.alert_id for a in stores.alerts.open_alerts()] == ["a2.logged_out"]


def test_alerter_resolves_kinds_by_id(firestore_client: Any) -> None:
    stores = _seed(firestore_client)
    alerter = Alerter(stores.alerts, RecordingPublisher(), Clock())
    rpcs = RpcCounter(firestore_client)
    assert alerter.resolve("a1", ("logged_out", "replaced")) == 1
    assert rpcs.take() == {"batch_get_documents": 1, "commit": 1}
    assert alerter.resolve("a2") == 1  # every kind: a query
    assert stores.alerts.open_alerts() == []


def test_connection_events_cost_one_read_and_one_commit(firestore_client: Any, tmp_path: Path) -> None:
    stores = _seed(firestore_client)
    clock = Clock()
    recorder = ConnectionEventRecorder(stores, world(tmp_path).services.vault,
                                       Alerter(stores.alerts, RecordingPublisher(), clock), clock)
    rpcs = RpcCounter(firestore_client)
    for state in (ConnectionState.CONNECTING, ConnectionState.OPEN):
        recorder.handle(ConnectionUpdate("a1", "c-1", 1, T0, state).to_json())
        assert rpcs.take() == {"batch_get_documents": 1, "commit": 1}, state
    account = stores.accounts.get("a1")
    assert account is not None and account.status is AccountStatus.CONNECTED
    assert [a.alert_id for a in stores.alerts.open_alerts()] == ["a2.logged_out"]

    taken_over = stores.leases.claim("a1", "c-2", T0 + timedelta(seconds=61), 60)  # the 60 s lease ran out
    assert taken_over is not None and taken_over.generation == 2
    before = _update_times(firestore_client, "accounts/a1", "leases/a1", "alerts/a1.logged_out")
    rpcs.take()
    with pytest.raises(StaleMessageError):
        recorder.handle(ConnectionUpdate("a1", "c-1", 1, T0, ConnectionState.CLOSED, "connection_lost").to_json())
    assert rpcs.take() == {"batch_get_documents": 1}, "a stale event writes nothing"
    assert _update_times(firestore_client, "accounts/a1", "leases/a1", "alerts/a1.logged_out") == before


def test_read_many_and_write_many_take_one_call_each(firestore_client: Any) -> None:
    stores = _seed(firestore_client)
    others = [f"b{i:03d}" for i in range(150)]
    for account_id in others:
        stores.accounts.create(dataclasses.replace(LINKED, account_id=account_id))
    rpcs = RpcCounter(firestore_client)
    views = stores.account_events.read_many(["a1", *others, "missing"], {"a1": alert_ids("a1", ("logged_out", "x"))})
    assert rpcs.take() == {"batch_get_documents": 1}
    assert views["a1"].open_alert_ids == ("a1.logged_out",) and views["a1"].lease is not None
    assert views["missing"].account is None and views[others[0]].account is not None
    assert views[others[0]].lease is None and views[others[0]].open_alert_ids == ()
    results = stores.account_events.write_many(
        [AccountEventWrite("a1", {"status": AccountStatus.CONNECTED}, ("a1.logged_out",)),
         *(AccountEventWrite(a, {"status": AccountStatus.CONNECTING}) for a in others)])
    assert rpcs.take() == {"commit": 1}
    assert results == {"a1": True, **dict.fromkeys(others, True)}
    assert {a.status for a in stores.accounts.get_many(others).values()} == {AccountStatus.CONNECTING}
    assert [a.alert_id for a in stores.alerts.open_alerts()] == ["a2.logged_out"]


def test_write_many_with_an_account_gone_writes_the_others(firestore_client: Any) -> None:
    stores = _seed(firestore_client)
    stores.accounts.create(dataclasses.replace(LINKED, account_id="a3"))
    results = stores.account_events.write_many(
        [AccountEventWrite("gone", {"status": AccountStatus.CONNECTED}),
         AccountEventWrite("a1", {"status": AccountStatus.CONNECTED}, ("a1.logged_out",)),
         AccountEventWrite("a3", {"status": AccountStatus.STOPPED})])
    assert results == {"gone": False, "a1": True, "a3": True}
    assert stores.accounts.get("gone") is None
    assert [stores.accounts.get(a).status for a in ("a1", "a3")] == [  # type: ignore[union-attr]
        AccountStatus.CONNECTED, AccountStatus.STOPPED]
    assert [a.alert_id for a in stores.alerts.open_alerts()] == ["a2.logged_out"]


def test_write_many_splits_what_one_commit_cannot_hold(firestore_client: Any) -> None:
    stores = firestore_stores(firestore_client)
    ids = [f"c{i:03d}" for i in range(450)]
    batch = firestore_client.batch()
    for account_id in ids:
        batch.set(firestore_client.document(f"accounts/{account_id}"),
                  {"ownerUid": "alice", "phoneNumber": "+40700000001", "method": "qr", "status": "reconnecting",
                   "createdAt": T0})
    batch.commit()
    rpcs = RpcCounter(firestore_client)
    stores.account_events.write_many([AccountEventWrite(a, {"status": AccountStatus.CONNECTED}) for a in ids])
    assert rpcs.take() == {"commit": 2}
    assert {a.status for a in stores.accounts.get_many(ids).values()} == {AccountStatus.CONNECTED}


def test_a_batch_of_updates_costs_one_read_and_one_commit(firestore_client: Any, tmp_path: Path) -> None:
    stores = _seed(firestore_client)
    ids = ["a1", *(f"b{i:03d}" for i in range(99))]
    for account_id in ids[1:]:
        stores.accounts.create(dataclasses.replace(LINKED, account_id=account_id))
    stores.leases.claim_many(ids[1:], "c-1", T0, 60)
    clock = Clock()
    recorder = ConnectionEventRecorder(stores, world(tmp_path).services.vault,
                                       Alerter(stores.alerts, RecordingPublisher(), clock), clock)
    updates = [ConnectionUpdate(a, "c-1", 1, T0, state) for state in (ConnectionState.CONNECTING, ConnectionState.OPEN)
               for a in ids]
    rpcs = RpcCounter(firestore_client)
    recorder.handle(ConnectionUpdates("c-1", tuple(updates)).to_json())
    assert rpcs.take() == {"batch_get_documents": 1, "commit": 1}
    assert {a.status for a in stores.accounts.get_many(ids).values()} == {AccountStatus.CONNECTED}
    assert [a.alert_id for a in stores.alerts.open_alerts()] == ["a2.logged_out"]
