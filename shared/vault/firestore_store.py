"""The vault's Firestore store (google-cloud-firestore).

Layout (docs/ARCHITECTURE.md)::

    whatsapp_sessions/{accountId}                      head: latestVersion, generation, sha256, sizes,
                                                       createdAt, savedAt, health, versions[] (kept refs)
    whatsapp_sessions/{accountId}/versions/{v:010d}    version, generation, header, ciphertext | chunks
    .../versions/{v:010d}/chunks/{i}                   data (ciphertext bytes i*CHUNK .. ), index

The head document is the reference system's document too: head fields are written with field-path
merges so a legacy ``creds`` map (and ``accountId``, ``updatedAt``) next to them survives until
migration removes it. A save writes the version, its chunks, the head and the deletion of dropped
versions in one commit, guarded by a precondition on the head it planned against, so a version is
visible only once all of it is written and two saves can never both build on the same head.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.errors import IntegrityError, NotFoundError, VaultConflictError, VaultError
from shared.vault.crypto import EnvelopeHeader
from shared.vault.legacy import parse_legacy_time
from shared.vault.store import (
    Decision,
    Head,
    LegacyRecord,
    NewVersion,
    Planner,
    SaveGuard,
    VersionRecord,
    VersionRef,
)
from shared.vault.vault import CHUNK_BYTES

log = logging.getLogger(__name__)

SESSIONS: Final = "whatsapp_sessions"
VERSIONS: Final = "versions"
CHUNKS: Final = "chunks"
HEAD_FORMAT: Final = "keeper.vault.v1"
_DELETE_BATCH: Final = 400
TRANSACTION_ATTEMPTS: Final = 8
#: A save that finds the head changed under it plans again, at most this many times in all.
COMMIT_ATTEMPTS: Final = 8
COMMIT_BACKOFF_S: Final = 0.02
#: Never stored: a fence's precondition rides on deleting it, a write that changes nothing.
_FENCE_FIELD: Final = "_keeperVaultFence"


def version_id(version: int) -> str:
    return f"{version:010d}"


def _ref_to_record(ref: VersionRef) -> dict[str, Any]:
    return {"version": ref.version, "generation": ref.generation, "chunks": ref.chunks,
            "storedSize": ref.stored_size, "kekVersion": ref.kek_version, "createdAt": ref.created_at}


def _ref_from_record(record: Mapping[str, Any]) -> VersionRef:
    return VersionRef(version=int(record["version"]), generation=int(record["generation"]),
                      chunks=int(record.get("chunks", 0)), stored_size=int(record["storedSize"]),
                      kek_version=str(record["kekVersion"]), created_at=record["createdAt"])


def _head_to_record(head: Head) -> dict[str, Any]:
    return {
        "format": HEAD_FORMAT, "latestVersion": head.latest_version, "generation": head.generation,
        "sha256": head.sha256, "rawSize": head.raw_size, "storedSize": head.stored_size,
        "createdAt": head.created_at, "savedAt": head.saved_at, "health": dict(head.health),
        "producedAt": head.produced_at,
        "versions": [_ref_to_record(ref) for ref in head.versions],
    }


def _head_from_record(account_id: str, record: Mapping[str, Any] | None) -> Head | None:
    if not record or "latestVersion" not in record:
        return None
    try:
        return Head(
            account_id=account_id, latest_version=int(record["latestVersion"]),
            generation=int(record["generation"]), sha256=str(record["sha256"]),
            raw_size=int(record["rawSize"]), stored_size=int(record["storedSize"]),
            versions=tuple(_ref_from_record(item) for item in record.get("versions", [])),
            created_at=record["createdAt"], saved_at=record["savedAt"],
            health=dict(record.get("health") or {}),
            produced_at=record.get("producedAt"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise IntegrityError(f"account {account_id}: head document is malformed ({exc})") from exc


class FirestoreVaultStore:
    """:class:`shared.vault.store.VaultStore` on Firestore."""

    def __init__(self, client: firestore.Client, collection: str = SESSIONS) -> None:
        self._db = client
        self._collection = collection

    def _transaction(self) -> Any:
        return self._db.transaction(max_attempts=TRANSACTION_ATTEMPTS)

    def _head_ref(self, account_id: str) -> Any:
        return self._db.collection(self._collection).document(account_id)

    def _version_ref(self, account_id: str, version: int) -> Any:
        return self._head_ref(account_id).collection(VERSIONS).document(version_id(version))

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except VaultError:
            raise
        except (gexc.Aborted, gexc.Conflict, gexc.FailedPrecondition) as exc:
            raise VaultConflictError(f"{what}: concurrent change ({exc.message})") from exc
        except ValueError as exc:
            # google-cloud-firestore gives up on a contended transaction with a bare ValueError.
            if "Failed to commit transaction" in str(exc):
                raise VaultConflictError(f"{what}: gave up after repeated concurrent changes") from exc
            raise
        except gexc.GoogleAPICallError as exc:
            raise VaultError(f"{what}: Firestore error {exc.__class__.__name__}: {exc.message}") from exc

    # --- reads -----------------------------------------------------------------------------------

    def get_head(self, account_id: str) -> Head | None:
        snap = self._call(f"account {account_id}: read head", self._head_ref(account_id).get)
        return _head_from_record(account_id, snap.to_dict() if snap.exists else None)

    def get_heads(self, account_ids: Sequence[str]) -> dict[str, Head]:
        """:class:`shared.vault.store.BatchReadStore`: the heads of many accounts in one read."""
        refs = [self._head_ref(account_id) for account_id in dict.fromkeys(account_ids)]
        snaps = self._call("read heads", lambda: list(self._db.get_all(refs))) if refs else []
        heads: dict[str, Head] = {}
        for snap in snaps:
            try:
                head = _head_from_record(snap.id, snap.to_dict() if snap.exists else None)
            except IntegrityError:
                continue  # read alone, it raises for the caller to see
            if head is not None:
                heads[snap.id] = head
        return heads

    def get_versions(self, wanted: Sequence[tuple[str, VersionRef]]) -> dict[str, VersionRecord]:
        """:class:`shared.vault.store.BatchReadStore`: one version of each of many accounts in one read."""
        by_path = {self._version_ref(account_id, ref.version).path: (account_id, ref) for account_id, ref in wanted}
        refs = [self._version_ref(account_id, ref.version) for account_id, ref in by_path.values()]
        snaps = self._call("read versions", lambda: list(self._db.get_all(refs))) if refs else []
        records: dict[str, VersionRecord] = {}
        for snap in snaps:
            account_id, ref = by_path[snap.reference.path]
            try:
                records[account_id] = self._version_from(account_id, ref, snap)
            except VaultError:
                continue  # read alone, it raises for the caller to see
        return records

    def get_version(self, account_id: str, ref: VersionRef) -> VersionRecord:
        where = f"account {account_id} v{ref.version}"
        snap = self._call(f"{where}: read", self._version_ref(account_id, ref.version).get)
        return self._version_from(account_id, ref, snap)

    def _version_from(self, account_id: str, ref: VersionRef, snap: Any) -> VersionRecord:
        where = f"account {account_id} v{ref.version}"
        if not snap.exists:
            raise NotFoundError(f"{where}: version document is missing")
        data = snap.to_dict()
        chunk_count = data.get("chunks", 0)
        # The head (written in the same commit) says how many chunks there are; a version document
        # that disagrees was edited, and its count must not drive how many documents are read.
        if type(chunk_count) is not int or chunk_count != ref.chunks:
            raise IntegrityError(f"{where}: version document says {chunk_count!r} chunks, the head {ref.chunks}")
        if chunk_count == 0:
            ciphertext = data.get("ciphertext")
            if not isinstance(ciphertext, bytes):
                raise IntegrityError(f"{where}: version document holds no ciphertext")
        else:
            chunk_refs = [snap.reference.collection(CHUNKS).document(str(i)) for i in range(chunk_count)]
            chunks = {
                chunk.id: chunk.to_dict()
                for chunk in self._call(f"{where}: read chunks", lambda: list(self._db.get_all(chunk_refs)))
                if chunk.exists
            }
            parts: list[bytes] = []
            for i in range(chunk_count):
                part = chunks.get(str(i), {}).get("data")
                if not isinstance(part, bytes):
                    raise IntegrityError(f"{where}: chunk {i} of {chunk_count} is missing")
                parts.append(part)
            ciphertext = b"".join(parts)
        try:
            header_record = data["header"]
            return VersionRecord(version=int(data["version"]), generation=int(data["generation"]),
                                 header=EnvelopeHeader.from_record(header_record), ciphertext=ciphertext,
                                 created_at=data["createdAt"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{where}: version document is malformed ({exc})") from exc

    # --- the save transaction ----------------------------------------------------------------------

    def _write_version(self, txn: Any, account_id: str, record: VersionRecord, chunk_count: int) -> None:
        ref = self._version_ref(account_id, record.version)
        doc: dict[str, Any] = {"version": record.version, "generation": record.generation,
                               "header": record.header.to_record(), "chunks": chunk_count,
                               "createdAt": record.created_at}
        if chunk_count == 0:
            doc["ciphertext"] = record.ciphertext
        # set, not create: the head read in this transaction already decided the number, and a
        # leftover document of an interrupted deletion must not block the account forever.
        txn.set(ref, doc)
        for i in range(chunk_count):
            data = record.ciphertext[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]
            txn.set(ref.collection(CHUNKS).document(str(i)), {"index": i, "data": data})

    def _delete_version(self, txn: Any, account_id: str, ref: VersionRef) -> None:
        version_ref = self._version_ref(account_id, ref.version)
        for i in range(ref.chunks):
            txn.delete(version_ref.collection(CHUNKS).document(str(i)))
        txn.delete(version_ref)

    def commit(self, account_id: str, planner: Planner, guard: SaveGuard | None = None) -> Decision:
        """Read the head, plan, and write the plan in one commit guarded by a precondition on the head.

        Optimistic instead of a transaction: the commit carries "the head is unchanged since it was read"
        (its update time, or "absent" for a first save), so the version, its chunks, the new head and the
        deletion of rotated-out versions land together only if the plan was made against the current head;
        otherwise nothing is written and the save plans again. Same guarantee, two calls instead of three,
        and no locks held between them (the emulator's pessimistic transaction locks made concurrent saves
        and account writes wait on each other). A ``guard``'s documents are read in the head's call and
        its updates are part of the commit (each with an "exists" precondition); its fences (the lease)
        carry "unchanged since read" too, so a claim in between sends the save back to read and check.
        """
        head_ref = self._head_ref(account_id)
        where = f"account {account_id}: save"
        guard_refs = [self._db.document(path) for path in guard.reads] if guard is not None else []
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            snaps = {snap.reference.path: snap for snap in
                     self._call(f"{where}: read head", lambda: list(self._db.get_all([head_ref, *guard_refs])))}
            snap = snaps[head_ref.path]
            if guard is not None:
                guard.check({ref.path: (snaps[ref.path].to_dict() if snaps[ref.path].exists else None)
                             for ref in guard_refs})
            head = _head_from_record(account_id, snap.to_dict() if snap.exists else None)
            decision = planner(head)
            if decision is None:
                return None
            batch = self._db.batch()
            fences = {path: snaps[self._db.document(path).path] for path in (guard.fences if guard else ())}
            updates = guard.updates(decision.head) if guard is not None and isinstance(decision, NewVersion) else {}
            if isinstance(decision, NewVersion):
                chunk_count = next(r.chunks for r in decision.head.versions
                                   if r.version == decision.record.version)
                self._write_version(batch, account_id, decision.record, chunk_count)
                for ref in decision.drop:
                    self._delete_version(batch, account_id, ref)
            for path, changes in updates.items():
                fence = fences.get(path)
                option = (self._db.write_option(last_update_time=fence.update_time)
                          if fence is not None and fence.exists else None)
                batch.update(self._db.document(path), dict(changes), option=option)
            for path, fence in fences.items():
                if path not in updates and fence.exists:
                    # Deleting a field that is never there changes nothing; its precondition is the point.
                    batch.update(self._db.document(path), {_FENCE_FIELD: firestore.DELETE_FIELD},
                                 option=self._db.write_option(last_update_time=fence.update_time))
            record = _head_to_record(decision.head)
            record["accountId"] = account_id
            if snap.exists:
                # Field by field, like a merge: a legacy document's plaintext fields stay beside the head.
                batch.update(head_ref, record, option=self._db.write_option(last_update_time=snap.update_time))
            else:
                batch.create(head_ref, record)
            try:
                self._call(where, batch.commit)
            except VaultConflictError:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0, COMMIT_BACKOFF_S * attempt))
                continue
            return decision
        raise AssertionError("unreachable")

    # --- header swaps (KEK rotation), health, deletion ----------------------------------------------

    def replace_header(self, account_id: str, version: int, header: EnvelopeHeader, expected_kek: str) -> bool:
        version_ref = self._version_ref(account_id, version)
        head_ref = self._head_ref(account_id)

        @firestore.transactional
        def run(txn: Any) -> bool:
            version_snap = version_ref.get(transaction=txn)
            head_snap = head_ref.get(transaction=txn)
            if not version_snap.exists:
                return False
            current = version_snap.to_dict().get("header", {})
            if str(current.get("kekVersion")) != expected_kek:
                return False
            txn.update(version_ref, {"header": header.to_record()})
            head_record = head_snap.to_dict() if head_snap.exists else None
            if head_record and "versions" in head_record:
                refs = [dict(item, kekVersion=header.kek_version) if int(item["version"]) == version else item
                        for item in head_record["versions"]]
                txn.update(head_ref, {"versions": refs})
            return True

        done: bool = self._call(f"account {account_id} v{version}: replace header", run, self._transaction())
        return done

    def set_health(self, account_id: str, health: Mapping[str, Any]) -> None:
        try:
            self._head_ref(account_id).update({"health": dict(health)})
        except gexc.NotFound:
            return
        except gexc.GoogleAPICallError as exc:
            log.warning("account %s: could not record health: %s", account_id, exc.__class__.__name__)

    def delete(self, account_id: str) -> bool:
        head_ref = self._head_ref(account_id)

        def run() -> bool:
            existed = bool(head_ref.get().exists)
            doomed: list[Any] = []
            for version_ref in head_ref.collection(VERSIONS).list_documents():
                doomed.extend(version_ref.collection(CHUNKS).list_documents())
                doomed.append(version_ref)
            existed = existed or bool(doomed)
            # The head goes first: from then on no restore sees the account, even if the rest fails.
            head_ref.delete()
            for start in range(0, len(doomed), _DELETE_BATCH):
                batch = self._db.batch()
                for ref in doomed[start : start + _DELETE_BATCH]:
                    batch.delete(ref)
                batch.commit()
            return existed

        deleted: bool = self._call(f"account {account_id}: delete", run)
        return deleted

    def prune(self, account_id: str) -> int:
        """Delete version and chunk documents the head does not refer to; returns how many went.

        Saves drop old versions in their own commit, so orphans only come from interrupted deletions
        or hand edits. Versions are listed before the head is read, and only those at or below the
        head's latest version are candidates, so a save committing meanwhile loses nothing. Without a
        head every listed document goes, in transactions that check the head is still absent: a first
        save (which numbers from 1 again) cannot have its new version deleted under it.
        """
        head_ref = self._head_ref(account_id)

        def run() -> int:
            listed = list(head_ref.collection(VERSIONS).list_documents())
            head = self.get_head(account_id)
            kept = {ref.version: ref.chunks for ref in head.versions} if head is not None else {}
            latest = head.latest_version if head is not None else None
            doomed: list[Any] = []
            for version_ref in listed:
                try:
                    version = int(version_ref.id)
                except ValueError:
                    version = -1
                if version in kept:
                    doomed.extend(chunk for chunk in version_ref.collection(CHUNKS).list_documents()
                                  if not chunk.id.isdigit() or int(chunk.id) >= kept[version])
                elif latest is None or version <= latest:
                    doomed.extend(version_ref.collection(CHUNKS).list_documents())
                    doomed.append(version_ref)
            if head is None:
                return self._delete_while_headless(account_id, doomed)
            for start in range(0, len(doomed), _DELETE_BATCH):
                batch = self._db.batch()
                for ref in doomed[start : start + _DELETE_BATCH]:
                    batch.delete(ref)
                batch.commit()
            if doomed:
                log.info("account %s: pruned %d orphaned documents", account_id, len(doomed))
            return len(doomed)

        pruned: int = self._call(f"account {account_id}: prune", run)
        return pruned

    def _delete_while_headless(self, account_id: str, doomed: list[Any]) -> int:
        head_ref = self._head_ref(account_id)
        deleted = 0
        for start in range(0, len(doomed), _DELETE_BATCH):
            refs = doomed[start : start + _DELETE_BATCH]

            @firestore.transactional
            def run(txn: Any, refs: list[Any] = refs) -> bool:
                snap = head_ref.get(transaction=txn)
                if _head_from_record(account_id, snap.to_dict() if snap.exists else None) is not None:
                    return False  # saved again meanwhile: the documents may be its new versions
                for ref in refs:
                    txn.delete(ref)
                return True

            if not run(self._transaction()):
                break
            deleted += len(refs)
        if deleted:
            log.info("account %s: pruned %d documents left without a head", account_id, deleted)
        return deleted

    # --- listings -----------------------------------------------------------------------------------

    def list_accounts(self) -> Iterator[str]:
        query = (self._db.collection(self._collection)
                 .where(filter=FieldFilter("latestVersion", ">=", 1)).select(["latestVersion"]))
        ids: list[str] = self._call("list accounts", lambda: sorted(snap.id for snap in query.stream()))
        return iter(ids)

    def list_orphaned_accounts(self) -> Iterator[str]:
        """Session documents that exist only through their versions or chunks (Firestore lists such
        "missing" documents), or that hold no head fields but have versions (a legacy document written
        again after a delete)."""
        collection = self._db.collection(self._collection)

        def run() -> list[str]:
            # Listed before the existing documents are read: a first save committing in between shows up
            # in both, so it is never taken for an orphan.
            listed = {ref.id for ref in collection.list_documents()}
            existing = {snap.id for snap in collection.select([]).stream()}
            headed = {snap.id for snap in collection.where(filter=FieldFilter("latestVersion", ">=", 1))
                      .select(["latestVersion"]).stream()}
            orphans = listed - existing
            for account_id in existing - headed:
                versions = collection.document(account_id).collection(VERSIONS).list_documents(page_size=1)
                if next(iter(versions), None) is not None:
                    orphans.add(account_id)
            return sorted(orphans)

        ids: list[str] = self._call("list orphaned accounts", run)
        return iter(ids)

    def list_legacy(self) -> Iterator[str]:
        query = (self._db.collection(self._collection)
                 .where(filter=FieldFilter("creds", "!=", None)).select(["accountId"]))
        ids: list[str] = self._call("list legacy documents", lambda: sorted(snap.id for snap in query.stream()))
        return iter(ids)

    # --- legacy documents ----------------------------------------------------------------------------

    def get_legacy(self, account_id: str) -> LegacyRecord | None:
        snap = self._call(f"account {account_id}: read legacy", self._head_ref(account_id).get)
        data = snap.to_dict() if snap.exists else None
        if not data or data.get("creds") is None:
            return None
        return LegacyRecord(account_id=account_id, creds=data["creds"],
                            updated_at=parse_legacy_time(data.get("updatedAt")),
                            token=(data["creds"], data.get("updatedAt")))

    def remove_legacy(self, record: LegacyRecord) -> bool:
        head_ref = self._head_ref(record.account_id)

        @firestore.transactional
        def run(txn: Any) -> bool:
            snap = head_ref.get(transaction=txn)
            data = snap.to_dict() if snap.exists else None
            if not data or (data.get("creds"), data.get("updatedAt")) != record.token:
                return False  # the reference system wrote again: keep its plaintext for the next run
            txn.update(head_ref, {"creds": firestore.DELETE_FIELD, "updatedAt": firestore.DELETE_FIELD,
                                  "legacyMigratedAt": firestore.SERVER_TIMESTAMP})
            return True

        done: bool = self._call(f"account {record.account_id}: remove legacy", run, self._transaction())
        return done

