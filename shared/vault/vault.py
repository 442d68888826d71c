"""The session vault: save, restore, inspect, verify, rotate and migrate whole auth states.

This is the API the functions and the CLI call. Every save writes a new encrypted version
(:mod:`shared.vault.crypto`) through a :class:`VaultStore`; restore walks the kept versions newest
first and returns the first that decrypts and validates, with the reasons the newer ones were
skipped. Errors come from :mod:`shared.errors`; nothing here logs key material or state contents.

Rules a save follows (all decided against the head read in the same transaction):

1. The state must validate (schema, required credentials, size); otherwise nothing is written.
2. ``generation`` lower than the head's: :class:`StaleGenerationError` (fencing against stale writers).
3. Same plaintext hash as the latest version: no new version (the head's generation is raised if
   the save carries a higher one).
4. Otherwise version ``latest + 1`` is written with the head, and versions beyond ``versions_kept``
   are deleted, in the same commit.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final, Literal

from shared.authstate import AuthState, validate_state
from shared.errors import (
    IntegrityError,
    KekUnavailableError,
    NotFoundError,
    NoUsableVersionError,
    OutOfOrderSnapshotError,
    SkippedVersion,
    StaleGenerationError,
    StateTooLargeError,
    StateValidationError,
    VaultError,
)
from shared.snapshot import canonical_state_bytes, parse_state
from shared.vault import crypto
from shared.vault.kek import KekProvider
from shared.vault.legacy import legacy_state
from shared.vault.store import (
    BatchReadStore,
    Head,
    HeadOnly,
    NewVersion,
    SaveGuard,
    VaultStore,
    VersionRecord,
    VersionRef,
)

log = logging.getLogger(__name__)

DEFAULT_VERSIONS_KEPT: Final = 3
#: Firestore documents are limited to 1 MiB; ciphertext over this is split into chunk documents.
CHUNK_BYTES: Final = 900_000
#: Largest ciphertext of one version: it is written in one commit, and commits are limited to 10 MiB.
MAX_STORED_BYTES: Final = 9 * 1024 * 1024

MAX_ACCOUNT_ID_LEN: Final = 256


def check_account_id(account_id: str) -> None:
    """Refuse ids that are not usable as Firestore document ids (or would alias another path)."""
    if (
        not account_id
        or len(account_id) > MAX_ACCOUNT_ID_LEN
        or "/" in account_id
        or account_id in {".", ".."}
        or (account_id.startswith("__") and account_id.endswith("__"))
    ):
        raise StateValidationError(f"account id {account_id!r} is not a valid document id")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SaveResult:
    account_id: str
    version: int
    generation: int
    created: bool  # False: the state equals the latest version, nothing new was written
    sha256: str
    raw_size: int
    stored_size: int
    dropped: tuple[int, ...] = ()
    versions_kept: int = 0  # how many versions the head keeps after this save


@dataclass(frozen=True)
class RestoreResult:
    account_id: str
    version: int
    generation: int
    #: The state's canonical bytes as stored: exactly those a save validated (the AEAD tag and the
    #: SHA-256 in the bound header prove it), for callers that pass the state on serialised.
    state_bytes: bytes = field(repr=False)
    skipped: tuple[SkippedVersion, ...] = ()
    _parsed: list[AuthState] = field(default_factory=list, repr=False, compare=False)

    @property
    def state(self) -> AuthState:
        """The state, parsed on first use (a batched restore for a connector never needs it)."""
        if not self._parsed:
            state = parse_state(self.state_bytes)
            validate_state(state, len(self.state_bytes))
            self._parsed.append(state)
        return self._parsed[0]

    @property
    def fell_back(self) -> bool:
        return bool(self.skipped)


@dataclass(frozen=True)
class VersionInfo:
    version: int
    generation: int
    created_at: datetime
    kek_version: str
    chunks: int
    stored_size: int


@dataclass(frozen=True)
class AccountInfo:
    """Metadata of one account's stored state (no key material)."""

    account_id: str
    latest_version: int
    generation: int
    sha256: str
    raw_size: int
    stored_size: int
    created_at: datetime
    saved_at: datetime
    health: dict[str, Any]
    versions: tuple[VersionInfo, ...]


@dataclass(frozen=True)
class VerifyReport:
    account_id: str
    ok: tuple[int, ...]
    failed: tuple[SkippedVersion, ...]
    #: (version, KEK version) of kept versions wrapped under a KEK version that is not the current one:
    #: disabling that KEK version would make them unreadable, so a rotation is not complete while any remain.
    old_kek: tuple[tuple[int, str], ...] = ()
    current_kek: str = ""

    @property
    def passed(self) -> bool:
        return not self.failed and bool(self.ok)


@dataclass(frozen=True)
class RotateReport:
    account_id: str
    kek_version: str
    rewrapped: tuple[int, ...]
    current: tuple[int, ...]
    failed: tuple[SkippedVersion, ...]


MigrationOutcome = Literal["absent", "migrated", "kept_newer", "changed_meanwhile"]


@dataclass(frozen=True)
class MigrationResult:
    account_id: str
    outcome: MigrationOutcome
    version: int | None = None


class Vault:
    """Encrypted, versioned storage of whole auth states, one account at a time."""

    def __init__(
        self,
        store: VaultStore,
        kek: KekProvider,
        *,
        versions_kept: int = DEFAULT_VERSIONS_KEPT,
        clock: Callable[[], datetime] = _utcnow,
        rand: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        if versions_kept < 1:
            raise ValueError("versions_kept must be at least 1")
        self._store = store
        self._kek = kek
        self._versions_kept = versions_kept
        self._clock = clock
        self._rand = rand

    @property
    def kek(self) -> KekProvider:
        return self._kek

    # --- save ------------------------------------------------------------------------------------

    def save(self, account_id: str, state: AuthState, generation: int,
             produced_at: datetime | None = None, *, guard: SaveGuard | None = None) -> SaveResult:
        """Store ``state`` as a new version (see the module docstring for the rules).

        ``produced_at`` (when the connector produced the state) orders saves within one generation: a state
        produced before the stored one is refused with :class:`OutOfOrderSnapshotError`, checked inside the
        same atomic commit as the write, so concurrent late deliveries cannot interleave. ``guard``: the
        caller's own documents, checked in the same read as the head and updated in the same commit
        (:class:`~shared.vault.store.SaveGuard`).
        """
        check_account_id(account_id)
        if generation < 0:
            raise StateValidationError("generation must be non-negative")
        plaintext = canonical_state_bytes(state)
        validate_state(state, len(plaintext))
        prepared = crypto.prepare(plaintext)
        if len(prepared.body) + crypto.TAG_LEN > MAX_STORED_BYTES:
            raise StateTooLargeError(len(prepared.body), MAX_STORED_BYTES)
        kek_version = self._kek.current_version()
        kek = self._kek.key(kek_version)
        digest = prepared.plaintext_sha256.hex()
        seen: list[Head | None] = [None]  # the head the last plan was made against

        def plan(head: Head | None) -> NewVersion | HeadOnly | None:
            seen[0] = head
            now = self._clock()
            if head is not None and generation < head.generation:
                raise StaleGenerationError(account_id, generation, head.generation)
            if head is not None and head.sha256 == digest:
                if generation > head.generation:
                    return HeadOnly(replace(head, generation=generation, produced_at=produced_at))
                return None
            if (head is not None and produced_at is not None and head.produced_at is not None
                    and generation == head.generation and produced_at < head.produced_at):
                raise OutOfOrderSnapshotError(account_id, generation, produced_at.isoformat(),
                                              head.produced_at.isoformat())
            version = head.latest_version + 1 if head is not None else 1
            binding = crypto.Binding(account_id, version, generation)
            header, ciphertext = crypto.encrypt(prepared, binding, kek_version, kek, rand=self._rand)
            chunks = math.ceil(len(ciphertext) / CHUNK_BYTES) if len(ciphertext) > CHUNK_BYTES else 0
            ref = VersionRef(version=version, generation=generation, chunks=chunks,
                             stored_size=len(ciphertext), kek_version=kek_version, created_at=now)
            refs = (ref, *(head.versions if head is not None else ()))
            new_head = Head(
                account_id=account_id, latest_version=version, generation=generation, sha256=digest,
                raw_size=prepared.raw_size, stored_size=len(ciphertext),
                versions=refs[: self._versions_kept],
                created_at=head.created_at if head is not None else now, saved_at=now,
                health={"status": "ok"},
                produced_at=produced_at,
            )
            record = VersionRecord(version=version, generation=generation, header=header,
                                   ciphertext=ciphertext, created_at=now)
            return NewVersion(record=record, head=new_head, drop=refs[self._versions_kept :])

        decision = self._store.commit(account_id, plan, guard) if guard is not None else \
            self._store.commit(account_id, plan)
        if isinstance(decision, NewVersion):
            log.info("account %s: saved v%d (generation %d, %d bytes stored)", account_id,
                     decision.head.latest_version, generation, decision.head.stored_size)
            return SaveResult(account_id, decision.head.latest_version, generation, True, digest,
                              prepared.raw_size, decision.head.stored_size,
                              tuple(ref.version for ref in decision.drop), len(decision.head.versions))
        head = decision.head if isinstance(decision, HeadOnly) else seen[0]
        if head is None:  # unreachable: a plan without a head always writes a first version
            raise NotFoundError(f"account {account_id} vanished during save")
        log.info("account %s: state unchanged, v%d kept", account_id, head.latest_version)
        return SaveResult(account_id, head.latest_version, head.generation, False, digest,
                          head.raw_size, head.stored_size, versions_kept=len(head.versions))

    # --- restore ---------------------------------------------------------------------------------

    def _head(self, account_id: str) -> Head:
        head = self._store.get_head(account_id)
        if head is None:
            raise NotFoundError(f"no stored state for account {account_id}")
        return head

    def _open(self, account_id: str, ref: VersionRef) -> tuple[VersionRecord, bytes, AuthState]:
        return self._open_record(account_id, ref, self._store.get_version(account_id, ref))

    def _open_record(self, account_id: str, ref: VersionRef,
                     record: VersionRecord) -> tuple[VersionRecord, bytes, AuthState]:
        record, plaintext = self._decrypt_record(account_id, ref, record)
        state = parse_state(plaintext)
        validate_state(state, len(plaintext))
        return record, plaintext, state

    def _decrypt_record(self, account_id: str, ref: VersionRef,
                        record: VersionRecord) -> tuple[VersionRecord, bytes]:
        """The canonical state bytes of ``record``, proven to be those its save validated."""
        if record.version != ref.version or record.generation != ref.generation:
            raise IntegrityError(f"account {account_id} v{ref.version}: record does not match the head")
        binding = crypto.Binding(account_id, record.version, record.generation)
        plaintext = crypto.decrypt(record.header, record.ciphertext, binding,
                                   self._kek.key(record.header.kek_version))
        return record, plaintext

    def restore(self, account_id: str) -> RestoreResult:
        """The newest version that decrypts and validates; older ones are tried when newer fail."""
        head = self._head(account_id)
        skipped: list[SkippedVersion] = []
        tried: set[int] = set()
        for _attempt in range(2):
            for ref in head.versions:
                if ref.version in tried:
                    continue
                tried.add(ref.version)
                try:
                    record, plaintext, state = self._open(account_id, ref)
                except (VaultError, StateValidationError) as exc:
                    log.warning("account %s: v%d skipped in restore: %s", account_id, ref.version,
                                exc.__class__.__name__)
                    skipped.append(SkippedVersion(ref.version, exc))
                    continue
                self._record_health(head, skipped)
                return RestoreResult(account_id, record.version, record.generation, plaintext, tuple(skipped),
                                     [state])
            # A save may have committed while we read, dropping the versions we were reading: if the
            # head moved on, its new versions are worth one more pass.
            fresh = self._store.get_head(account_id)
            if fresh is None or fresh.latest_version == head.latest_version:
                break
            head = fresh
            # versions the save dropped were superseded, not broken: they are not a fallback
            still_kept = {ref.version for ref in head.versions}
            skipped = [s for s in skipped if s.version in still_kept]
        self._record_health(head, skipped, failed=True)
        raise NoUsableVersionError(account_id, skipped)

    def restore_many(self, account_ids: Sequence[str]) -> dict[str, RestoreResult | VaultError | StateValidationError]:
        """:meth:`restore` for many accounts: each one's result, or the error :meth:`restore` raises.

        With a :class:`~shared.vault.store.BatchReadStore`, heads and newest versions are read in two
        round trips for all; an account whose newest version does not open that way goes through
        :meth:`restore` (fallback, re-read), except when its KEK is out of reach: that is
        :class:`KekUnavailableError` at once (no older state stands in), and the other accounts of
        the batch whose newest version needs that KEK version get the same answer without a wait.

        A newest version read that way is decrypted but not parsed: decrypting proves its bytes are
        the ones its save validated (AEAD tag, SHA-256 in the bound header), and a restart of a
        thousand accounts would otherwise parse each state twice (here and in the connector) for
        nothing. ``state`` parses on first use."""
        wanted = list(dict.fromkeys(account_ids))
        heads: dict[str, Head] = {}
        newest: dict[str, VersionRecord] = {}
        if isinstance(self._store, BatchReadStore) and len(wanted) > 1:
            heads = self._store.get_heads(wanted)
            newest = self._store.get_versions([(a, h.versions[0]) for a, h in heads.items() if h.versions])
        results: dict[str, RestoreResult | VaultError | StateValidationError] = {}
        out_of_reach: dict[str, KekUnavailableError] = {}  # KEK version -> what fetching it raised
        for account_id in wanted:
            head, record = heads.get(account_id), newest.get(account_id)
            try:
                if head is not None and record is not None:
                    if record.header.kek_version in out_of_reach:
                        results[account_id] = out_of_reach[record.header.kek_version]
                        continue
                    try:
                        record, plaintext = self._decrypt_record(account_id, head.versions[0], record)
                    except KekUnavailableError as exc:
                        out_of_reach[record.header.kek_version] = exc
                        results[account_id] = exc
                        continue
                    except (VaultError, StateValidationError):
                        pass  # the full walk below says why, and falls back
                    else:
                        self._record_health(head, [])
                        results[account_id] = RestoreResult(account_id, record.version, record.generation,
                                                            plaintext)
                        continue
                results[account_id] = self.restore(account_id)
            except (VaultError, StateValidationError) as exc:
                results[account_id] = exc
        return results

    def _record_health(self, head: Head, skipped: list[SkippedVersion], *, failed: bool = False) -> None:
        status = "failed" if failed else "fell_back" if skipped else "ok"
        if status == "ok" and head.health.get("status") == "ok":
            return  # nothing to record: avoid a write on every healthy restore
        self._store.set_health(head.account_id, {
            "status": status,
            "at": self._clock(),
            "skipped": [{"version": s.version, "reason": s.reason} for s in skipped],
        })

    # --- metadata, verification, deletion ---------------------------------------------------------

    def inspect(self, account_id: str) -> AccountInfo:
        head = self._head(account_id)
        return AccountInfo(
            account_id=account_id, latest_version=head.latest_version, generation=head.generation,
            sha256=head.sha256, raw_size=head.raw_size, stored_size=head.stored_size,
            created_at=head.created_at, saved_at=head.saved_at, health=dict(head.health),
            versions=tuple(VersionInfo(r.version, r.generation, r.created_at, r.kek_version, r.chunks,
                                       r.stored_size) for r in head.versions),
        )

    def verify(self, account_id: str) -> VerifyReport:
        """Decrypt and validate every kept version of one account."""
        head = self._head(account_id)
        current = self._kek.current_version()
        ok: list[int] = []
        failed: list[SkippedVersion] = []
        old_kek = tuple((ref.version, ref.kek_version) for ref in head.versions if ref.kek_version != current)
        for ref in head.versions:
            try:
                _, plaintext, _ = self._open(account_id, ref)
                if ref.version == head.latest_version and hashlib.sha256(plaintext).hexdigest() != head.sha256:
                    raise IntegrityError(f"account {account_id} v{ref.version}: hash differs from the head")
            except (VaultError, StateValidationError) as exc:
                failed.append(SkippedVersion(ref.version, exc))
            else:
                ok.append(ref.version)
        return VerifyReport(account_id, tuple(ok), tuple(failed), old_kek, current)

    def delete(self, account_id: str) -> bool:
        """Remove the head, every version and every chunk; False if nothing was stored."""
        deleted = self._store.delete(account_id)
        if deleted:
            log.info("account %s: stored state deleted", account_id)
        return deleted

    def list_accounts(self) -> Iterator[str]:
        return self._store.list_accounts()

    def list_orphaned_accounts(self) -> Iterator[str]:
        """Accounts whose versions or chunks outlived their head (an interrupted delete); ``prune`` each."""
        return self._store.list_orphaned_accounts()

    def prune(self, account_id: str) -> int:
        """Delete the versions and chunks the head does not refer to (all, without a head); returns how many."""
        return self._store.prune(account_id)

    # --- KEK rotation ------------------------------------------------------------------------------

    def rotate_kek(self, account_id: str) -> RotateReport:
        """Re-wrap the data keys of every kept version under the newest KEK version.

        Payloads are not re-encrypted. A version still wrapped the format-1 way (under the KEK itself) is
        re-wrapped under its account's key even when its KEK version is current. A version that fails to
        unwrap is reported and left as is, so it keeps opening under its old KEK version if that comes back.
        """
        head = self._head(account_id)
        target = self._kek.current_version()
        target_key = self._kek.key(target)
        rewrapped: list[int] = []
        current: list[int] = []
        failed: list[SkippedVersion] = []
        for ref in head.versions:
            try:
                record = self._store.get_version(account_id, ref)
                old = record.header.kek_version
                if old == target and record.header.wrap_scheme == crypto.WRAP_ACCOUNT_KEY:
                    current.append(ref.version)
                    continue
                binding = crypto.Binding(account_id, record.version, record.generation)
                header = crypto.rewrap(record.header, binding, self._kek.key(old), target, target_key,
                                       rand=self._rand)
                if not self._store.replace_header(account_id, ref.version, header, old):
                    raise IntegrityError(f"account {account_id} v{ref.version}: changed during rotation")
                rewrapped.append(ref.version)
            except VaultError as exc:
                failed.append(SkippedVersion(ref.version, exc))
        if rewrapped:
            log.info("account %s: re-wrapped %d versions under KEK %s", account_id, len(rewrapped), target)
        return RotateReport(account_id, target, tuple(rewrapped), tuple(current), tuple(failed))

    # --- legacy migration --------------------------------------------------------------------------

    def list_legacy(self) -> Iterator[str]:
        return self._store.list_legacy()

    def migrate_legacy(self, account_id: str) -> MigrationResult:
        """Move a reference-system plaintext document into the vault (idempotent).

        A stored state at least as new as the legacy one is never overwritten. The plaintext is
        removed only after the encrypted copy has been read back and matched, and only if the
        legacy document did not change in the meantime.
        """
        record = self._store.get_legacy(account_id)
        if record is None:
            return MigrationResult(account_id, "absent")
        head = self._store.get_head(account_id)
        if head is not None and (record.updated_at is None or record.updated_at <= head.saved_at):
            self.restore(account_id)  # the stored copy must open before the plaintext goes
            outcome: MigrationOutcome = "kept_newer"
            version = head.latest_version
        else:
            state = legacy_state(record.creds)
            result = self.save(account_id, state, head.generation if head is not None else 0)
            opened = self.restore(account_id)
            if opened.version != result.version or opened.fell_back:
                raise IntegrityError(f"account {account_id}: migrated v{result.version} does not read back")
            if hashlib.sha256(canonical_state_bytes(opened.state)).hexdigest() != result.sha256:
                raise IntegrityError(f"account {account_id}: migrated state reads back different")
            outcome, version = "migrated", result.version
        if not self._store.remove_legacy(record):
            log.warning("account %s: legacy document changed during migration; plaintext kept", account_id)
            return MigrationResult(account_id, "changed_meanwhile", version)
        log.info("account %s: legacy plaintext migrated (%s, v%d)", account_id, outcome, version)
        return MigrationResult(account_id, outcome, version)


__all__ = [
    "AccountInfo", "MigrationResult", "RestoreResult", "RotateReport", "SaveResult",
    "SkippedVersion", "Vault", "VerifyReport", "VersionInfo",
]
