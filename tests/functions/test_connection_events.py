"""Recording connection events: which alerts an event closes, fencing, and the calls an event costs.

The recorder is built here over the world's memory stores wrapped in :class:`CountingStores`, so a
test sees every store call an event makes (the alerter's included)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from functions.alerts import Alerter, alert_id, alert_ids
from functions.connection_events import ConnectionEventRecorder
from functions.errors import StaleMessageError
from functions.model import AccountStatus, Alert
from functions.stores import Stores
from shared.events import ConnectionState, ConnectionUpdate, ConnectionUpdates, PairingCode, PairingSuccess
from testkit.functions_world import (
    T0,
    FakeConnector,
    World,
    registered_state,
    seal_snapshot,
    snapshot_attrs,
    world,
)
from testkit.memory_stores import MemoryAlertStore


@dataclasses.dataclass(frozen=True)
class StoreCall:
    store: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class _Counted:
    """Forwards attribute access to a store, logging every method call."""

    def __init__(self, name: str, store: Any, log: list[StoreCall]) -> None:
        self._name, self._store, self._log = name, store, log

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._store, attr)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self._log.append(StoreCall(self._name, attr, args, kwargs))
            return target(*args, **kwargs)

        return call


class CountingStores:
    def __init__(self, stores: Stores) -> None:
        self.log: list[StoreCall] = []
        self.stores = Stores(**{f.name: _Counted(f.name, getattr(stores, f.name), self.log)
                                for f in dataclasses.fields(stores)})

    def take_calls(self) -> list[StoreCall]:
        taken, self.log[:] = list(self.log), []
        return taken

    def take(self) -> list[tuple[str, str]]:
        """(store, method) of every call since the last take."""
        return [(c.store, c.method) for c in self.take_calls()]


@dataclasses.dataclass
class Bench:
    w: World
    counted: CountingStores
    recorder: ConnectionEventRecorder
    account_id: str

    @property
    def alerts(self) -> MemoryAlertStore:
        store = self.w.services.stores.alerts
        assert isinstance(store, MemoryAlertStore)
        return store

    def record(self, state: ConnectionState, generation: int = 1, reason: str | None = None) -> None:
        self.recorder.handle(ConnectionUpdate(self.account_id, "c-1", generation, self.w.clock.now, state,
                                              reason).to_json())

    def status(self) -> AccountStatus:
        account = self.w.services.stores.accounts.get(self.account_id)
        assert account is not None
        return account.status

    def raise_alert(self, account_id: str, kind: str, *, open_: bool = True) -> Alert:
        alert = Alert(alert_id(account_id, kind), account_id, kind, f"{kind} for {account_id}", T0, open_)
        assert self.alerts.raise_alert(alert)
        if not open_:
            self.alerts.close(account_id, [kind])
        return alert


def _linked_bench(tmp_path: Path) -> Bench:
    """An account linked (state saved) and held by ``c-1`` under generation 1, and a recorder
    counting its store calls."""
    w = world(tmp_path)
    account_id = w.add()
    FakeConnector("c-1").sync(w.services)
    w.services.events.handle(PairingSuccess(account_id, "40700000001:7@s.whatsapp.net", "c-1", 1).to_json())
    w.services.persister.handle(seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1)),
                                snapshot_attrs(account_id, 1, "c-1"))  # a takeover restores it
    counted = CountingStores(w.services.stores)
    recorder = ConnectionEventRecorder(counted.stores, w.services.vault,
                                       Alerter(counted.stores.alerts, w.alerts_out, w.clock), w.clock)
    return Bench(w, counted, recorder, account_id)


def _alert_states(b: Bench) -> dict[str, bool]:
    return {a.alert_id: a.open for a in b.alerts.all_alerts()}


def test_open_closes_the_logged_out_and_replaced_alerts_of_that_account_only(tmp_path: Path) -> None:
    b = _linked_bench(tmp_path)
    logged_out = b.raise_alert(b.account_id, "logged_out")
    replaced = b.raise_alert(b.account_id, "replaced")
    stale = b.raise_alert(b.account_id, "stale")
    elsewhere = b.raise_alert("acc_other", "logged_out")
    b.record(ConnectionState.OPEN)
    assert b.status() is AccountStatus.CONNECTED
    assert _alert_states(b) == {logged_out.alert_id: False, replaced.alert_id: False, stale.alert_id: True,
                                elsewhere.alert_id: True}


@pytest.mark.parametrize("state", [ConnectionState.CONNECTING, ConnectionState.RECONNECTING,
                                   ConnectionState.CLOSED, ConnectionState.STOPPED])
def test_states_other_than_open_leave_alerts_open(tmp_path: Path, state: ConnectionState) -> None:
    b = _linked_bench(tmp_path)
    alert = b.raise_alert(b.account_id, "logged_out")
    b.record(state)
    assert _alert_states(b) == {alert.alert_id: True}


def test_open_does_not_rewrite_an_alert_already_closed(tmp_path: Path) -> None:
    b = _linked_bench(tmp_path)
    closed = b.raise_alert(b.account_id, "replaced", open_=False)
    before = b.alerts.all_alerts()
    b.counted.take()
    b.record(ConnectionState.OPEN)
    [read, write] = b.counted.take_calls()
    assert read.kwargs["alert_ids"] == alert_ids(b.account_id, ("logged_out", "replaced", "client_outdated"))
    assert (write.method, write.args[2]) == ("write", ()), "a closed alert is not closed again"
    assert b.alerts.all_alerts() == before and not before[0].open and before[0].alert_id == closed.alert_id


def test_an_alert_raised_again_after_open_is_closed_by_the_next_open(tmp_path: Path) -> None:
    b = _linked_bench(tmp_path)
    b.record(ConnectionState.REPLACED, reason="replaced")
    assert (b.status(), _alert_states(b)) == (AccountStatus.REPLACED, {alert_id(b.account_id, "replaced"): True})
    b.record(ConnectionState.OPEN)
    assert _alert_states(b) == {alert_id(b.account_id, "replaced"): False}
    b.record(ConnectionState.REPLACED, reason="replaced")
    assert _alert_states(b) == {alert_id(b.account_id, "replaced"): True}, "a closed alert is raised anew"
    b.record(ConnectionState.OPEN)
    assert _alert_states(b) == {alert_id(b.account_id, "replaced"): False}


def _state_of(b: Bench) -> tuple[Any, ...]:
    stores = b.w.services.stores
    return (stores.accounts.get(b.account_id), stores.leases.get(b.account_id), sorted(
        b.alerts.all_alerts(), key=lambda a: a.alert_id))


@pytest.mark.parametrize("state", list(ConnectionState))
def test_an_event_from_an_older_generation_writes_nothing(tmp_path: Path, state: ConnectionState) -> None:
    b = _linked_bench(tmp_path)
    b.raise_alert(b.account_id, "logged_out")
    b.w.clock.advance(31)
    [claim] = FakeConnector("c-2").sync(b.w.services)["claimed"]
    assert claim["generation"] == 2
    before = _state_of(b)
    published = len(b.w.alerts_out.published)
    b.counted.take()
    with pytest.raises(StaleMessageError):
        b.record(state, generation=1, reason="stale")
    assert b.counted.take() == [("account_events", "read")], "a stale event only reads"
    assert _state_of(b) == before
    assert len(b.w.alerts_out.published) == published


def test_an_event_of_the_current_generation_is_recorded_after_a_takeover(tmp_path: Path) -> None:
    b = _linked_bench(tmp_path)
    b.raise_alert(b.account_id, "logged_out")
    b.w.clock.advance(31)
    FakeConnector("c-2").sync(b.w.services)
    b.record(ConnectionState.OPEN, generation=2)
    assert b.status() is AccountStatus.CONNECTED
    assert _alert_states(b) == {alert_id(b.account_id, "logged_out"): False}


EVENT = Callable[[Bench], None]


@pytest.mark.parametrize(("event", "calls"), [
    (lambda b: b.record(ConnectionState.CONNECTING), [("account_events", "read"), ("account_events", "write")]),
    (lambda b: b.record(ConnectionState.OPEN), [("account_events", "read"), ("account_events", "write")]),
    (lambda b: b.record(ConnectionState.CLOSED, reason="connection_lost"),
     [("account_events", "read"), ("account_events", "write")]),
    (lambda b: b.record(ConnectionState.REPLACED, reason="replaced"),
     [("account_events", "read"), ("alerts", "raise_alert"), ("account_events", "write")]),
], ids=["connecting", "open", "closed", "replaced"])
def test_an_event_costs_one_read_and_one_write(tmp_path: Path, event: EVENT, calls: list[tuple[str, str]]) -> None:
    b = _linked_bench(tmp_path)
    b.raise_alert(b.account_id, "logged_out")  # open has one to close: in the same write
    b.counted.take()
    event(b)
    assert b.counted.take() == calls


def test_pairing_events_read_account_and_lease_together(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add()
    FakeConnector("c-1").sync(w.services)
    counted = CountingStores(w.services.stores)
    recorder = ConnectionEventRecorder(counted.stores, w.services.vault,
                                       Alerter(counted.stores.alerts, w.alerts_out, w.clock), w.clock)
    recorder.handle(PairingCode(account_id, "ABCD1234", T0 + timedelta(minutes=1), "c-1", 1).to_json())
    assert counted.take_calls()[0].kwargs == {"with_lease": True}
    account = w.services.stores.accounts.get(account_id)
    assert account is not None and account.pairing is not None and account.pairing.code == "ABCD1234"
    recorder.handle(PairingSuccess(account_id, "40700000001:7@s.whatsapp.net", "c-1", 1).to_json())
    assert counted.take() == [("account_events", "read"), ("account_events", "write")]
    account = w.services.stores.accounts.get(account_id)
    assert account is not None and (account.status, account.pairing) == (AccountStatus.CONNECTING, None)


def _batch(*updates: ConnectionUpdate) -> bytes:
    return ConnectionUpdates("c-1", tuple(updates)).to_json()


def _linked_many(tmp_path: Path, n: int) -> tuple[Bench, list[str]]:
    """``n`` accounts linked (state saved) and held by ``c-1`` under generation 1."""
    w = world(tmp_path)
    ids = [w.add(phone=f"+4070000{i:04d}") for i in range(n)]
    FakeConnector("c-1", capacity=n).sync(w.services)
    for i, account_id in enumerate(ids):
        w.services.events.handle(PairingSuccess(account_id, f"4070000{i:04d}:7@s.whatsapp.net", "c-1", 1).to_json())
    counted = CountingStores(w.services.stores)
    recorder = ConnectionEventRecorder(counted.stores, w.services.vault,
                                       Alerter(counted.stores.alerts, w.alerts_out, w.clock), w.clock)
    return Bench(w, counted, recorder, ids[0]), ids


def _update(account_id: str, state: ConnectionState, generation: int = 1, at: Any = T0) -> ConnectionUpdate:
    return ConnectionUpdate(account_id, "c-1", generation, at, state, "replaced" if state is ConnectionState.REPLACED
                            else None)


def test_a_batch_of_updates_costs_one_read_and_one_write_for_all_its_accounts(tmp_path: Path) -> None:
    b, ids = _linked_many(tmp_path, 3)
    alerts = [b.raise_alert(ids[0], "logged_out"), b.raise_alert(ids[1], "stale")]
    b.counted.take()
    later = T0 + timedelta(seconds=2)
    b.recorder.handle(_batch(*(_update(a, ConnectionState.CONNECTING) for a in ids),
                             *(_update(a, ConnectionState.OPEN, at=later) for a in ids)))
    calls = b.counted.take_calls()
    assert [(c.store, c.method) for c in calls] == [("account_events", "read_many"), ("account_events", "write_many")]
    [writes] = calls[1].args
    assert {w.account_id: w.close_alert_ids for w in writes} == {ids[0]: (alerts[0].alert_id,), ids[1]: (), ids[2]: ()}
    for account_id in ids:
        account = b.w.services.stores.accounts.get(account_id)
        assert account is not None and (account.status, account.last_connected_at) == (AccountStatus.CONNECTED, later)
    assert _alert_states(b) == {alerts[0].alert_id: False, alerts[1].alert_id: True}


def test_a_batch_applies_each_accounts_updates_in_order(tmp_path: Path) -> None:
    b, ids = _linked_many(tmp_path, 2)
    b.recorder.handle(_batch(_update(ids[0], ConnectionState.OPEN), _update(ids[1], ConnectionState.OPEN),
                             _update(ids[0], ConnectionState.CLOSED)))
    statuses = {a: b.w.services.stores.accounts.get(a).status for a in ids}  # type: ignore[union-attr]
    assert statuses == {ids[0]: AccountStatus.RECONNECTING, ids[1]: AccountStatus.CONNECTED}
    assert b.w.services.stores.accounts.get(ids[0]).last_connected_at == T0  # type: ignore[union-attr]


def test_a_batch_drops_stale_and_unknown_updates_and_records_the_rest(tmp_path: Path) -> None:
    b, ids = _linked_many(tmp_path, 2)
    for i, account_id in enumerate(ids):
        b.w.services.persister.handle(seal_snapshot(b.w.vault, account_id, 1, "c-1", registered_state(i)),
                                      snapshot_attrs(account_id, 1, "c-1"))
    b.w.clock.advance(31)
    claims = FakeConnector("c-2").sync(b.w.services)["claimed"]
    assert sorted((c["accountId"], c["generation"]) for c in claims) == sorted((a, 2) for a in ids)
    before = b.w.services.stores.accounts.get(ids[1])
    b.recorder.handle(_batch(_update(ids[1], ConnectionState.OPEN, generation=1),
                             _update("acc_unknown", ConnectionState.OPEN),
                             _update(ids[0], ConnectionState.CLOSED, generation=2)))
    assert b.w.services.stores.accounts.get(ids[1]) == before, "the stale update wrote nothing"
    assert b.w.services.stores.accounts.get(ids[0]).status is AccountStatus.RECONNECTING  # type: ignore[union-attr]


def test_a_batch_of_stale_updates_writes_nothing(tmp_path: Path) -> None:
    b = _linked_bench(tmp_path)
    b.raise_alert(b.account_id, "logged_out")
    b.w.clock.advance(31)
    FakeConnector("c-2").sync(b.w.services)
    before = _state_of(b)
    b.counted.take()
    b.recorder.handle(_batch(_update(b.account_id, ConnectionState.OPEN),
                             _update(b.account_id, ConnectionState.CLOSED)))
    assert b.counted.take() == [("account_events", "read_many")]
    assert _state_of(b) == before


def test_an_alert_closed_and_raised_again_in_one_batch_stays_open(tmp_path: Path) -> None:
    b = _linked_bench(tmp_path)
    b.raise_alert(b.account_id, "replaced")
    replaced = alert_id(b.account_id, "replaced")
    published = len(b.w.alerts_out.published)
    b.recorder.handle(_batch(_update(b.account_id, ConnectionState.OPEN),
                             _update(b.account_id, ConnectionState.REPLACED)))
    assert (b.status(), _alert_states(b)) == (AccountStatus.REPLACED, {replaced: True})
    assert len(b.w.alerts_out.published) == published + 1, "raised anew, so published again"
    b.recorder.handle(_batch(_update(b.account_id, ConnectionState.REPLACED),
                             _update(b.account_id, ConnectionState.OPEN)))
    assert (b.status(), _alert_states(b)) == (AccountStatus.CONNECTED, {replaced: False})


def test_the_first_405_raises_an_alert_that_names_the_fix(tmp_path: Path) -> None:
    """Issue 16 item 14: every account closes with 405 client_outdated when WhatsApp stops accepting the
    announced version; the alert says which setting fixes it, and the account's next open closes it."""
    from shared.events import ConnectionState, ConnectionUpdate

    w = world(tmp_path)
    account_id = w.add()
    connector = FakeConnector("c-1")
    connector.sync(w.services)
    generation = connector.held[account_id]
    w.services.events.handle(ConnectionUpdate(account_id, "c-1", generation, T0, ConnectionState.OPEN).to_json())
    w.services.events.handle(ConnectionUpdate(account_id, "c-1", generation, T0, ConnectionState.STOPPED,
                                              "client_outdated", 405).to_json())
    [alert] = w.services.stores.alerts.open_alerts([account_id])
    assert alert.kind == "client_outdated"
    assert "KEEPER_WA_VERSION" in alert.message and "restart" in alert.message
    w.services.events.handle(ConnectionUpdate(account_id, "c-1", generation, T0, ConnectionState.STOPPED,
                                              "client_outdated", 405).to_json())
    assert len(w.services.stores.alerts.open_alerts([account_id])) == 1
    w.services.events.handle(ConnectionUpdate(account_id, "c-1", generation, T0, ConnectionState.OPEN).to_json())
    assert w.services.stores.alerts.open_alerts([account_id]) == []
