"""In-memory implementations of :mod:`functions.stores`, for unit tests and benchmarks.

Thread-safe with one lock per store, so the atomic operations stay atomic under a threaded server.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from functions.model import (
    GONE,
    Account,
    AccountStatus,
    Alert,
    ConnectorRecord,
    Lease,
    RestoreOutcome,
    claimed_lease,
    holds_number,
)
from functions.stores import AccountEventView, AccountEventWrite, AddRefusal, HealthSummary, Stores, VaultKeyRecord

_ACCOUNT_FIELDS = frozenset(f.name for f in dataclasses.fields(Account))


class MemoryAccountStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, Account] = {}

    def create(self, account: Account) -> None:
        with self._lock:
            if account.account_id in self._accounts:
                raise ValueError(f"account {account.account_id} exists")
            self._accounts[account.account_id] = account

    def add(self, account: Account, max_active: int) -> AddRefusal | None:
        with self._lock:
            rival = next((a for a in self._sorted() if a.phone_number == account.phone_number
                          and a.owner_uid == account.owner_uid and holds_number(a)), None)
            if rival is not None:
                return AddRefusal(rival=rival)
            if sum(1 for a in self._accounts.values()
                   if a.owner_uid == account.owner_uid and a.status not in GONE) >= max_active:
                return AddRefusal(limit_reached=True)
            if account.account_id in self._accounts:
                raise ValueError(f"account {account.account_id} exists")
            self._accounts[account.account_id] = account
            return None

    def get(self, account_id: str) -> Account | None:
        with self._lock:
            return self._accounts.get(account_id)

    def get_many(self, account_ids: Sequence[str]) -> dict[str, Account]:
        with self._lock:
            return {i: self._accounts[i] for i in account_ids if i in self._accounts}

    def _sorted(self) -> list[Account]:
        return sorted(self._accounts.values(), key=lambda a: (a.created_at, a.account_id))

    def list_accounts(self, owner_uid: str | None = None) -> list[Account]:
        with self._lock:
            return [a for a in self._sorted() if owner_uid is None or a.owner_uid == owner_uid]

    def find_by_phone(self, phone_number: str) -> list[Account]:
        with self._lock:
            return [a for a in self._sorted() if a.phone_number == phone_number]

    def count_active(self, owner_uid: str) -> int:
        with self._lock:
            return sum(1 for a in self._accounts.values() if a.owner_uid == owner_uid and a.status not in GONE)

    def claimable(self, now: datetime, limit: int) -> list[Account]:
        with self._lock:
            waiting = [a for a in self._accounts.values() if a.claimable_after is not None and a.claimable_after <= now]
        return sorted(waiting, key=lambda a: (a.claimable_after or now, a.account_id))[:limit]

    def removing(self, limit: int) -> list[Account]:
        with self._lock:
            return [a for a in self._sorted() if a.status is AccountStatus.REMOVING][:limit]

    def control_changed_since(self, at: datetime) -> list[Account]:
        with self._lock:
            return [a for a in self._accounts.values()
                    if a.control_changed_at is not None and a.control_changed_at >= at]

    def update(self, account_id: str, changes: Mapping[str, Any]) -> bool:
        unknown = set(changes) - _ACCOUNT_FIELDS
        if unknown:
            raise ValueError(f"unknown account fields {sorted(unknown)}")
        with self._lock:
            account = self._accounts.get(account_id)
            if account is None:
                return False
            self._accounts[account_id] = dataclasses.replace(account, **changes)
            return True

    def update_many(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        for account_id, account_changes in changes.items():
            self.update(account_id, account_changes)

    def delete(self, account_id: str) -> None:
        with self._lock:
            self._accounts.pop(account_id, None)


class MemoryLeaseStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leases: dict[str, Lease] = {}

    def get(self, account_id: str) -> Lease | None:
        with self._lock:
            return self._leases.get(account_id)

    def get_many(self, account_ids: Sequence[str]) -> dict[str, Lease]:
        with self._lock:
            return {i: self._leases[i] for i in account_ids if i in self._leases}

    def claim(self, account_id: str, connector_id: str, now: datetime, ttl_s: float) -> Lease | None:
        with self._lock:
            current = self._leases.get(account_id)
            if current is not None and current.live(now):
                return None
            lease = claimed_lease(current, account_id, connector_id, now, ttl_s)
            self._leases[account_id] = lease
            return lease

    def claim_many(self, account_ids: Sequence[str], connector_id: str, now: datetime,
                   ttl_s: float) -> dict[str, Lease | None]:
        return {account_id: self.claim(account_id, connector_id, now, ttl_s)
                for account_id in dict.fromkeys(account_ids)}

    def renew_many(self, held: Sequence[tuple[str, int]], connector_id: str, now: datetime,
                   ttl_s: float) -> dict[str, Lease | None]:
        return {account_id: self.renew(account_id, connector_id, generation, now, ttl_s)
                for account_id, generation in held}

    def renew(self, account_id: str, connector_id: str, generation: int, now: datetime,
              ttl_s: float) -> Lease | None:
        with self._lock:
            current = self._leases.get(account_id)
            if current is None or not current.held_by(connector_id, generation):
                return None
            lease = dataclasses.replace(current, expires_at=now + timedelta(seconds=ttl_s))
            self._leases[account_id] = lease
            return lease

    def release(self, account_id: str, connector_id: str, generation: int, now: datetime) -> bool:
        with self._lock:
            current = self._leases.get(account_id)
            if current is None or not current.held_by(connector_id, generation):
                return False
            self._leases[account_id] = dataclasses.replace(current, connector_id=None, expires_at=now)
            return True

    def release_many(self, held: Sequence[tuple[str, int]], connector_id: str, now: datetime) -> dict[str, bool]:
        return {account_id: self.release(account_id, connector_id, generation, now) for account_id, generation in held}

    def taken_since(self, at: datetime) -> list[Lease]:
        with self._lock:
            return [lease for lease in self._leases.values() if lease.taken_at is not None and lease.taken_at >= at]

    def ended_between(self, start: datetime, end: datetime) -> list[Lease]:
        with self._lock:
            return [lease for lease in self._leases.values() if start <= lease.expires_at <= end]

    def revoke(self, account_id: str, now: datetime) -> None:
        with self._lock:
            current = self._leases.get(account_id)
            if current is not None:
                self._leases[account_id] = dataclasses.replace(current, connector_id=None, expires_at=now)

    def delete(self, account_id: str) -> None:
        with self._lock:
            self._leases.pop(account_id, None)


class MemoryAlertStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: dict[str, Alert] = {}

    def raise_alert(self, alert: Alert) -> bool:
        with self._lock:
            current = self._alerts.get(alert.alert_id)
            if current is not None and current.open:
                return False
            self._alerts[alert.alert_id] = alert
            return True

    def close(self, account_id: str, kinds: Iterable[str] | None = None) -> int:
        wanted = None if kinds is None else set(kinds)
        closed = 0
        with self._lock:
            for alert_id, alert in list(self._alerts.items()):
                if alert.account_id == account_id and alert.open and (wanted is None or alert.kind in wanted):
                    self._alerts[alert_id] = dataclasses.replace(alert, open=False)
                    closed += 1
        return closed

    def close_ids(self, account_id: str, alert_ids: Sequence[str]) -> int:
        with self._lock:
            closing = self._open_of(account_id, alert_ids)
            for alert_id in closing:
                self._alerts[alert_id] = dataclasses.replace(self._alerts[alert_id], open=False)
            return len(closing)

    def open_among(self, account_id: str, alert_ids: Sequence[str]) -> tuple[str, ...]:
        """Which of ``alert_ids`` are open alerts of the account (for :class:`MemoryAccountEventStore`)."""
        with self._lock:
            return self._open_of(account_id, alert_ids)

    def _open_of(self, account_id: str, alert_ids: Sequence[str]) -> tuple[str, ...]:
        found = (self._alerts.get(i) for i in dict.fromkeys(alert_ids))
        return tuple(a.alert_id for a in found if a is not None and a.open and a.account_id == account_id)

    def open_alerts(self, account_ids: Sequence[str] | None = None) -> list[Alert]:
        with self._lock:
            return [a for a in self._alerts.values()
                    if a.open and (account_ids is None or a.account_id in account_ids)]

    def all_alerts(self) -> list[Alert]:
        with self._lock:
            return list(self._alerts.values())

    def delete_for(self, account_id: str) -> None:
        with self._lock:
            for alert_id in [i for i, a in self._alerts.items() if a.account_id == account_id]:
                del self._alerts[alert_id]

    def delete_closed_before(self, at: datetime) -> int:
        with self._lock:
            doomed = [i for i, a in self._alerts.items() if not a.open and a.created_at < at]
            for alert_id in doomed:
                del self._alerts[alert_id]
            return len(doomed)


class MemoryAccountEventStore:
    """:class:`functions.stores.AccountEventStore` over the other memory stores (one call each way,
    so a test can count an event's calls on the store bundle)."""

    def __init__(self, accounts: MemoryAccountStore, leases: MemoryLeaseStore, alerts: MemoryAlertStore) -> None:
        self._accounts = accounts
        self._leases = leases
        self._alerts = alerts

    def read(self, account_id: str, *, with_lease: bool = False, alert_ids: Sequence[str] = ()) -> AccountEventView:
        return AccountEventView(self._accounts.get(account_id),
                                self._leases.get(account_id) if with_lease else None,
                                self._alerts.open_among(account_id, alert_ids))

    def read_many(self, account_ids: Sequence[str], alert_ids: Mapping[str, Sequence[str]]
                  ) -> dict[str, AccountEventView]:
        return {a: self.read(a, with_lease=True, alert_ids=alert_ids.get(a, ())) for a in account_ids}

    def write(self, account_id: str, changes: Mapping[str, Any], close_alert_ids: Sequence[str] = ()) -> bool:
        updated = self._accounts.update(account_id, changes)  # checks the field names before any write
        self._alerts.close_ids(account_id, close_alert_ids)
        return updated

    def write_many(self, writes: Sequence[AccountEventWrite]) -> dict[str, bool]:
        unknown = {name for w in writes for name in w.changes} - _ACCOUNT_FIELDS
        if unknown:  # like Firestore, refuse the whole batch before writing any of it
            raise ValueError(f"unknown account fields {sorted(unknown)}")
        return {w.account_id: self.write(w.account_id, w.changes, w.close_alert_ids) for w in writes}


class MemoryOutcomeStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.outcomes: list[RestoreOutcome] = []

    def record(self, outcome: RestoreOutcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def record_many(self, outcomes: Sequence[RestoreOutcome]) -> None:
        with self._lock:
            self.outcomes.extend(outcomes)

    def since(self, at: datetime) -> list[RestoreOutcome]:
        with self._lock:
            return [o for o in self.outcomes if o.at >= at]

    def for_accounts(self, account_ids: Sequence[str], at: datetime) -> list[RestoreOutcome]:
        wanted = set(account_ids)
        with self._lock:
            return [o for o in self.outcomes if o.at >= at and o.account_id in wanted]

    def delete_before(self, at: datetime) -> int:
        with self._lock:
            kept = [o for o in self.outcomes if o.at >= at]
            removed = len(self.outcomes) - len(kept)
            self.outcomes = kept
            return removed


class MemoryStatusStore:
    def __init__(self) -> None:
        self.records: dict[str, ConnectorRecord] = {}
        self.summary: HealthSummary | None = None
        self.key: VaultKeyRecord | None = None
        self.reconnects: dict[datetime, int] = {}

    def record_connector(self, record: ConnectorRecord) -> None:
        self.records[record.connector_id] = record

    def count_reconnects(self, hour: datetime, count: int) -> None:
        self.reconnects[hour] = self.reconnects.get(hour, 0) + count

    def reconnects_since(self, since: datetime) -> dict[datetime, int]:
        return {hour: n for hour, n in self.reconnects.items() if hour >= since}

    def delete_reconnects_before(self, before: datetime) -> int:
        old = [hour for hour in self.reconnects if hour < before]
        for hour in old:
            del self.reconnects[hour]
        return len(old)

    def connectors(self) -> list[ConnectorRecord]:
        return list(self.records.values())

    def connector(self, connector_id: str) -> ConnectorRecord | None:
        return self.records.get(connector_id)

    def put_health_summary(self, summary: HealthSummary) -> None:
        self.summary = summary

    def health_summary(self) -> HealthSummary | None:
        return self.summary

    def put_vault_key(self, record: VaultKeyRecord) -> None:
        self.key = record

    def vault_key(self) -> VaultKeyRecord | None:
        return self.key


def memory_stores() -> Stores:
    accounts, leases, alerts = MemoryAccountStore(), MemoryLeaseStore(), MemoryAlertStore()
    return Stores(accounts, leases, alerts, MemoryOutcomeStore(), MemoryStatusStore(),
                  MemoryAccountEventStore(accounts, leases, alerts))
