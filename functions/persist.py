"""Persisting session snapshots from the ``session-snapshots`` topic.

One message = one sealed snapshot, attributes ``accountId``, ``generation``, ``connectorId``.
The snapshot is opened with the vault's sealing key, checked against its attributes and against
the account's lease (fencing), and saved as a new version through the vault.

Delivery is at least once, so a message may arrive twice or late:

- the same state again is a no-op in the vault (same hash), nothing changes;
- an older snapshot of the current generation arriving after a newer one was saved (a redelivery
  overtaking, Eventarc does not order) is refused by the vault, atomically with the write
  (``OutOfOrderSnapshotError``, a ``StaleGenerationError``): stored as the newest version it would
  roll the Signal keys back. Within one generation one connector produced them all, so their
  ``producedAt`` times come from one clock and order them;
- a snapshot from an older generation than the lease, or than the stored head, is refused and
  acknowledged (:class:`StaleMessageError`): retrying could never make it current;
- a message that does not parse or open is acknowledged with an error log
  (:class:`MalformedMessageError`): retrying would fail the same way; so is one sealed to a KEK
  version that does not exist (``KekVersionUnknownError``);
- anything else (Firestore, KEK provider unavailable, also while opening) propagates, so Pub/Sub
  redelivers.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from functions.errors import MalformedMessageError, StaleMessageError
from functions.model import GONE, Account, Clock, Lease
from functions.ports import OpenedSnapshot, SavedVersion, SessionVault, TransitSealer
from functions.stores import AccountChanges, Stores
from shared import errors as shared_errors
from shared.events import InvalidEventError, SnapshotAttributes

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PersistResult:
    account_id: str
    version: int
    noop: bool


@dataclass(frozen=True, slots=True)
class SnapshotFence:
    """The account and lease rules one snapshot must pass, and the account bookkeeping of its save."""

    account_id: str
    generation: int

    def check(self, account: Account | None, lease: Lease | None) -> None:
        """Raise :class:`StaleMessageError` / :class:`MalformedMessageError` unless the snapshot may be saved."""
        if account is None or account.status in GONE:
            raise StaleMessageError(f"account {self.account_id}: unknown or removed, snapshot dropped")
        if lease is None or lease.generation > self.generation:
            current = lease.generation if lease is not None else None
            raise StaleMessageError(f"account {self.account_id}: snapshot of generation {self.generation} "
                                    f"is older than the lease (generation {current})")
        if lease.generation < self.generation:
            raise MalformedMessageError(f"account {self.account_id}: snapshot claims generation "
                                        f"{self.generation}, never granted (lease at {lease.generation})")

    @staticmethod
    def account_changes(version: int, versions_kept: int, now: datetime) -> AccountChanges:
        return {"last_saved_at": now, "last_version": version, "versions_kept": versions_kept, "updated_at": now}


class FencedSave(Protocol):
    """A save that reads the account, its lease and the vault head in one call, checks ``fence``, and writes
    the new version with the account's bookkeeping in one commit (Firestore: ``functions.vault_adapter``)."""

    def save(self, snapshot: OpenedSnapshot, fence: SnapshotFence, now: datetime) -> SavedVersion:
        ...


class SnapshotPersister:
    """Handles one ``session-snapshots`` message (module docstring). With a :class:`FencedSave` a save costs
    two Firestore calls; without one (memory stores) the same rules run over the separate stores."""

    def __init__(self, stores: Stores, vault: SessionVault, sealer: TransitSealer, clock: Clock,
                 fenced: FencedSave | None = None) -> None:
        self._stores = stores
        self._vault = vault
        self._sealer = sealer
        self._clock = clock
        self._fenced = fenced

    def handle(self, data: bytes, attributes: Mapping[str, str]) -> PersistResult:
        try:
            attrs = SnapshotAttributes.from_attributes(attributes)
        except InvalidEventError as exc:
            raise MalformedMessageError(f"snapshot attributes: {exc}") from None
        account_id = attrs.account_id
        try:
            snapshot = self._sealer.open_snapshot(data, account_id)
        except (shared_errors.SealingError, shared_errors.StateValidationError) as exc:
            cause = exc.__cause__
            if (isinstance(cause, shared_errors.KekUnavailableError)
                    and not isinstance(cause, shared_errors.KekVersionUnknownError)):
                raise  # the key could not be fetched (Secret Manager down?): let Pub/Sub retry
            # Anything else is permanent, a key id that names no KEK version ("abc", "latest", "999")
            # included: dropped (and counted) now, not redelivered 20 times to ask Secret Manager again.
            raise MalformedMessageError(f"account {account_id}: snapshot does not open: "
                                        f"{type(exc).__name__}") from None
        if (snapshot.account_id, snapshot.generation, snapshot.connector_id) != (
                attrs.account_id, attrs.generation, attrs.connector_id):
            raise MalformedMessageError(f"account {account_id}: snapshot does not match its attributes")
        fence = SnapshotFence(account_id, snapshot.generation)
        try:
            saved = self._save(snapshot, fence)
        except shared_errors.StaleGenerationError as exc:
            raise StaleMessageError(str(exc)) from None
        except shared_errors.StateValidationError as exc:
            raise MalformedMessageError(f"account {account_id}: state refused by the vault: "
                                        f"{type(exc).__name__}") from None
        _log.info("account %s: snapshot of generation %d produced %s %s version %d", account_id,
                  snapshot.generation, snapshot.produced_at.isoformat(), "matched" if saved.noop else "saved as",
                  saved.version)
        return PersistResult(account_id, saved.version, saved.noop)

    def _save(self, snapshot: OpenedSnapshot, fence: SnapshotFence) -> SavedVersion:
        account_id = snapshot.account_id
        if self._fenced is not None:
            return self._fenced.save(snapshot, fence, self._clock())
        fence.check(self._stores.accounts.get(account_id), self._stores.leases.get(account_id))
        saved = self._vault.save(account_id, snapshot.state, snapshot.generation, snapshot.produced_at)
        if not saved.noop:
            self._stores.accounts.update(account_id,
                                         fence.account_changes(saved.version, saved.versions_kept, self._clock()))
        return saved
