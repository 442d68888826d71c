"""Scheduled health check, cleanup and the metrics callable over memory stores and a real vault."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

from functions.metrics import metrics
from functions.model import AccountStatus, Health
from testkit.functions_world import ADMIN, ALICE, BOB, FakeConnector, World, registered_state, world

DAY_S = 86400


def _stored(w: World, phone: str, seed: int, caller: object = ALICE) -> str:
    account_id = w.add(caller, phone)  # type: ignore[arg-type]
    c = FakeConnector(f"c-{seed}")
    c.sync(w.services)
    w.vault.save(account_id, registered_state(seed), c.held[account_id])
    w.services.stores.accounts.update(account_id, {"status": AccountStatus.CONNECTED,
                                                   "linked_jid": f"{phone[1:]}:7@s.whatsapp.net"})
    return account_id


def _health(w: World, account_id: str) -> Health | None:
    account = w.services.stores.accounts.get(account_id)
    return None if account is None else account.health


def test_health_check_classifies_each_session_and_alerts_once(tmp_path: Path) -> None:
    w = world(tmp_path)
    ok = _stored(w, "+40700000001", 1)
    fell_back = _stored(w, "+40700000002", 2)
    w.vault.save(fell_back, registered_state(22), 1)
    rec = w.vault_store.raw_versions(fell_back)[2]
    w.vault_store.put_version(fell_back, dataclasses.replace(rec, ciphertext=b"\x01" * len(rec.ciphertext)))
    broken = _stored(w, "+40700000003", 3)
    rec = w.vault_store.raw_versions(broken)[1]
    w.vault_store.put_version(broken, dataclasses.replace(rec, ciphertext=b"\x01" * len(rec.ciphertext)))
    logged_out = _stored(w, "+40700000004", 4)
    w.services.stores.accounts.update(logged_out, {"status": AccountStatus.NEEDS_PAIRING})
    missing = w.add(ALICE, "+40700000005")
    w.services.stores.accounts.update(missing, {"status": AccountStatus.CONNECTED, "linked_jid": "x@s.whatsapp.net"})

    summary = w.services.health.run()
    assert summary["sessions"] == 4
    assert summary["byHealth"] == {"ok": 1, "fell_back": 1, "cannot_decrypt": 1, "logged_out": 1, "missing": 1}
    assert summary["problems"] == 4
    assert [_health(w, a) for a in (ok, fell_back, broken, logged_out, missing)] == [
        Health.OK, Health.FELL_BACK, Health.CANNOT_DECRYPT, Health.LOGGED_OUT, Health.MISSING]
    assert w.vault_store.get_head(broken).health["status"] == "cannot_decrypt"  # type: ignore[union-attr]
    kinds = sorted(a[1]["kind"] for a in w.alerts_out.published)
    assert kinds == ["cannot_decrypt", "fell_back", "logged_out", "missing"]
    w.services.health.run()
    assert len(w.alerts_out.published) == 4, "a lasting problem is alerted once"
    stored = w.services.stores.status.health_summary()
    assert stored is not None and stored.problems == 4


def test_stale_sessions_are_reported_and_recover(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _stored(w, "+40700000001", 1)
    w.clock.advance(15 * DAY_S)
    assert w.services.health.run()["byHealth"] == {"stale": 1}
    assert [a.kind for a in w.services.stores.alerts.open_alerts()] == ["stale"]
    w.vault.save(account_id, registered_state(5), 1)
    assert w.services.health.run()["byHealth"] == {"ok": 1}
    assert w.services.stores.alerts.open_alerts() == []


def test_cleanup_expires_pairing_and_purges_removed_after_grace(tmp_path: Path) -> None:
    w = world(tmp_path, removed_grace_s=7 * DAY_S, pairing_ttl_s=600.0)
    pairing = w.add(ALICE, "+40700000001")
    removed = _stored(w, "+40700000002", 2)
    w.services.accounts.remove(ALICE, removed)
    w.clock.advance(601)
    assert w.services.cleaner.run() == {"purged": 0, "pairingExpired": 1, "orphanSessions": 0, "pruned": 0,
                                        "history": 0}
    assert w.services.stores.accounts.get(pairing).status is AccountStatus.PAIRING_EXPIRED  # type: ignore[union-attr]
    assert w.vault_store.get_head(removed) is not None, "kept during the grace period"
    w.clock.advance(7 * DAY_S)
    assert w.services.cleaner.run()["purged"] == 1
    assert w.services.stores.accounts.get(removed) is None
    assert w.vault_store.get_head(removed) is None
    assert w.services.stores.leases.get(removed) is None


def test_cleanup_deletes_orphaned_sessions_only_after_grace(tmp_path: Path) -> None:
    w = world(tmp_path, removed_grace_s=DAY_S)
    w.vault.save("acc_orphan", registered_state(1), 1)
    assert w.services.cleaner.run()["orphanSessions"] == 0
    w.clock.advance(DAY_S + 1)
    assert w.services.cleaner.run()["orphanSessions"] == 1
    assert w.vault_store.get_head("acc_orphan") is None


def test_metrics_are_scoped_to_the_caller_unless_admin(tmp_path: Path) -> None:
    w = world(tmp_path)
    mine = _stored(w, "+40700000001", 1)
    theirs = _stored(w, "+40700000002", 2, BOB)
    w.add(ALICE, "+40700000003")
    for c in ("c-1", "c-2"):
        w.services.sync.sync(FakeConnector(c).request(release={}))  # nothing claimable: leases live
    w.clock.advance(31)
    FakeConnector("c-9").sync(w.services)  # restores both stored accounts
    w.services.stores.accounts.update(theirs, {"status": AccountStatus.NEEDS_PAIRING})
    w.services.health.run()
    mine_view = metrics(w.services.stores, w.services.vault, ALICE, w.clock)
    assert mine_view["accounts"] == 2
    assert mine_view["accountsByStatus"] == {"connected": 1, "pairing": 1}
    assert mine_view["sessionsStored"] == 1
    assert mine_view["restores24h"]["total"] == 1
    assert mine_view["restores24h"]["successRate"] == 1.0
    assert mine_view["openAlerts"] == 0
    assert mine_view["lastHealthCheck"]["sessions"] == 1, "the caller's own sessions, not the fleet's"
    assert mine_view["lastHealthCheck"]["byHealth"] == {"ok": 1}
    admin_view = metrics(w.services.stores, w.services.vault, ADMIN, w.clock)
    assert admin_view["accounts"] == 3 and admin_view["sessionsStored"] == 2
    assert admin_view["restores24h"]["restored"] == 2
    assert admin_view["openAlerts"] == 1 and admin_view["alerts"][0]["accountId"] == theirs
    connectors = {c["connectorId"]: c for c in admin_view["connectors"]}
    assert connectors["c-9"]["live"] and connectors["c-9"]["held"] == 3  # two restored, one to pair
    assert "connectors" not in mine_view
    w.clock.advance(120)
    later = metrics(w.services.stores, w.services.vault, ADMIN, w.clock)
    assert not any(c["live"] for c in later["connectors"])
    assert mine != theirs


def test_an_unpublishable_alert_is_still_recorded(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _stored(w, "+40700000001", 1)

    def broken(data: bytes, attributes: object) -> None:
        raise ConnectionError("topic unreachable")

    w.alerts_out.publish = broken  # type: ignore[method-assign]
    w.clock.advance(15 * DAY_S)
    assert w.services.health.run()["byHealth"] == {"stale": 1}
    assert [a.account_id for a in w.services.stores.alerts.open_alerts()] == [account_id]


def test_cleanup_prunes_orphaned_versions(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _stored(w, "+40700000001", 1)
    record = w.vault_store.raw_versions(account_id)[1]
    w.vault_store.put_version(account_id, dataclasses.replace(record, version=0))  # left by a torn delete
    assert w.services.cleaner.run()["pruned"] == 1
    assert set(w.vault_store.raw_versions(account_id)) == {1}
    assert w.vault.restore(account_id).version == 1


def test_cleanup_keeps_thirty_days_of_history(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _stored(w, "+40700000001", 1)
    w.clock.advance(31)
    FakeConnector("c-late").sync(w.services)  # one restore outcome
    alerter_store = w.services.stores.alerts
    from functions.model import Alert

    alerter_store.raise_alert(Alert("old.stale", account_id, "stale", "old", w.clock.now))
    alerter_store.close(account_id)
    hour = w.clock.now.replace(minute=0, second=0, microsecond=0)
    w.services.stores.status.count_reconnects(hour, 4)  # the dashboard's hourly count
    w.clock.advance(29 * DAY_S)
    assert w.services.cleaner.run()["history"] == 0
    w.clock.advance(2 * DAY_S)
    assert w.services.cleaner.run()["history"] == 3
    assert w.services.stores.outcomes.since(w.clock.now - 365 * timedelta(days=1)) == []
    assert w.services.stores.status.reconnects_since(hour - timedelta(days=1)) == {}


def _store_invalid_state(w: World, account_id: str, version: int) -> None:
    """Replace a version with one that decrypts to JSON that is no auth state."""
    from shared.vault import crypto

    record = w.vault_store.raw_versions(account_id)[version]
    kek_version = record.header.kek_version
    header, ciphertext = crypto.encrypt(crypto.prepare(b'{"creds":{}}'),
                                        crypto.Binding(account_id, record.version, record.generation),
                                        kek_version, w.vault.kek.key(kek_version))
    w.vault_store.put_version(account_id, dataclasses.replace(record, header=header, ciphertext=ciphertext))


def test_a_session_that_decrypts_to_no_valid_state_is_invalid(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _stored(w, "+40700000001", 1)
    _store_invalid_state(w, account_id, 1)
    assert w.services.health.run()["byHealth"] == {"invalid": 1}
    assert _health(w, account_id) is Health.INVALID
    assert [a[1]["kind"] for a in w.alerts_out.published] == ["invalid"]


def test_sessions_of_removed_accounts_are_not_checked_or_alerted(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _stored(w, "+40700000001", 1)
    assert w.services.accounts.remove(ALICE, account_id)["status"] == "removing"
    w.clock.advance(15 * DAY_S)  # would be stale
    summary = w.services.health.run()
    assert (summary["sessions"], summary["problems"], summary["byHealth"]) == (0, 0, {})
    assert w.alerts_out.published == []


def test_cleanup_deletes_versions_left_without_a_head(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _stored(w, "+40700000001", 1)
    record = w.vault_store.raw_versions(account_id)[1]
    # a delete interrupted after the head went: the version is invisible to list_accounts()
    w.vault_store.put_version("acc_torn", dataclasses.replace(record, version=1))
    assert list(w.vault.list_orphaned_accounts()) == ["acc_torn"]
    summary = w.services.cleaner.run()
    assert (summary["orphanSessions"], summary["pruned"]) == (1, 1)
    assert list(w.vault.list_orphaned_accounts()) == []
    assert w.vault.restore(account_id).version == 1  # the live account is untouched


def test_metrics_timeline_has_restores_durations_and_reconnects_per_hour(tmp_path: Path) -> None:
    from shared.events import ConnectionState, ConnectionUpdate

    w = world(tmp_path)
    first = _stored(w, "+40700000011", 1)
    _stored(w, "+40700000012", 2)
    w.clock.advance(31)
    FakeConnector("c-t").sync(w.services)  # restores both
    w.clock.advance(4)
    w.services.stores.accounts.update(first, {"last_connected_at": w.clock()})  # connected 4 s after the claim
    lease = w.services.stores.leases.get(first)
    assert lease is not None
    for _ in range(3):
        w.services.events.handle(ConnectionUpdate(
            account_id=first, state=ConnectionState.RECONNECTING, at=w.clock(), reason="connection_lost",
            connector_id="c-t", generation=lease.generation).to_json())
    view = metrics(w.services.stores, w.services.vault, ADMIN, w.clock)
    timeline = view["timeline"]
    assert len(timeline) == 24
    now_bucket = timeline[-1]  # the hour the clock is in
    assert sum(h["restored"] for h in timeline) == 2 == now_bucket["restored"]
    assert now_bucket["restoreSecondsP50"] == 4.0  # only the account that connected counts
    assert sum(h["reconnects"] for h in timeline) == 3 == now_bucket["reconnects"]
    assert all(h["reconnects"] == 0 for h in metrics(w.services.stores, w.services.vault, ALICE,
                                                      w.clock)["timeline"])  # counted for all: admins only


def test_metrics_for_a_user_never_read_the_fleet(tmp_path: Path) -> None:
    """Issue 16 item 5: getMetrics for a non-admin read every session head, restore outcome and open alert
    and filtered in memory. Now it asks the stores about the caller's accounts only."""
    w = world(tmp_path)
    mine = _stored(w, "+40700000001", 1)
    _stored(w, "+40700000002", 2, BOB)
    fleet_wide: list[str] = []
    stores, vault = w.services.stores, w.services.vault

    def refuse(name: str, original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            fleet_wide.append(name)
            return original(*args, **kwargs)
        return call

    vault.list_accounts = refuse("vault.list_accounts", vault.list_accounts)  # type: ignore[method-assign]
    stores.outcomes.since = refuse("outcomes.since", stores.outcomes.since)  # type: ignore[method-assign]
    stores.status.health_summary = refuse("health_summary", stores.status.health_summary)  # type: ignore[method-assign]
    original_alerts = stores.alerts.open_alerts

    def alerts(account_ids: Any = None) -> Any:
        if account_ids is None:
            fleet_wide.append("alerts.open_alerts(all)")
        return original_alerts(account_ids)

    stores.alerts.open_alerts = alerts  # type: ignore[method-assign]
    original_list = stores.accounts.list_accounts

    def listing(owner_uid: Any = None) -> Any:
        if owner_uid is None:
            fleet_wide.append("accounts.list_accounts(all)")
        return original_list(owner_uid)

    stores.accounts.list_accounts = listing  # type: ignore[method-assign]
    view = metrics(stores, vault, ALICE, w.clock)
    assert fleet_wide == []
    assert view["accounts"] == 1 and view["sessionsStored"] == 1 and mine
    metrics(stores, vault, ADMIN, w.clock)
    assert "vault.list_accounts" in fleet_wide and "outcomes.since" in fleet_wide
