"""Adapters from ``shared.vault`` / ``shared.sealing`` to the interfaces in :mod:`functions.ports`.

Restored states travel to the connector as a ``shared.snapshot.Snapshot`` under the newly claimed
generation, sealed to the connector's ephemeral public key as ``shared.connector_sync`` says; the
connector checks account and generation on opening.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from functions.persist import SnapshotFence
from functions.ports import (
    OpenedSnapshot,
    RestoredState,
    SavedVersion,
    SessionCheck,
    failure_kind,
    kek_was_unavailable,
)
from shared import sealing
from shared.authstate import AuthState
from shared.connector_sync import RESTORE_AAD, RESTORE_KEY_ID
from shared.errors import KekUnavailableError, NoUsableVersionError, SkippedVersion
from shared.snapshot import open_snapshot, snapshot_bytes
from shared.vault import SaveGuard, Vault, VaultStore
from shared.vault.kek import KekProvider, sealing_keys
from shared.vault.store import BatchReadStore, Documents, Head

_log = logging.getLogger(__name__)


def _kek_unavailable(account_id: str, skipped: Sequence[SkippedVersion]) -> KekUnavailableError:
    versions = ", ".join(f"v{s.version}" for s in skipped if isinstance(s.error, KekUnavailableError))
    return KekUnavailableError(f"account {account_id}: the KEK of {versions} cannot be fetched; not judged")


class VaultSessions:
    """:class:`functions.ports.SessionVault` over a ``shared.vault.Vault`` and its store."""

    def __init__(self, vault: Vault, store: VaultStore) -> None:
        self._vault = vault
        self._store = store

    def save(self, account_id: str, state: AuthState, generation: int,
             produced_at: datetime | None = None) -> SavedVersion:
        result = self._vault.save(account_id, state, generation, produced_at)
        return SavedVersion(result.version, not result.created, result.versions_kept)

    def restore(self, account_id: str) -> RestoredState:
        # The vault skips a version whose KEK cannot be fetched like a broken one; here that is a
        # transient failure: neither "no usable version" nor a reason to hand out an older state.
        try:
            result = self._vault.restore(account_id)
        except NoUsableVersionError as exc:
            if kek_was_unavailable(exc.skipped):
                raise _kek_unavailable(account_id, exc.skipped) from exc
            raise
        if kek_was_unavailable(result.skipped):
            raise _kek_unavailable(account_id, result.skipped)
        return RestoredState(result.state_bytes, result.version, result.skipped)

    def restore_many(self, account_ids: Sequence[str]) -> dict[str, RestoredState | Exception]:
        out: dict[str, RestoredState | Exception] = {}
        for account_id, result in self._vault.restore_many(account_ids).items():
            if isinstance(result, NoUsableVersionError) and kek_was_unavailable(result.skipped):
                out[account_id] = _kek_unavailable(account_id, result.skipped)
                continue
            if isinstance(result, Exception):
                out[account_id] = result
                continue
            out[account_id] = (_kek_unavailable(account_id, result.skipped) if kek_was_unavailable(result.skipped)
                               else RestoredState(result.state_bytes, result.version, result.skipped))
        return out

    def check(self, account_id: str) -> SessionCheck:
        info = self._vault.inspect(account_id)
        report = self._vault.verify(account_id)
        usable = max(report.ok) if report.ok else None
        failed = report.failed
        if kek_was_unavailable(failed):
            raise _kek_unavailable(account_id, failed)
        newer_failed = [f for f in failed if usable is None or f.version > usable]
        problem = failure_kind(failed) if usable is None else None
        return SessionCheck(latest_version=info.latest_version, usable_version=usable, saved_at=info.saved_at,
                            versions=len(info.versions), problem=problem, skipped=tuple(newer_failed))

    def delete(self, account_id: str) -> None:
        self._vault.delete(account_id)

    def list_accounts(self) -> list[str]:
        return list(self._vault.list_accounts())

    def stored_among(self, account_ids: Sequence[str]) -> set[str]:
        if isinstance(self._store, BatchReadStore):
            return set(self._store.get_heads(list(account_ids)))
        return {a for a in account_ids if self._store.get_head(a) is not None}

    def record_health(self, account_id: str, health: str, at: datetime) -> None:
        self._store.set_health(account_id, {"status": health, "at": at, "by": "health_check"})

    def list_orphaned_accounts(self) -> list[str]:
        return list(self._vault.list_orphaned_accounts())

    def prune(self, account_id: str) -> int:
        """Delete versions and chunks the head no longer refers to (all of them when there is no head)."""
        return self._vault.prune(account_id)


class VaultSealer:
    """:class:`functions.ports.TransitSealer` over the vault's transit keys (derived from its KEK)."""

    def __init__(self, kek: KekProvider) -> None:
        self._keys = sealing_keys(kek)

    def vault_public_key(self) -> tuple[bytes, str]:
        key = self._keys.public_key()
        return key.public, key.key_id

    def open_snapshot(self, sealed: bytes, account_id: str) -> OpenedSnapshot:
        snapshot = open_snapshot(sealed, self._keys, account_id)
        return OpenedSnapshot(snapshot.account_id, snapshot.generation, snapshot.connector_id,
                              snapshot.produced_at, snapshot.state)

    def seal_restored_bytes(self, public_key: bytes, *, account_id: str, generation: int, connector_id: str,
                            produced_at: datetime, state_bytes: bytes) -> bytes:
        data = snapshot_bytes(account_id, generation, produced_at, connector_id, state_bytes)
        return sealing.seal(data, public_key, RESTORE_KEY_ID, RESTORE_AAD)


class FirestoreFencedSave:
    """:class:`functions.persist.FencedSave` on Firestore: the account and lease documents are read in the
    vault head's call and checked there; the account's bookkeeping is committed with the new version."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def save(self, snapshot: OpenedSnapshot, fence: SnapshotFence, now: datetime) -> SavedVersion:
        # Field names and document shapes are firestore_stores' (one mapping for both paths).
        from functions.firestore_stores import (
            ACCOUNTS,
            LEASES,
            account_changes_to_doc,
            account_from_doc,
            lease_from_doc,
        )

        account_id = snapshot.account_id
        account_path, lease_path = f"{ACCOUNTS}/{account_id}", f"{LEASES}/{account_id}"

        def check(documents: Documents) -> None:
            account, lease = documents[account_path], documents[lease_path]
            fence.check(account_from_doc(account_id, account) if account is not None else None,
                        lease_from_doc(account_id, lease) if lease is not None else None)

        def updates(head: Head) -> dict[str, dict[str, Any]]:
            changes = fence.account_changes(head.latest_version, len(head.versions), now)
            return {account_path: account_changes_to_doc(changes)}

        # The lease is a fence: a claim between this read and the commit fails the commit (issue 16).
        guard = SaveGuard(reads=(account_path, lease_path), check=check, updates=updates, fences=(lease_path,))
        result = self._vault.save(account_id, snapshot.state, snapshot.generation, snapshot.produced_at,
                                  guard=guard)
        return SavedVersion(result.version, not result.created, result.versions_kept)
