"""Where the vault keeps its records: the :class:`VaultStore` interface and an in-memory store.

The store knows documents, not cryptography. A save is a *plan* the vault computes from the current
head (:meth:`VaultStore.commit` hands the head to a planner inside one transaction), so numbering,
fencing and the no-op check see the same head the write replaces. The Firestore implementation is
in :mod:`shared.vault.firestore_store`; the layout is in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from shared.errors import NotFoundError
from shared.vault.crypto import EnvelopeHeader


@dataclass(frozen=True)
class VersionRef:
    """What the head remembers of one kept version (enough to read or delete it)."""

    version: int
    generation: int
    chunks: int  # 0: ciphertext inline in the version document
    stored_size: int
    kek_version: str
    created_at: datetime


@dataclass(frozen=True)
class VersionRecord:
    """One stored version: header and ciphertext (reassembled from chunks if it was split)."""

    version: int
    generation: int
    header: EnvelopeHeader
    ciphertext: bytes
    created_at: datetime


@dataclass(frozen=True)
class Head:
    """The per-account head document: the latest version and the kept ones (newest first)."""

    account_id: str
    latest_version: int
    generation: int
    sha256: str
    raw_size: int
    stored_size: int
    versions: tuple[VersionRef, ...]
    created_at: datetime
    saved_at: datetime
    health: Mapping[str, Any] = field(default_factory=dict)
    #: when the connector produced the stored state (orders snapshots within one generation)
    produced_at: datetime | None = None


@dataclass(frozen=True)
class NewVersion:
    """Planner decision: write ``record``, make ``head`` current, delete the ``drop`` versions."""

    record: VersionRecord
    head: Head
    drop: tuple[VersionRef, ...] = ()


@dataclass(frozen=True)
class HeadOnly:
    """Planner decision: no new version, but update the head (e.g. a higher generation)."""

    head: Head


Decision = NewVersion | HeadOnly | None
Planner = Callable[[Head | None], Decision]
#: A document outside the vault's own collection: ``"<collection>/<id>"``.
DocumentPath = str
Documents = Mapping[DocumentPath, Mapping[str, Any] | None]


@dataclass(frozen=True)
class SaveGuard:
    """Documents outside the vault that one save reads and writes in its own round trips.

    The caller's preconditions and bookkeeping ride along with the save instead of costing calls of
    their own: ``reads`` are fetched in the same call as the head and handed to ``check`` (None for a
    missing document), which raises to refuse the save before anything is planned; when a new version
    is written, ``updates(head)`` names field updates of existing documents that are committed
    atomically with it (if one of them has disappeared meanwhile, nothing at all is written).

    ``fences`` (a subset of ``reads``) are documents the check's verdict rests on: the commit lands only
    if each is unchanged since it was read (Firestore: a precondition on its update time), otherwise the
    save reads and checks again. A lease is one: a claim between the read and the commit moves it, and the
    older generation's snapshot is then refused instead of committed. A fence absent at read time carries
    no precondition, so ``check`` must refuse a save that rests on a missing fence.
    """

    reads: tuple[DocumentPath, ...]
    check: Callable[[Documents], None]
    updates: Callable[[Head], Mapping[DocumentPath, Mapping[str, Any]]]
    fences: tuple[DocumentPath, ...] = ()


@dataclass(frozen=True)
class LegacyRecord:
    """A reference-system document: plaintext ``creds`` at ``whatsapp_sessions/{accountId}``."""

    account_id: str
    creds: Any  # the stored map (or JSON text), exactly as read
    updated_at: datetime | None
    token: Any = None  # store-specific precondition (Firestore: the document's update time)


@runtime_checkable
class BatchReadStore(Protocol):
    """What a store offers when it can read many heads and versions in one round trip (optional:
    ``Vault.restore_many`` reads one account at a time from a store without it)."""

    def get_heads(self, account_ids: Sequence[str]) -> dict[str, Head]:
        """The heads found; an account without a readable head is left out."""
        ...

    def get_versions(self, wanted: Sequence[tuple[str, VersionRef]]) -> dict[str, VersionRecord]:
        """One version per account; any that cannot be read whole this way is left out."""
        ...


class VaultStore(Protocol):
    """Persistence of heads, versions and chunks for the vault."""

    def get_head(self, account_id: str) -> Head | None: ...

    def get_version(self, account_id: str, ref: VersionRef) -> VersionRecord:
        """The version ``ref`` names; :class:`NotFoundError` if gone, ``IntegrityError`` if incomplete."""
        ...

    def commit(self, account_id: str, planner: Planner, guard: SaveGuard | None = None) -> Decision:
        """Run ``planner`` on the current head and apply its decision atomically; return the decision.
        With a ``guard``, its documents are read and checked first and its updates join a new version."""
        ...

    def replace_header(self, account_id: str, version: int, header: EnvelopeHeader, expected_kek: str) -> bool:
        """Swap one version's header if it is still wrapped under ``expected_kek``; False if it changed."""
        ...

    def set_health(self, account_id: str, health: Mapping[str, Any]) -> None: ...

    def delete(self, account_id: str) -> bool:
        """Remove head, versions and chunks; False if there was nothing."""
        ...

    def prune(self, account_id: str) -> int:
        """Delete version and chunk documents the head does not refer to (all of them when there is no
        head); returns how many went. A version a concurrent save is writing is never among them."""
        ...

    def list_accounts(self) -> Iterator[str]:
        """Account ids with a vault head, sorted."""
        ...

    def list_orphaned_accounts(self) -> Iterator[str]:
        """Account ids with versions or chunks but no head (left by an interrupted delete), sorted.
        ``prune`` removes what they left; nothing else can reach it."""
        ...

    def list_legacy(self) -> Iterator[str]:
        """Account ids whose document still holds reference-system plaintext creds."""
        ...

    def get_legacy(self, account_id: str) -> LegacyRecord | None: ...

    def remove_legacy(self, record: LegacyRecord) -> bool:
        """Delete the plaintext fields if the document is unchanged since ``record`` was read."""
        ...


@dataclass
class _Account:
    head: Head | None = None
    versions: dict[int, VersionRecord] = field(default_factory=dict)
    legacy: dict[str, Any] | None = None
    legacy_rev: int = 0


class MemoryVaultStore:
    """A :class:`VaultStore` in a dict, for unit tests and benchmarks."""

    def __init__(self) -> None:
        self._accounts: dict[str, _Account] = {}
        self._lock = threading.RLock()
        #: Documents outside the vault, by path: what a :class:`SaveGuard` reads and updates.
        self.documents: dict[DocumentPath, dict[str, Any]] = {}

    # test helpers -----------------------------------------------------------------------------

    def put_legacy(self, account_id: str, document: dict[str, Any]) -> None:
        with self._lock:
            account = self._accounts.setdefault(account_id, _Account())
            account.legacy = copy.deepcopy(document)
            account.legacy_rev += 1

    def raw_versions(self, account_id: str) -> dict[int, VersionRecord]:
        return self._accounts[account_id].versions

    def put_version(self, account_id: str, record: VersionRecord) -> None:
        """Store a version as is, head or not (tests plant damaged blobs and leftovers with it)."""
        with self._lock:
            self._accounts.setdefault(account_id, _Account()).versions[record.version] = record

    # VaultStore -------------------------------------------------------------------------------

    def get_head(self, account_id: str) -> Head | None:
        with self._lock:
            account = self._accounts.get(account_id)
            return None if account is None else account.head

    def get_version(self, account_id: str, ref: VersionRef) -> VersionRecord:
        with self._lock:
            account = self._accounts.get(account_id)
            record = None if account is None else account.versions.get(ref.version)
        if record is None:
            raise NotFoundError(f"account {account_id} has no version {ref.version}")
        return record

    def commit(self, account_id: str, planner: Planner, guard: SaveGuard | None = None) -> Decision:
        with self._lock:
            if guard is not None:
                guard.check({path: copy.deepcopy(self.documents.get(path)) for path in guard.reads})
            current = self._accounts.get(account_id)
            decision = planner(current.head if current is not None else None)
            if isinstance(decision, NewVersion) and guard is not None:
                updates = guard.updates(decision.head)
                missing = [path for path in updates if path not in self.documents]
                if missing:
                    raise NotFoundError(f"account {account_id}: {missing[0]} disappeared during the save")
                for path, changes in updates.items():
                    self.documents[path].update(copy.deepcopy(dict(changes)))
            account = self._accounts.setdefault(account_id, _Account())
            if isinstance(decision, NewVersion):
                account.versions[decision.record.version] = decision.record
                for ref in decision.drop:
                    account.versions.pop(ref.version, None)
                account.head = decision.head
            elif isinstance(decision, HeadOnly):
                account.head = decision.head
            if account.head is None and account.legacy is None:
                del self._accounts[account_id]
            return decision

    def replace_header(self, account_id: str, version: int, header: EnvelopeHeader, expected_kek: str) -> bool:
        with self._lock:
            account = self._accounts.get(account_id)
            record = None if account is None else account.versions.get(version)
            if account is None or record is None or record.header.kek_version != expected_kek:
                return False
            account.versions[version] = replace(record, header=header)
            if account.head is not None:
                refs = tuple(
                    replace(ref, kek_version=header.kek_version) if ref.version == version else ref
                    for ref in account.head.versions
                )
                account.head = replace(account.head, versions=refs)
            return True

    def set_health(self, account_id: str, health: Mapping[str, Any]) -> None:
        with self._lock:
            account = self._accounts.get(account_id)
            if account is not None and account.head is not None:
                account.head = replace(account.head, health=dict(health))

    def delete(self, account_id: str) -> bool:
        with self._lock:
            return self._accounts.pop(account_id, None) is not None

    def prune(self, account_id: str) -> int:
        """Drop versions the head does not refer to (see ``FirestoreVaultStore.prune``)."""
        with self._lock:
            account = self._accounts.get(account_id)
            if account is None:
                return 0
            kept = {ref.version for ref in account.head.versions} if account.head is not None else set()
            doomed = [version for version in account.versions if version not in kept]
            for version in doomed:
                del account.versions[version]
            if account.head is None and account.legacy is None:
                del self._accounts[account_id]
            return len(doomed)

    def list_accounts(self) -> Iterator[str]:
        with self._lock:
            ids = sorted(key for key, account in self._accounts.items() if account.head is not None)
        return iter(ids)

    def list_orphaned_accounts(self) -> Iterator[str]:
        with self._lock:
            ids = sorted(key for key, account in self._accounts.items()
                         if account.head is None and account.versions)
        return iter(ids)

    def list_legacy(self) -> Iterator[str]:
        with self._lock:
            ids = sorted(key for key, account in self._accounts.items()
                         if account.legacy is not None and "creds" in account.legacy)
        return iter(ids)

    def get_legacy(self, account_id: str) -> LegacyRecord | None:
        from shared.vault.legacy import parse_legacy_time

        with self._lock:
            account = self._accounts.get(account_id)
            if account is None or account.legacy is None or "creds" not in account.legacy:
                return None
            document = copy.deepcopy(account.legacy)
            return LegacyRecord(account_id=account_id, creds=document["creds"],
                                updated_at=parse_legacy_time(document.get("updatedAt")),
                                token=account.legacy_rev)

    def remove_legacy(self, record: LegacyRecord) -> bool:
        with self._lock:
            account = self._accounts.get(record.account_id)
            if account is None or account.legacy is None or account.legacy_rev != record.token:
                return False
            account.legacy = None
            if account.head is None:
                del self._accounts[record.account_id]
            return True
