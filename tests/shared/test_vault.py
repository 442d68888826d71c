"""The Vault facade on the in-memory store: saving, fencing, fallback, rotation, sealing, migration."""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.authstate import MAX_STATE_BYTES, AuthState
from shared.bufferjson import to_plain
from shared.errors import (
    NotFoundError,
    NoUsableVersionError,
    OutOfOrderSnapshotError,
    SealingError,
    StaleGenerationError,
    StateTooLargeError,
    StateValidationError,
)
from shared.sealing import SealingKeys, public_key_bytes, read_header, seal
from shared.snapshot import Snapshot, canonical_state_bytes, open_snapshot, snapshot_aad
from shared.vault import MemoryVaultStore, Vault, VaultStore
from shared.vault.kek import LocalFileKek, sealing_keys
from shared.vault.store import VersionRecord, VersionRef
from testkit.auth_states import grow, registered_state


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def kek(tmp_path: Path) -> LocalFileKek:
    return LocalFileKek(tmp_path / "keeper" / "kek.json")


@pytest.fixture
def store() -> MemoryVaultStore:
    return MemoryVaultStore()


@pytest.fixture
def vault(store: MemoryVaultStore, kek: LocalFileKek) -> Vault:
    return Vault(store, kek, clock=Clock())


def changed(state: AuthState, n: int) -> AuthState:
    other = state.copy()
    other.keys["session"][f"extra.{n}"] = os.urandom(64)
    return other


def test_save_then_restore_gives_the_same_state(vault: Vault) -> None:
    state = registered_state()
    result = vault.save("acct-1", state, generation=1)
    assert (result.version, result.created, result.generation) == (1, True, 1)
    assert result.sha256 == hashlib.sha256(canonical_state_bytes(state)).hexdigest()
    restored = vault.restore("acct-1")
    assert (restored.version, restored.fell_back) == (1, False)
    assert canonical_state_bytes(restored.state) == canonical_state_bytes(state)


def test_unchanged_state_is_a_no_op_but_raises_generation(vault: Vault, store: MemoryVaultStore) -> None:
    state = registered_state()
    vault.save("acct-1", state, 1)
    again = vault.save("acct-1", state.copy(), 1)
    assert (again.created, again.version) == (False, 1)
    higher = vault.save("acct-1", state, 4)
    assert (higher.created, higher.version, higher.generation) == (False, 1, 4)
    assert len(store.raw_versions("acct-1")) == 1
    with pytest.raises(StaleGenerationError):
        vault.save("acct-1", changed(state, 1), 3)


def test_save_reports_how_many_versions_the_head_keeps(vault: Vault) -> None:
    states = [changed(registered_state(), n) for n in range(5)]
    kept = [vault.save("acct-1", state, 1).versions_kept for state in states]
    assert kept == [1, 2, 3, 3, 3]
    again = vault.save("acct-1", states[-1], 1)  # no-op: the count comes from the head it matched
    assert (again.created, again.versions_kept) == (False, 3)


def test_stale_generation_is_refused_and_nothing_changes(vault: Vault, store: MemoryVaultStore) -> None:
    state = registered_state()
    vault.save("acct-1", state, 5)
    with pytest.raises(StaleGenerationError, match="generation 4"):
        vault.save("acct-1", changed(state, 1), 4)
    assert vault.inspect("acct-1").latest_version == 1
    assert list(store.raw_versions("acct-1")) == [1]


def test_only_the_last_versions_are_kept(store: MemoryVaultStore, kek: LocalFileKek) -> None:
    vault = Vault(store, kek, versions_kept=3, clock=Clock())
    state = registered_state()
    results = [vault.save("acct-1", changed(state, n), 1) for n in range(5)]
    assert [r.version for r in results] == [1, 2, 3, 4, 5]
    assert results[3].dropped == (1,)
    assert sorted(store.raw_versions("acct-1")) == [3, 4, 5]
    assert [v.version for v in vault.inspect("acct-1").versions] == [5, 4, 3]


def test_restore_falls_back_past_damaged_versions(vault: Vault, store: MemoryVaultStore) -> None:
    state = registered_state()
    vault.save("acct-1", state, 1)
    vault.save("acct-1", changed(state, 1), 1)
    vault.save("acct-1", changed(state, 2), 2)
    v3 = store.raw_versions("acct-1")[3]
    store.put_version("acct-1", replace(v3, ciphertext=v3.ciphertext[:-3]))
    v2 = store.raw_versions("acct-1")[2]
    flipped = bytearray(v2.ciphertext)
    flipped[10] ^= 1
    store.put_version("acct-1", replace(v2, ciphertext=bytes(flipped)))

    restored = vault.restore("acct-1")
    assert restored.version == 1
    assert [s.version for s in restored.skipped] == [3, 2]
    assert "truncated" in restored.skipped[0].reason
    assert "authenticate" in restored.skipped[1].reason
    assert canonical_state_bytes(restored.state) == canonical_state_bytes(state)
    assert vault.inspect("acct-1").health["status"] == "fell_back"
    report = vault.verify("acct-1")
    assert (report.ok, [f.version for f in report.failed], report.passed) == ((1,), [3, 2], False)


def test_no_usable_version(vault: Vault, store: MemoryVaultStore) -> None:
    vault.save("acct-1", registered_state(), 1)
    v1 = store.raw_versions("acct-1")[1]
    store.put_version("acct-1", replace(v1, ciphertext=b"\x00" * len(v1.ciphertext)))
    with pytest.raises(NoUsableVersionError, match="v1"):
        vault.restore("acct-1")
    assert vault.inspect("acct-1").health["status"] == "failed"


def test_blob_moved_to_another_account_does_not_open(vault: Vault, store: MemoryVaultStore) -> None:
    vault.save("acct-1", registered_state(1), 1)
    vault.save("acct-2", registered_state(2), 1)
    store.put_version("acct-2", store.raw_versions("acct-1")[1])
    with pytest.raises(NoUsableVersionError, match="IntegrityError"):
        vault.restore("acct-2")


def test_wrong_kek_does_not_open(store: MemoryVaultStore, kek: LocalFileKek, tmp_path: Path) -> None:
    Vault(store, kek).save("acct-1", registered_state(), 1)
    other = Vault(store, LocalFileKek(tmp_path / "other.json"))
    with pytest.raises(NoUsableVersionError, match="does not unwrap"):
        other.restore("acct-1")


def test_invalid_states_are_refused_and_nothing_is_written(vault: Vault, store: MemoryVaultStore) -> None:
    good = registered_state()
    vault.save("acct-1", good, 1)
    broken = good.copy()
    broken.creds = broken.creds.updated({"signedIdentityKey": None})
    with pytest.raises(StateValidationError, match="signedIdentityKey"):
        vault.save("acct-1", broken, 1)
    huge = grow(good, MAX_STATE_BYTES + 1000)
    with pytest.raises(StateTooLargeError):
        vault.save("acct-1", huge, 1)
    assert list(store.raw_versions("acct-1")) == [1]
    with pytest.raises(NotFoundError):
        vault.restore("nobody")


def test_rotation_rewraps_and_old_versions_keep_opening(vault: Vault, kek: LocalFileKek,
                                                        store: MemoryVaultStore) -> None:
    state = registered_state()
    vault.save("acct-1", state, 1)
    payload_before = store.raw_versions("acct-1")[1].ciphertext
    assert kek.add_version() == "2"
    assert vault.restore("acct-1").version == 1  # still wrapped under KEK 1, still opens
    vault.save("acct-1", changed(state, 1), 1)
    assert [v.kek_version for v in vault.inspect("acct-1").versions] == ["2", "1"]
    report = vault.rotate_kek("acct-1")
    assert (report.kek_version, report.rewrapped, report.current, report.failed) == ("2", (1,), (2,), ())
    assert store.raw_versions("acct-1")[1].ciphertext == payload_before
    assert [v.kek_version for v in vault.inspect("acct-1").versions] == ["2", "2"]
    assert vault.verify("acct-1").passed


def seal_snapshot(snapshot: Snapshot, recipient_public: bytes, key_id: str) -> bytes:
    """As the connector seals a snapshot (``SnapshotCodec.seal``): bound to its account id."""
    return seal(snapshot.to_bytes(), recipient_public, key_id, snapshot_aad(snapshot.account_id))


def test_sealed_snapshots_open_only_for_their_account(kek: LocalFileKek) -> None:
    keys = sealing_keys(kek)
    key = keys.public_key()
    snapshot = Snapshot("acct-1", 3, datetime(2026, 11, 1, tzinfo=UTC), "c-1", registered_state())
    blob = seal_snapshot(snapshot, key.public, key.key_id)
    kek.add_version()  # rotation: the old sealing key must still open blobs sealed to it
    assert keys.public_key().key_id == "2"
    opened = open_snapshot(blob, keys, "acct-1")
    assert (opened.account_id, opened.generation, opened.connector_id) == ("acct-1", 3, "c-1")
    assert canonical_state_bytes(opened.state) == canonical_state_bytes(snapshot.state)
    with pytest.raises(SealingError):
        open_snapshot(blob, keys, "acct-2")


def test_open_snapshot_with_a_private_key() -> None:
    recipient = X25519PrivateKey.generate()
    snapshot = Snapshot("acct-1", 4, datetime(2026, 11, 1, tzinfo=UTC), "c-9", registered_state())
    blob = seal_snapshot(snapshot, public_key_bytes(recipient), "7")
    assert read_header(blob).key_id == "7"
    assert open_snapshot(blob, SealingKeys.of(recipient), "acct-1").generation == 4
    with pytest.raises(SealingError):
        open_snapshot(blob, SealingKeys.of(recipient), "acct-2")


def legacy_document(state: AuthState, updated_at: object) -> dict[str, object]:
    return {"accountId": "acct-1", "creds": to_plain(dict(state.creds.as_json())), "updatedAt": updated_at}


def test_migrate_legacy_imports_then_removes_plaintext(vault: Vault, store: MemoryVaultStore) -> None:
    state = registered_state()
    state.keys = {}
    store.put_legacy("acct-1", legacy_document(state, 1_700_000_000_000))
    assert list(vault.list_legacy()) == ["acct-1"]
    result = vault.migrate_legacy("acct-1")
    assert (result.outcome, result.version) == ("migrated", 1)
    assert canonical_state_bytes(vault.restore("acct-1").state) == canonical_state_bytes(state)
    assert list(vault.list_legacy()) == []
    assert vault.migrate_legacy("acct-1").outcome == "absent"


def test_migrate_legacy_never_clobbers_newer_state(vault: Vault, store: MemoryVaultStore) -> None:
    newer = registered_state(2)
    vault.save("acct-1", newer, 3)
    old = registered_state(1)
    store.put_legacy("acct-1", legacy_document(old, "2020-01-01T00:00:00Z"))
    result = vault.migrate_legacy("acct-1")
    assert (result.outcome, result.version) == ("kept_newer", 1)
    assert canonical_state_bytes(vault.restore("acct-1").state) == canonical_state_bytes(newer)
    assert list(vault.list_legacy()) == []


def test_migrate_legacy_with_bad_creds_keeps_plaintext(vault: Vault, store: MemoryVaultStore) -> None:
    state = registered_state()
    state.creds = state.creds.updated({"noiseKey": None})
    store.put_legacy("acct-1", legacy_document(state, None))
    with pytest.raises(StateValidationError, match="noiseKey"):
        vault.migrate_legacy("acct-1")
    assert list(vault.list_legacy()) == ["acct-1"]
    assert list(vault.list_accounts()) == []


def test_inspect_shows_no_key_material(vault: Vault) -> None:
    state = registered_state()
    vault.save("acct-1", state, 1)
    text = repr(asdict(vault.inspect("acct-1")))
    for secret in (state.creds.noise_key.private, state.creds.signed_identity_key.private):
        assert secret.hex() not in text
        assert repr(secret)[2:-1] not in text
    assert "wrappedKey" not in text


def test_delete_removes_everything(vault: Vault, store: MemoryVaultStore) -> None:
    vault.save("acct-1", registered_state(), 1)
    assert vault.delete("acct-1") is True
    assert vault.delete("acct-1") is False
    assert list(vault.list_accounts()) == []


def test_local_kek_file_is_private_and_refused_when_not(tmp_path: Path) -> None:
    path = tmp_path / "k" / "kek.json"
    kek = LocalFileKek(path)
    key = kek.key(kek.current_version())
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert LocalFileKek(path).key("1") == key
    path.chmod(0o644)
    from shared.errors import KekUnavailableError

    with pytest.raises(KekUnavailableError, match="chmod 600"):
        LocalFileKek(path).current_version()


def test_integrity_error_is_typed(vault: Vault, store: MemoryVaultStore) -> None:
    vault.save("acct-1", registered_state(), 1)
    record = store.raw_versions("acct-1")[1]
    store.put_version("acct-1", replace(record, generation=2))
    report = vault.verify("acct-1")
    assert "IntegrityError" in report.failed[0].reason


def test_memory_prune_drops_unreferenced_versions(vault: Vault, store: MemoryVaultStore) -> None:
    vault.save("acct-1", registered_state(), 1)
    stray = replace(store.raw_versions("acct-1")[1], version=9)
    store.put_version("acct-1", stray)
    assert store.prune("acct-1") == 1
    assert sorted(store.raw_versions("acct-1")) == [1]
    assert store.prune("nobody") == 0


def test_versions_left_without_a_head_are_listed_then_pruned(vault: Vault, store: MemoryVaultStore) -> None:
    vault.save("kept", registered_state(), 1)
    record = store.raw_versions("kept")[1]
    store.put_version("leftover", replace(record, version=2))  # what an interrupted delete leaves
    store.put_legacy("legacy-with-versions", {"creds": {"me": None}})
    store.put_version("legacy-with-versions", record)
    store.put_legacy("legacy-only", {"creds": {"me": None}})
    assert list(vault.list_orphaned_accounts()) == ["leftover", "legacy-with-versions"]
    assert vault.prune("leftover") == 1 and vault.prune("legacy-with-versions") == 1
    assert list(vault.list_orphaned_accounts()) == []
    assert list(store.list_legacy()) == ["legacy-only", "legacy-with-versions"]  # plaintext left to migration
    assert vault.restore("kept").version == 1


def test_both_stores_implement_the_store_interface() -> None:
    from shared.vault.firestore_store import FirestoreVaultStore

    # The annotation is the real check: mypy --strict holds both classes to the Protocol.
    stores: list[VaultStore] = [MemoryVaultStore(), FirestoreVaultStore(cast(Any, None))]
    for store in stores:
        assert callable(store.prune) and callable(store.list_orphaned_accounts)


@pytest.mark.parametrize("account_id", ["", "a/b", ".", "..", "__x__", "x" * 300])
def test_unusable_account_ids_are_refused(vault: Vault, account_id: str) -> None:
    with pytest.raises(StateValidationError, match="account id"):
        vault.save(account_id, registered_state(), 1)


def test_restore_retries_when_a_save_drops_the_version_being_read(kek: LocalFileKek) -> None:
    class RacingStore(MemoryVaultStore):
        """Commits a newer version (dropping v1) the first time v1 is read, as a concurrent save would."""

        raced = False

        def get_version(self, account_id: str, ref: VersionRef) -> VersionRecord:
            if not self.raced:
                self.raced = True
                racing_vault.save(account_id, changed(registered_state(), 1), 1)
            return super().get_version(account_id, ref)

    store = RacingStore()
    racing_vault = Vault(store, kek, versions_kept=1)
    racing_vault.save("acct-1", registered_state(), 1)
    restored = racing_vault.restore("acct-1")
    assert (restored.version, restored.skipped, restored.fell_back) == (2, (), False)


def test_values_json_cannot_carry_are_refused(vault: Vault) -> None:
    state = registered_state()
    state.keys["session"]["nan.0"] = float("nan")
    with pytest.raises(StateValidationError, match="JSON cannot carry"):
        vault.save("acct-1", state, 1)


def test_real_baileys_folder_through_the_vault_exports_the_same_json(vault: Vault, tmp_path: Path) -> None:
    """import-baileys then export-baileys: every file of a folder real Baileys wrote comes back equal."""
    from shared.baileys import read_folder, write_folder
    from shared.bufferjson import revive
    from tests.shared.test_baileys import REAL_FOLDER

    vault.save("acct-1", read_folder(REAL_FOLDER), generation=0)
    written = write_folder(vault.restore("acct-1").state, tmp_path / "out")
    assert written == sorted(p.name for p in REAL_FOLDER.iterdir())
    for name in written:
        assert revive((tmp_path / "out" / name).read_text()) == revive((REAL_FOLDER / name).read_text()), name


def test_a_late_older_snapshot_of_the_same_generation_is_refused(vault: Vault, store: MemoryVaultStore) -> None:
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    older, newer = changed(registered_state(), 1), changed(registered_state(), 2)
    vault.save("acct-1", newer, 3, produced_at=t0 + timedelta(seconds=10))
    with pytest.raises(OutOfOrderSnapshotError, match="produced later"):
        vault.save("acct-1", older, 3, produced_at=t0)
    assert isinstance(OutOfOrderSnapshotError("a", 1, "x", "y"), StaleGenerationError)  # fenced like one
    assert list(store.raw_versions("acct-1")) == [1]
    assert canonical_state_bytes(vault.restore("acct-1").state) == canonical_state_bytes(newer)
    # a later snapshot of the same generation, and any snapshot of a newer generation, are saved
    assert vault.save("acct-1", changed(newer, 3), 3, produced_at=t0 + timedelta(seconds=11)).created
    assert vault.save("acct-1", older, 4, produced_at=t0).created


def test_save_snapshot_orders_by_produced_at(vault: Vault) -> None:
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    first = Snapshot("acct-1", 2, t0 + timedelta(seconds=5), "c-1", changed(registered_state(), 1))
    late = Snapshot("acct-1", 2, t0, "c-1", changed(registered_state(), 2))
    vault.save(first.account_id, first.state, first.generation, first.produced_at)
    with pytest.raises(OutOfOrderSnapshotError):
        vault.save(late.account_id, late.state, late.generation, late.produced_at)
    assert vault.inspect("acct-1").latest_version == 1


def test_a_guard_checks_its_documents_and_updates_them_with_a_new_version(vault: Vault,
                                                                         store: MemoryVaultStore) -> None:
    from shared.errors import NotFoundError
    from shared.vault import SaveGuard

    store.documents["leases/acct-1"] = {"generation": 2}
    store.documents["accounts/acct-1"] = {"lastVersion": None}
    seen: list[Any] = []

    def check(documents: Any) -> None:
        seen.append(dict(documents))
        if documents["leases/acct-1"]["generation"] != 2:
            raise StaleGenerationError("acct-1", 1, documents["leases/acct-1"]["generation"])

    def guard(updates: bool = True) -> SaveGuard:
        return SaveGuard(reads=("leases/acct-1",), check=check,
                         updates=lambda head: {"accounts/acct-1": {"lastVersion": head.latest_version}}
                         if updates else {})

    state = registered_state()
    vault.save("acct-1", state, 2, guard=guard())
    assert seen == [{"leases/acct-1": {"generation": 2}}]
    assert store.documents["accounts/acct-1"] == {"lastVersion": 1}
    vault.save("acct-1", state.copy(), 2, guard=guard())  # no new version: no updates
    store.documents["accounts/acct-1"]["lastVersion"] = "untouched"
    vault.save("acct-1", state.copy(), 2, guard=guard())
    assert store.documents["accounts/acct-1"]["lastVersion"] == "untouched"
    store.documents["leases/acct-1"]["generation"] = 3
    with pytest.raises(StaleGenerationError):
        vault.save("acct-1", changed(state, 1), 2, guard=guard())
    store.documents["leases/acct-1"]["generation"] = 2
    del store.documents["accounts/acct-1"]
    with pytest.raises(NotFoundError):  # the account went: the version does not land either
        vault.save("acct-1", changed(state, 2), 2, guard=guard())
    assert vault.inspect("acct-1").latest_version == 1
    assert len(store.raw_versions("acct-1")) == 1
