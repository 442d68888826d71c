"""Storage interfaces of the functions, split by concern.

Each interface is small and typed; :mod:`functions.firestore_stores` implements them on Firestore
(the unit tests' in-memory ones are ``testkit/memory_stores.py``). Operations that must be atomic (lease
claim / renew / release, alert raise) are single methods so each implementation can make them so
(a Firestore transaction, a lock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from functions.model import Account, Alert, ConnectorRecord, Lease, RestoreOutcome


@dataclass(frozen=True, slots=True)
class AddRefusal:
    """Why :meth:`AccountStore.add` wrote nothing: ``rival`` manages the number, or the owner is at the limit."""

    rival: Account | None = None
    limit_reached: bool = False


#: Field names of :class:`functions.model.Account` that ``AccountStore.update`` accepts.
AccountChanges = Mapping[str, Any]


class AccountStore(Protocol):
    def create(self, account: Account) -> None:
        """Store a new account whatever else exists (imports, tests); :meth:`add` for new accounts."""
        ...

    def add(self, account: Account, max_active: int) -> AddRefusal | None:
        """Store ``account`` unless another account of the same owner holds its phone number
        (:func:`functions.model.holds_number`), or its owner already has ``max_active`` accounts that are
        not removing or removed; then nothing is written and the refusal says why. Numbers are per owner:
        another user's accounts are never consulted, so an add reveals nothing about them. Atomic: of
        concurrent adds of one owner, one per number succeeds and together they never pass ``max_active``."""
        ...

    def get(self, account_id: str) -> Account | None: ...

    def get_many(self, account_ids: Sequence[str]) -> dict[str, Account]: ...

    def list_accounts(self, owner_uid: str | None = None) -> list[Account]:
        """All accounts, or those of one owner, oldest first."""
        ...

    def find_by_phone(self, phone_number: str) -> list[Account]: ...

    def count_active(self, owner_uid: str) -> int:
        """How many of the owner's accounts are not removing or removed."""
        ...

    def claimable(self, now: datetime, limit: int) -> list[Account]:
        """Served accounts whose ``claimable_after`` is not after ``now``, longest waiting first."""
        ...

    def removing(self, limit: int) -> list[Account]:
        """Accounts in status ``removing``, oldest first, at most ``limit``."""
        ...

    def control_changed_since(self, at: datetime) -> list[Account]:
        """Accounts whose ``control_changed_at`` is not before ``at`` (any order): those a connector
        holding them must hear about (see :mod:`functions.model`)."""
        ...

    def update(self, account_id: str, changes: AccountChanges) -> bool:
        """Set the given Account fields; False when the account does not exist."""
        ...

    def update_many(self, changes: Mapping[str, AccountChanges]) -> None:
        """:meth:`update` for many accounts in batches; accounts that no longer exist are skipped."""
        ...

    def delete(self, account_id: str) -> None: ...


class LeaseStore(Protocol):
    def get(self, account_id: str) -> Lease | None: ...

    def get_many(self, account_ids: Sequence[str]) -> dict[str, Lease]: ...

    def claim(self, account_id: str, connector_id: str, now: datetime, ttl_s: float) -> Lease | None:
        """Take the account when nobody holds a live lease: generation + 1. None if taken."""
        ...

    def claim_many(self, account_ids: Sequence[str], connector_id: str, now: datetime,
                   ttl_s: float) -> dict[str, Lease | None]:
        """:meth:`claim` for many accounts, in as few round trips as possible; each claim stays atomic
        (one that another connector won in the meantime comes back None)."""
        ...

    def renew_many(self, held: Sequence[tuple[str, int]], connector_id: str, now: datetime,
                   ttl_s: float) -> dict[str, Lease | None]:
        """:meth:`renew` for many (account id, generation) pairs, in as few round trips as possible."""
        ...

    def renew(self, account_id: str, connector_id: str, generation: int, now: datetime,
              ttl_s: float) -> Lease | None:
        """Extend a lease still held under ``generation``; None if it was released or passed on.

        A lease that ran out but that nobody claimed since is still renewed: its generation is
        unchanged, so no other connector can have written under it."""
        ...

    def release(self, account_id: str, connector_id: str, generation: int, now: datetime) -> bool:
        """Give the lease up (generation unchanged; the next claim increments it)."""
        ...

    def release_many(self, held: Sequence[tuple[str, int]], connector_id: str, now: datetime) -> dict[str, bool]:
        """:meth:`release` for many (account id, generation) pairs, in as few round trips as possible."""
        ...

    def revoke(self, account_id: str, now: datetime) -> None:
        """Take the lease from whoever holds it (generation unchanged; its renewals now fail)."""
        ...

    def taken_since(self, at: datetime) -> list[Lease]:
        """Leases whose ``taken_at`` is not before ``at``: claimed from a connector whose lease had
        run out unreleased (see :func:`functions.model.claimed_lease`)."""
        ...

    def ended_between(self, start: datetime, end: datetime) -> list[Lease]:
        """Leases whose ``expires_at`` lies in [``start``, ``end``]: run out, released or revoked then."""
        ...

    def delete(self, account_id: str) -> None: ...


class AlertStore(Protocol):
    def raise_alert(self, alert: Alert) -> bool:
        """Store ``alert`` unless an open alert with the same id exists; True when it is new."""
        ...

    def close(self, account_id: str, kinds: Iterable[str] | None = None) -> int:
        """Close the account's open alerts (of the given kinds); returns how many."""
        ...

    def close_ids(self, account_id: str, alert_ids: Sequence[str]) -> int:
        """Close those of the given alerts that are open alerts of the account; returns how many.
        One read of those documents and, when one is open, one write (no query)."""
        ...

    def open_alerts(self, account_ids: Sequence[str] | None = None) -> list[Alert]:
        """Open alerts of the given accounts (queried by account, never the fleet's), or all of them."""
        ...

    def delete_for(self, account_id: str) -> None: ...

    def delete_closed_before(self, at: datetime) -> int:
        """Delete closed alerts created before ``at``; returns how many."""
        ...


@dataclass(frozen=True, slots=True)
class AccountEventView:
    """What recording one connector event needs to know, read in one round trip."""

    account: Account | None
    #: The account's lease, when it was asked for (and exists).
    lease: Lease | None = None
    #: Those of the alert ids asked for that are open alerts of this account.
    open_alert_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountEventWrite:
    """One account's share of a batched event write: its changes and the alerts they close."""

    account_id: str
    changes: AccountChanges
    close_alert_ids: tuple[str, ...] = ()


class AccountEventStore(Protocol):
    """The reads and writes of recording connector events on ``accounts/{id}``: one call each way.

    A connection or pairing event is checked against the account and its lease (the fencing
    token) and may close alerts whose ids are known in advance (``functions.alerts.alert_ids``);
    reading them together and writing the account with the alerts it closes keeps an event at
    two round trips, where separate calls took four to six. A batch of connection updates
    (``connection.updates``) is read and written the same way for all its accounts at once."""

    def read(self, account_id: str, *, with_lease: bool = False, alert_ids: Sequence[str] = ()) -> AccountEventView:
        """The account, its lease (``with_lease``) and which of ``alert_ids`` are open alerts of the
        account, in one read."""
        ...

    def read_many(self, account_ids: Sequence[str], alert_ids: Mapping[str, Sequence[str]]
                  ) -> dict[str, AccountEventView]:
        """:meth:`read` with the lease for each account (``alert_ids`` per account), in one read;
        every account asked for has a view (``account`` None when it does not exist)."""
        ...

    def write(self, account_id: str, changes: AccountChanges, close_alert_ids: Sequence[str] = ()) -> bool:
        """Set the given Account fields and close the given alerts, together (all or nothing).
        False when the account does not exist: then only the alerts that still exist are closed."""
        ...

    def write_many(self, writes: Sequence[AccountEventWrite]) -> dict[str, bool]:
        """:meth:`write` for many accounts in one commit (more only past a commit's size), each
        account's share all or nothing; False for accounts that do not exist."""
        ...


class OutcomeStore(Protocol):
    def record(self, outcome: RestoreOutcome) -> None: ...

    def record_many(self, outcomes: Sequence[RestoreOutcome]) -> None:
        """:meth:`record` for many outcomes in batches."""
        ...

    def since(self, at: datetime) -> list[RestoreOutcome]: ...

    def for_accounts(self, account_ids: Sequence[str], at: datetime) -> list[RestoreOutcome]:
        """The outcomes since ``at`` of the given accounts only, found by query (a user's metrics)."""
        ...

    def delete_before(self, at: datetime) -> int:
        """Delete outcomes recorded before ``at``; returns how many."""
        ...


@dataclass(frozen=True, slots=True)
class HealthSummary:
    checked_at: datetime
    by_health: Mapping[str, int]
    sessions: int
    problems: int
    duration_ms: int


@dataclass(frozen=True, slots=True)
class VaultKeyRecord:
    """The vault's public sealing key as last handed to connectors (public: no secret in it)."""

    public_key: bytes
    key_id: str


class StatusStore(Protocol):
    """Connector heartbeats, the health-check summary, the last vault sealing key handed out."""

    def record_connector(self, record: ConnectorRecord) -> None: ...

    def connector(self, connector_id: str) -> ConnectorRecord | None:
        """The connector's last recorded call, if any."""
        ...

    def connectors(self) -> list[ConnectorRecord]: ...

    def put_health_summary(self, summary: HealthSummary) -> None: ...

    def health_summary(self) -> HealthSummary | None: ...

    def put_vault_key(self, record: VaultKeyRecord) -> None: ...

    def vault_key(self) -> VaultKeyRecord | None: ...

    def count_reconnects(self, hour: datetime, count: int) -> None:
        """Add ``count`` reconnects to the hour starting at ``hour`` (the dashboard's plot)."""
        ...

    def reconnects_since(self, since: datetime) -> dict[datetime, int]:
        """Reconnects per hour, for the hours starting at or after ``since``."""
        ...

    def delete_reconnects_before(self, before: datetime) -> int:
        """Delete the counts of the hours starting before ``before``; how many were deleted."""
        ...


class AlertPublisher(Protocol):
    def publish(self, data: bytes, attributes: Mapping[str, str]) -> None: ...


@dataclass(frozen=True, slots=True)
class Stores:
    """Everything the functions' logic reads and writes, passed as one bundle."""

    accounts: AccountStore
    leases: LeaseStore
    alerts: AlertStore
    outcomes: OutcomeStore
    status: StatusStore
    account_events: AccountEventStore
