"""Firestore implementations of :mod:`functions.stores` (collections in docs/ARCHITECTURE.md).

Documents use camelCase field names; times are Firestore timestamps. Lease claim / renew /
release and alert raising run in transactions, so two connectors syncing at once cannot both take
an account. Queries use single-field filters only (no composite indexes to deploy); ordering is
done here.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.firestore_batches import BATCH_WRITES, delete_in_batches
from functions.model import (
    GONE,
    Account,
    AccountStatus,
    Alert,
    ConnectorRecord,
    Health,
    Lease,
    PairingInfo,
    RestoreOutcome,
    RestoreOutcomeKind,
    claimed_lease,
    holds_number,
)
from functions.stores import AccountEventView, AccountEventWrite, AddRefusal, HealthSummary, Stores, VaultKeyRecord
from functions.transactions import contended, run_contended
from shared.connector_sync import PairingMethod

_log = logging.getLogger(__name__)

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

ACCOUNTS = "accounts"
LEASES = "leases"
ALERTS = "alerts"
OUTCOMES = "restore_outcomes"
#: Restore outcomes per ``restore_outcomes`` document (~200 bytes each).
_OUTCOMES_PER_DOC = 200
CONNECTORS = "connectors"
HEALTH = "health"
#: Reconnects per hour (documents `YYYYMMDDTHH`), for the dashboard; closed to clients by the rules.
RECONNECT_COUNTS = "reconnect_counts"
#: ``phone_numbers/{e164}`` -> ``{accountId}``: written by adds before numbers were per owner; an account's
#: deletion still removes its own.
PHONE_NUMBERS = "phone_numbers"
#: ``account_owners/{uid}`` -> ``{lastAddedAt, lastAccountId}``: every add of the owner rewrites it under a
#: precondition, so the owner's adds commit one at a time: the per-user limit holds under races, and so
#: does "one account per number and owner" (a double click stores one account).
OWNERS = "account_owners"
#: ``health/vaultSealingKey``: the public sealing key last handed to connectors.
VAULT_KEY_DOC = "vaultSealingKey"
#: How often :meth:`FirestoreAccountStore.add` re-reads after losing a race for a phone number.
_ADD_ROUNDS = 12
#: Values of one ``in`` / ``array-contains-any`` filter (Firestore's limit).
_IN_QUERY_VALUES = 30
_ADD_BACKOFF_S = 0.02
#: Leases renewed per transaction (Firestore allows 500 writes per transaction).
_RENEW_CHUNK = 200


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


_ACCOUNT_FIELDS = {f.name: _camel(f.name) for f in dataclasses.fields(Account)}


def account_changes_to_doc(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Account field changes (``AccountStore.update``'s names) as document fields and values."""
    unknown = set(changes) - set(_ACCOUNT_FIELDS)
    if unknown:
        raise ValueError(f"unknown account fields {sorted(unknown)}")
    return {_ACCOUNT_FIELDS[k]: _value(v) for k, v in changes.items()}


def _value(value: Any) -> Any:
    """A Python value as Firestore stores it."""
    if isinstance(value, PairingInfo):
        return {"code": value.code, "qr": value.qr, "expiresAt": value.expires_at}
    if isinstance(value, AccountStatus | PairingMethod | Health):
        return value.value
    return value


def account_to_doc(account: Account) -> dict[str, Any]:
    return {_ACCOUNT_FIELDS[f.name]: _value(getattr(account, f.name)) for f in dataclasses.fields(Account)}


def account_from_doc(account_id: str, doc: Mapping[str, Any]) -> Account:
    pairing = doc.get("pairing")
    health = doc.get("health")
    return Account(
        account_id=account_id,
        owner_uid=doc["ownerUid"],
        phone_number=doc["phoneNumber"],
        method=PairingMethod(doc["method"]),
        status=AccountStatus(doc["status"]),
        serve=bool(doc.get("serve", False)),
        created_at=doc["createdAt"],
        updated_at=doc.get("updatedAt") or doc["createdAt"],
        pairing_started_at=doc.get("pairingStartedAt"),
        pairing=PairingInfo(pairing.get("code"), pairing.get("qr"), pairing.get("expiresAt"))
        if isinstance(pairing, dict) else None,
        linked_jid=doc.get("linkedJid"),
        last_connected_at=doc.get("lastConnectedAt"),
        last_saved_at=doc.get("lastSavedAt"),
        last_version=doc.get("lastVersion"),
        versions_kept=int(doc.get("versionsKept") or 0),
        health=Health(health) if health else None,
        health_checked_at=doc.get("healthCheckedAt"),
        status_reason=doc.get("statusReason"),
        reconnect_requested_at=doc.get("reconnectRequestedAt"),
        removed_at=doc.get("removedAt"),
        claimable_after=doc.get("claimableAfter"),
        control_changed_at=doc.get("controlChangedAt"),
    )


def _read_accounts(snapshots: Iterable[Any]) -> list[Account]:
    """The accounts among document snapshots; missing ones are left out, malformed ones logged."""
    out = []
    for snap in snapshots:
        if not snap.exists:
            continue
        try:
            out.append(account_from_doc(snap.id, snap.to_dict() or {}))
        except (KeyError, ValueError, TypeError):
            _log.error("account %s: document is malformed, skipped", snap.id)
    return out


def _update_if_exists(ref: Any, fields: Mapping[str, Any]) -> bool:
    """Update one document; False (nothing written) when it does not exist."""
    try:
        ref.update(fields)
    except gexc.NotFound:
        return False
    return True


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def _sorted(accounts: Iterable[Account]) -> list[Account]:
    return sorted(accounts, key=lambda a: (a.created_at, a.account_id))


class FirestoreAccountStore:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client
        self._col = client.collection(ACCOUNTS)

    @staticmethod
    def _read(snapshots: Iterable[Any]) -> list[Account]:
        return _read_accounts(snapshots)

    def create(self, account: Account) -> None:
        self._col.document(account.account_id).create(account_to_doc(account))

    def add(self, account: Account, max_active: int) -> AddRefusal | None:
        # Optimistic, not a transaction: the owner's document is written with a precondition (absent, or
        # unchanged since read) in the same atomic batch as the account, so the owner's adds commit one at
        # a time, each judged against the accounts the ones before it stored; a loser reads again on its
        # next round. Transactions here made concurrent adds wait on each other's locks and time out.
        owner_ref = self._client.collection(OWNERS).document(account.owner_uid)
        for round_ in range(_ADD_ROUNDS):
            if round_:
                time.sleep(random.uniform(0, _ADD_BACKOFF_S * round_))
            # The owner's document is read before the queries: an add that commits between the two is
            # then either seen by the queries or trips the precondition.
            owner = owner_ref.get()
            rivals = [a for a in self.find_by_phone(account.phone_number)
                      if a.owner_uid == account.owner_uid and holds_number(a)]
            if rivals:
                return AddRefusal(rival=rivals[0])
            if self.count_active(account.owner_uid) >= max_active:
                return AddRefusal(limit_reached=True)
            batch = self._client.batch()
            owner_doc = {"lastAddedAt": account.created_at, "lastAccountId": account.account_id}
            if owner.exists:
                batch.update(owner_ref, owner_doc, option=self._client.write_option(last_update_time=owner.update_time))
            else:
                batch.create(owner_ref, owner_doc)
            batch.create(self._col.document(account.account_id), account_to_doc(account))
            try:
                batch.commit()
            except (gexc.Conflict, gexc.FailedPrecondition):
                continue  # another add of this owner committed first
            return None
        raise gexc.Aborted("the owner's accounts kept changing; try again")  # type: ignore[no-untyped-call]

    def get(self, account_id: str) -> Account | None:
        found = self._read([self._col.document(account_id).get()])
        return found[0] if found else None

    def get_many(self, account_ids: Sequence[str]) -> dict[str, Account]:
        if not account_ids:
            return {}
        refs = [self._col.document(i) for i in account_ids]
        return {a.account_id: a for a in self._read(self._client.get_all(refs))}

    def list_accounts(self, owner_uid: str | None = None) -> list[Account]:
        query = self._col if owner_uid is None else self._col.where(filter=FieldFilter("ownerUid", "==", owner_uid))
        return _sorted(self._read(query.stream()))

    def count_active(self, owner_uid: str) -> int:
        query = self._col.where(filter=FieldFilter("ownerUid", "==", owner_uid)).select(["status"])
        gone = {s.value for s in GONE}
        return sum(1 for snap in query.stream() if (snap.to_dict() or {}).get("status") not in gone)

    def find_by_phone(self, phone_number: str) -> list[Account]:
        return _sorted(self._read(self._col.where(filter=FieldFilter("phoneNumber", "==", phone_number)).stream()))

    def claimable(self, now: datetime, limit: int) -> list[Account]:
        # One range filter ordered by the same field: no composite index. Documents whose
        # claimableAfter is null (not served) never match a timestamp range.
        query = (self._col.where(filter=FieldFilter("claimableAfter", "<=", now))
                 .order_by("claimableAfter").limit(limit))
        return self._read(query.stream())

    def removing(self, limit: int) -> list[Account]:
        query = self._col.where(filter=FieldFilter("status", "==", AccountStatus.REMOVING.value)).limit(limit)
        return _sorted(self._read(query.stream()))

    def control_changed_since(self, at: datetime) -> list[Account]:
        # One range filter on one field (automatic index). Accounts never changed that way have no
        # controlChangedAt (or null) and never match a timestamp range.
        return self._read(self._col.where(filter=FieldFilter("controlChangedAt", ">=", at)).stream())

    def update(self, account_id: str, changes: Mapping[str, Any]) -> bool:
        return _update_if_exists(self._col.document(account_id), account_changes_to_doc(changes))

    def update_many(self, changes: Mapping[str, Mapping[str, Any]]) -> None:
        items = list(changes.items())
        for start in range(0, len(items), BATCH_WRITES):
            chunk = items[start:start + BATCH_WRITES]
            batch = self._client.batch()
            for account_id, account_changes in chunk:
                batch.update(self._col.document(account_id), account_changes_to_doc(account_changes))
            try:
                batch.commit()
            except gexc.NotFound:  # one was purged meanwhile: fall back to one by one
                for account_id, account_changes in chunk:
                    self.update(account_id, account_changes)

    def delete(self, account_id: str) -> None:
        ref = self._col.document(account_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> None:
            snap = ref.get(transaction=transaction)
            phone = (snap.to_dict() or {}).get("phoneNumber") if snap.exists else None
            claim_ref = self._client.collection(PHONE_NUMBERS).document(phone) if isinstance(phone, str) else None
            if claim_ref is not None:
                claim = claim_ref.get(transaction=transaction)
                if claim.exists and (claim.to_dict() or {}).get("accountId") == account_id:
                    transaction.delete(claim_ref)
            transaction.delete(ref)

        run_contended(run, self._client)


def lease_from_doc(account_id: str, doc: Mapping[str, Any]) -> Lease:
    return Lease(account_id, doc.get("connectorId"), int(doc.get("generation", 0)), doc["expiresAt"],
                 doc.get("takenAt"))


def _by_chunk(items: Sequence[_Item], run: Callable[[Sequence[_Item]], dict[str, _Result]]) -> dict[str, _Result]:
    """``run`` over chunks of ``items`` small enough for one transaction each, results merged."""
    results: dict[str, _Result] = {}
    for start in range(0, len(items), _RENEW_CHUNK):
        results.update(run(items[start:start + _RENEW_CHUNK]))
    return results


class FirestoreLeaseStore:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client
        self._col = client.collection(LEASES)

    def get(self, account_id: str) -> Lease | None:
        snap = self._col.document(account_id).get()
        return lease_from_doc(account_id, snap.to_dict() or {}) if snap.exists else None

    def get_many(self, account_ids: Sequence[str]) -> dict[str, Lease]:
        if not account_ids:
            return {}
        snaps = self._client.get_all([self._col.document(i) for i in account_ids])
        return {s.id: lease_from_doc(s.id, s.to_dict() or {}) for s in snaps if s.exists}

    def _in_transaction(self, account_id: str, step: Any) -> Any:
        ref = self._col.document(account_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> Any:
            snap = ref.get(transaction=transaction)
            current = lease_from_doc(account_id, snap.to_dict() or {}) if snap.exists else None
            return step(transaction, ref, current)

        return run_contended(run, self._client)

    @staticmethod
    def _doc(lease: Lease, now: datetime) -> dict[str, Any]:
        return {"connectorId": lease.connector_id, "generation": lease.generation,
                "expiresAt": lease.expires_at, "takenAt": lease.taken_at, "updatedAt": now}

    def taken_since(self, at: datetime) -> list[Lease]:
        query = self._col.where(filter=FieldFilter("takenAt", ">=", at))
        return [lease_from_doc(snap.id, snap.to_dict() or {}) for snap in query.stream()]

    def ended_between(self, start: datetime, end: datetime) -> list[Lease]:
        # Two range filters on one field: the automatic single-field index serves it.
        query = (self._col.where(filter=FieldFilter("expiresAt", ">=", start))
                 .where(filter=FieldFilter("expiresAt", "<=", end)))
        return [lease_from_doc(snap.id, snap.to_dict() or {}) for snap in query.stream()]

    def claim(self, account_id: str, connector_id: str, now: datetime, ttl_s: float) -> Lease | None:
        return self.claim_many([account_id], connector_id, now, ttl_s)[account_id]

    def claim_many(self, account_ids: Sequence[str], connector_id: str, now: datetime,
                   ttl_s: float) -> dict[str, Lease | None]:
        """One transaction per chunk of leases: read them all, take those nobody holds live."""
        return _by_chunk(account_ids, lambda chunk: self._claim_chunk(chunk, connector_id, now, ttl_s))

    def _claim_chunk(self, account_ids: Sequence[str], connector_id: str, now: datetime,
                     ttl_s: float) -> dict[str, Lease | None]:
        refs = {account_id: self._col.document(account_id) for account_id in dict.fromkeys(account_ids)}

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> dict[str, Lease | None]:
            out: dict[str, Lease | None] = dict.fromkeys(refs)
            snaps = {snap.id: snap for snap in self._client.get_all(list(refs.values()), transaction=transaction)}
            for account_id, ref in refs.items():
                snap = snaps.get(account_id)
                current = lease_from_doc(account_id, snap.to_dict() or {}) if snap is not None and snap.exists else None
                if current is not None and current.live(now):
                    continue
                lease = claimed_lease(current, account_id, connector_id, now, ttl_s)
                transaction.set(ref, self._doc(lease, now))
                out[account_id] = lease
            return out

        try:
            result: dict[str, Lease | None] = run_contended(run, self._client)
        except (gexc.Aborted, ValueError) as exc:
            if not contended(exc):
                raise
            # Other connectors are claiming these very leases: let them have the chunk (an account
            # nobody ends up with is claimable again on the next call) rather than fail the call,
            # whose renewals and releases are already committed.
            _log.info("connector %s: %d claims given up to contention", connector_id, len(refs))
            return dict.fromkeys(refs)
        return result

    def renew_many(self, held: Sequence[tuple[str, int]], connector_id: str, now: datetime,
                   ttl_s: float) -> dict[str, Lease | None]:
        """One transaction per chunk of leases (reads and writes stay within Firestore's limits)."""
        return _by_chunk(held, lambda chunk: self._renew_chunk(chunk, connector_id, now, ttl_s))

    def _renew_chunk(self, held: Sequence[tuple[str, int]], connector_id: str, now: datetime,
                     ttl_s: float) -> dict[str, Lease | None]:
        wanted = dict(held)
        refs = [self._col.document(account_id) for account_id in wanted]

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> dict[str, Lease | None]:
            out: dict[str, Lease | None] = dict.fromkeys(wanted)
            for snap in self._client.get_all(refs, transaction=transaction):
                if not snap.exists:
                    continue
                current = lease_from_doc(snap.id, snap.to_dict() or {})
                if current.held_by(connector_id, wanted[snap.id]):
                    lease = dataclasses.replace(current, expires_at=now + timedelta(seconds=ttl_s))
                    transaction.set(snap.reference, self._doc(lease, now))
                    out[snap.id] = lease
            return out

        result: dict[str, Lease | None] = run_contended(run, self._client)
        return result

    def renew(self, account_id: str, connector_id: str, generation: int, now: datetime,
              ttl_s: float) -> Lease | None:
        return self.renew_many([(account_id, generation)], connector_id, now, ttl_s)[account_id]

    def release(self, account_id: str, connector_id: str, generation: int, now: datetime) -> bool:
        return self.release_many([(account_id, generation)], connector_id, now)[account_id]

    def release_many(self, held: Sequence[tuple[str, int]], connector_id: str, now: datetime) -> dict[str, bool]:
        """One transaction per chunk of leases, like :meth:`renew_many`."""
        return _by_chunk(held, lambda chunk: self._release_chunk(chunk, connector_id, now))

    def _release_chunk(self, held: Sequence[tuple[str, int]], connector_id: str, now: datetime) -> dict[str, bool]:
        wanted = dict(held)
        refs = [self._col.document(account_id) for account_id in wanted]

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> dict[str, bool]:
            out = dict.fromkeys(wanted, False)
            for snap in self._client.get_all(refs, transaction=transaction):
                if not snap.exists:
                    continue
                current = lease_from_doc(snap.id, snap.to_dict() or {})
                if current.held_by(connector_id, wanted[snap.id]):
                    released = dataclasses.replace(current, connector_id=None, expires_at=now)
                    transaction.set(snap.reference, self._doc(released, now))
                    out[snap.id] = True
            return out

        result: dict[str, bool] = run_contended(run, self._client)
        return result

    def revoke(self, account_id: str, now: datetime) -> None:
        def step(transaction: Any, ref: Any, current: Lease | None) -> None:
            if current is not None:
                revoked = dataclasses.replace(current, connector_id=None, expires_at=now)
                transaction.set(ref, self._doc(revoked, now))

        self._in_transaction(account_id, step)

    def delete(self, account_id: str) -> None:
        self._col.document(account_id).delete()


#: The change that closes an alert document.
_CLOSED = {"open": False}


def _is_open_alert_of(snap: Any, account_id: str) -> bool:
    doc = snap.to_dict() or {} if snap.exists else {}
    return bool(doc.get("open")) and doc.get("accountId") == account_id


def _alert_from(snap: Any) -> Alert:
    doc = snap.to_dict() or {}
    return Alert(snap.id, doc["accountId"], doc["kind"], doc.get("message", ""), doc["createdAt"],
                 bool(doc.get("open", False)))


class FirestoreAlertStore:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client
        self._col = client.collection(ALERTS)

    def raise_alert(self, alert: Alert) -> bool:
        ref = self._col.document(alert.alert_id)

        @firestore.transactional
        def run(transaction: firestore.Transaction) -> bool:
            snap = ref.get(transaction=transaction)
            if snap.exists and (snap.to_dict() or {}).get("open"):
                return False
            transaction.set(ref, {"accountId": alert.account_id, "kind": alert.kind, "message": alert.message,
                                  "createdAt": alert.created_at, "open": True})
            return True

        return bool(run_contended(run, self._client))

    def close(self, account_id: str, kinds: Iterable[str] | None = None) -> int:
        wanted = None if kinds is None else set(kinds)
        query = self._col.where(filter=FieldFilter("accountId", "==", account_id))
        closed = 0
        for snap in query.stream():
            doc = snap.to_dict() or {}
            if doc.get("open") and (wanted is None or doc.get("kind") in wanted):
                snap.reference.update({"open": False})
                closed += 1
        return closed

    def close_ids(self, account_id: str, alert_ids: Sequence[str]) -> int:
        refs = [self._col.document(i) for i in dict.fromkeys(alert_ids)]
        open_refs = [snap.reference for snap in self._client.get_all(refs) if _is_open_alert_of(snap, account_id)]
        if not open_refs:
            return 0
        batch = self._client.batch()
        for ref in open_refs:
            batch.update(ref, _CLOSED)
        try:
            batch.commit()
        except gexc.NotFound:  # one was deleted meanwhile (its account's purge): close the others
            return sum(_update_if_exists(ref, _CLOSED) for ref in open_refs)
        return len(open_refs)

    def open_alerts(self, account_ids: Sequence[str] | None = None) -> list[Alert]:
        if account_ids is None:
            return [_alert_from(s) for s in self._col.where(filter=FieldFilter("open", "==", True)).stream()]
        # By account (single-field index on accountId), a few alerts each; closed ones dropped here.
        alerts: list[Alert] = []
        for chunk in _chunks(sorted(set(account_ids)), _IN_QUERY_VALUES):
            query = self._col.where(filter=FieldFilter("accountId", "in", chunk))
            alerts.extend(a for a in map(_alert_from, query.stream()) if a.open)
        return alerts

    def delete_for(self, account_id: str) -> None:
        delete_in_batches(self._client, [s.reference for s in
                                   self._col.where(filter=FieldFilter("accountId", "==", account_id)).stream()])

    def delete_closed_before(self, at: datetime) -> int:
        closed = self._col.where(filter=FieldFilter("open", "==", False)).stream()
        return delete_in_batches(self._client, [s.reference for s in closed
                                          if (s.to_dict() or {}).get("createdAt", at) < at])


class FirestoreAccountEventStore:
    """:class:`functions.stores.AccountEventStore`: one ``BatchGetDocuments`` to read, one commit to write."""

    def __init__(self, client: firestore.Client) -> None:
        self._client = client
        self._accounts = client.collection(ACCOUNTS)
        self._leases = client.collection(LEASES)
        self._alerts = client.collection(ALERTS)

    def read(self, account_id: str, *, with_lease: bool = False, alert_ids: Sequence[str] = ()) -> AccountEventView:
        return self._read({account_id: alert_ids}, with_leases=with_lease)[account_id]

    def read_many(self, account_ids: Sequence[str], alert_ids: Mapping[str, Sequence[str]]
                  ) -> dict[str, AccountEventView]:
        return self._read({a: alert_ids.get(a, ()) for a in account_ids}, with_leases=True)

    def _read(self, wanted: Mapping[str, Sequence[str]], *, with_leases: bool) -> dict[str, AccountEventView]:
        if not wanted:
            return {}
        plan = [(account_id, self._accounts.document(account_id),
                 self._leases.document(account_id) if with_leases else None,
                 [self._alerts.document(i) for i in dict.fromkeys(ids)]) for account_id, ids in wanted.items()]
        refs = [ref for _, account_ref, lease_ref, alert_refs in plan
                for ref in (account_ref, *([lease_ref] if lease_ref is not None else []), *alert_refs)]
        snaps = {snap.reference.path: snap for snap in self._client.get_all(refs)}
        views = {}
        for account_id, account_ref, lease_ref, alert_refs in plan:
            account_snap = snaps.get(account_ref.path)
            accounts = _read_accounts([account_snap] if account_snap is not None else [])
            lease_snap = snaps.get(lease_ref.path) if lease_ref is not None else None
            lease = (lease_from_doc(account_id, lease_snap.to_dict() or {})
                     if lease_snap is not None and lease_snap.exists else None)
            open_ids = tuple(ref.id for ref in alert_refs
                             if ref.path in snaps and _is_open_alert_of(snaps[ref.path], account_id))
            views[account_id] = AccountEventView(accounts[0] if accounts else None, lease, open_ids)
        return views

    def write(self, account_id: str, changes: Mapping[str, Any], close_alert_ids: Sequence[str] = ()) -> bool:
        return self._commit_one(AccountEventWrite(account_id, changes, tuple(close_alert_ids)),
                                account_changes_to_doc(changes))

    def write_many(self, writes: Sequence[AccountEventWrite]) -> dict[str, bool]:
        fields = [account_changes_to_doc(w.changes) for w in writes]  # every name checked before any write
        results: dict[str, bool] = {}
        chunk: list[tuple[AccountEventWrite, dict[str, Any]]] = []
        size = 0
        for write, doc in zip(writes, fields, strict=True):
            if chunk and size + 1 + len(write.close_alert_ids) > BATCH_WRITES:
                results.update(self._commit_chunk(chunk))
                chunk, size = [], 0
            chunk.append((write, doc))
            size += 1 + len(write.close_alert_ids)
        if chunk:
            results.update(self._commit_chunk(chunk))
        return results

    def _commit_chunk(self, chunk: Sequence[tuple[AccountEventWrite, dict[str, Any]]]) -> dict[str, bool]:
        batch = self._client.batch()
        for write, doc in chunk:
            self._add(batch, write, doc)
        try:
            batch.commit()
        except gexc.NotFound:  # an account (or alert) went since the read: each account on its own
            return {write.account_id: self._commit_one(write, doc) for write, doc in chunk}
        return {write.account_id: True for write, _ in chunk}

    def _add(self, batch: Any, write: AccountEventWrite, doc: dict[str, Any]) -> None:
        batch.update(self._accounts.document(write.account_id), doc)
        for alert_id in dict.fromkeys(write.close_alert_ids):
            batch.update(self._alerts.document(alert_id), _CLOSED)

    def _commit_one(self, write: AccountEventWrite, doc: dict[str, Any]) -> bool:
        batch = self._client.batch()
        self._add(batch, write, doc)
        try:
            batch.commit()
        except gexc.NotFound:
            # The account (purged) or an alert (deleted with it) went since the read: write what
            # still exists, as separate calls would have.
            for alert_id in dict.fromkeys(write.close_alert_ids):
                _update_if_exists(self._alerts.document(alert_id), _CLOSED)
            return _update_if_exists(self._accounts.document(write.account_id), doc)
        return True


class FirestoreOutcomeStore:
    """Restore outcomes, many to a document: a restart restores accounts in rounds, and one document
    per account was a write per restore. A document holds ``entries`` (at most :data:`_OUTCOMES_PER_DOC`)
    and ``at``, the latest entry's time, which retention and the 24 h window query on. Documents of
    one outcome each (written before) are read as they are."""

    def __init__(self, client: firestore.Client) -> None:
        self._client = client
        self._col = client.collection(OUTCOMES)

    def delete_before(self, at: datetime) -> int:
        old = self._col.where(filter=FieldFilter("at", "<", at)).select([]).stream()
        return delete_in_batches(self._client, [s.reference for s in old])

    @staticmethod
    def _entry(outcome: RestoreOutcome) -> dict[str, Any]:
        return {"accountId": outcome.account_id, "outcome": outcome.outcome.value, "at": outcome.at,
                "connectorId": outcome.connector_id, "version": outcome.version,
                "reason": outcome.reason, "skipped": outcome.skipped}

    @staticmethod
    def _outcome(entry: Mapping[str, Any]) -> RestoreOutcome:
        return RestoreOutcome(entry["accountId"], RestoreOutcomeKind(entry["outcome"]), entry["at"],
                              entry.get("connectorId", ""), entry.get("version"), entry.get("reason"),
                              int(entry.get("skipped") or 0))

    def record(self, outcome: RestoreOutcome) -> None:
        self.record_many([outcome])

    def record_many(self, outcomes: Sequence[RestoreOutcome]) -> None:
        chunks = [outcomes[i:i + _OUTCOMES_PER_DOC] for i in range(0, len(outcomes), _OUTCOMES_PER_DOC)]
        for start in range(0, len(chunks), BATCH_WRITES):
            batch = self._client.batch()
            for chunk in chunks[start:start + BATCH_WRITES]:
                batch.set(self._col.document(), {"at": max(o.at for o in chunk),
                                                 "accountIds": sorted({o.account_id for o in chunk}),
                                                 "entries": [self._entry(o) for o in chunk]})
            batch.commit()

    def since(self, at: datetime) -> list[RestoreOutcome]:
        out: list[RestoreOutcome] = []
        for snap in self._col.where(filter=FieldFilter("at", ">=", at)).stream():
            doc = snap.to_dict() or {}
            entries = doc.get("entries", [doc])
            out.extend(o for o in map(self._outcome, entries) if o.at >= at)
        return out

    def for_accounts(self, account_ids: Sequence[str], at: datetime) -> list[RestoreOutcome]:
        # ``accountIds`` names a document's accounts (documents of one outcome carry ``accountId``); one
        # array-contains-any query per 30 ids, no composite index. Other accounts' entries in the documents
        # found are dropped here and never leave this function.
        wanted = set(account_ids)
        found: dict[str, Any] = {}
        for chunk in _chunks(sorted(wanted), _IN_QUERY_VALUES):
            for query in (self._col.where(filter=FieldFilter("accountIds", "array_contains_any", chunk)),
                          self._col.where(filter=FieldFilter("accountId", "in", chunk))):
                for snap in query.stream():
                    found[snap.id] = snap.to_dict() or {}
        out: list[RestoreOutcome] = []
        for doc in found.values():
            out.extend(o for o in map(self._outcome, doc.get("entries", [doc]))
                       if o.at >= at and o.account_id in wanted)
        return out


class FirestoreStatusStore:
    def __init__(self, client: firestore.Client) -> None:
        self._client = client

    def record_connector(self, record: ConnectorRecord) -> None:
        doc: dict[str, Any] = {"lastSyncAt": record.last_sync_at, "capacity": record.capacity, "held": record.held}
        if record.identity is not None:
            doc["identity"] = record.identity
        self._client.collection(CONNECTORS).document(record.connector_id).set(doc)

    def connector(self, connector_id: str) -> ConnectorRecord | None:
        snap = self._client.collection(CONNECTORS).document(connector_id).get()
        doc = snap.to_dict() or {} if snap.exists else {}
        if not isinstance(doc.get("lastSyncAt"), datetime):
            return None
        identity = doc.get("identity")
        return ConnectorRecord(connector_id, doc["lastSyncAt"], int(doc.get("capacity", 0)), int(doc.get("held", 0)),
                               identity if isinstance(identity, str) else None)

    def connectors(self) -> list[ConnectorRecord]:
        out = []
        for snap in self._client.collection(CONNECTORS).stream():
            doc = snap.to_dict() or {}
            out.append(ConnectorRecord(snap.id, doc["lastSyncAt"], int(doc.get("capacity", 0)),
                                       int(doc.get("held", 0))))
        return out

    def put_health_summary(self, summary: HealthSummary) -> None:
        self._client.collection(HEALTH).document("summary").set({
            "checkedAt": summary.checked_at, "byHealth": dict(summary.by_health), "sessions": summary.sessions,
            "problems": summary.problems, "durationMs": summary.duration_ms})

    def health_summary(self) -> HealthSummary | None:
        snap = self._client.collection(HEALTH).document("summary").get()
        if not snap.exists:
            return None
        doc = snap.to_dict() or {}
        return HealthSummary(doc["checkedAt"], dict(doc.get("byHealth") or {}), int(doc.get("sessions", 0)),
                             int(doc.get("problems", 0)), int(doc.get("durationMs", 0)))

    def count_reconnects(self, hour: datetime, count: int) -> None:
        # one document per hour, incremented in place: a batch of updates costs one write
        self._client.collection(RECONNECT_COUNTS).document(hour.strftime("%Y%m%dT%H")).set(
            {"hour": hour, "count": firestore.Increment(count)}, merge=True)

    def reconnects_since(self, since: datetime) -> dict[datetime, int]:
        query = self._client.collection(RECONNECT_COUNTS).where(filter=FieldFilter("hour", ">=", since))
        return {doc["hour"]: int(doc.get("count") or 0) for doc in (snap.to_dict() or {} for snap in query.stream())
                if isinstance(doc.get("hour"), datetime)}

    def delete_reconnects_before(self, before: datetime) -> int:
        old = self._client.collection(RECONNECT_COUNTS).where(filter=FieldFilter("hour", "<", before)).select([])
        return delete_in_batches(self._client, [snap.reference for snap in old.stream()])

    def put_vault_key(self, record: VaultKeyRecord) -> None:
        self._client.collection(HEALTH).document(VAULT_KEY_DOC).set(
            {"publicKey": record.public_key, "keyId": record.key_id})

    def vault_key(self) -> VaultKeyRecord | None:
        snap = self._client.collection(HEALTH).document(VAULT_KEY_DOC).get()
        doc = snap.to_dict() or {} if snap.exists else {}
        public_key, key_id = doc.get("publicKey"), doc.get("keyId")
        if not isinstance(public_key, bytes) or not isinstance(key_id, str):
            return None
        return VaultKeyRecord(public_key, key_id)


def firestore_stores(client: firestore.Client) -> Stores:
    return Stores(FirestoreAccountStore(client), FirestoreLeaseStore(client), FirestoreAlertStore(client),
                  FirestoreOutcomeStore(client), FirestoreStatusStore(client), FirestoreAccountEventStore(client))
