"""The vault on the real Firestore emulator: layout, chunking, atomic saves, fallback, migration."""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.authstate import AuthState
from shared.bufferjson import to_plain
from shared.errors import OutOfOrderSnapshotError, StaleGenerationError, VaultConflictError
from shared.snapshot import canonical_state_bytes
from shared.vault import Vault
from shared.vault.firestore_store import FirestoreVaultStore
from shared.vault.kek import LocalFileKek
from testkit.auth_states import grow, registered_state

pytestmark = pytest.mark.integration


@pytest.fixture
def kek(tmp_path: Path) -> LocalFileKek:
    return LocalFileKek(tmp_path / "kek.json")


@pytest.fixture
def vault(firestore_client: Any, kek: LocalFileKek) -> Vault:
    return Vault(FirestoreVaultStore(firestore_client), kek)


def sessions(client: Any, account: str = "acct-1") -> Any:
    return client.collection("whatsapp_sessions").document(account)


def changed(state: AuthState, n: int) -> AuthState:
    other = state.copy()
    other.keys["session"][f"extra.{n}"] = os.urandom(64)
    return other


def test_layout_and_round_trip(vault: Vault, firestore_client: Any) -> None:
    state = registered_state()
    result = vault.save("acct-1", state, 2)
    head = sessions(firestore_client).get().to_dict()
    assert head["latestVersion"] == 1 and head["generation"] == 2 and head["sha256"] == result.sha256
    assert head["rawSize"] == len(canonical_state_bytes(state))
    assert "creds" not in head
    version = sessions(firestore_client).collection("versions").document("0000000001").get().to_dict()
    assert version["chunks"] == 0 and isinstance(version["ciphertext"], bytes)
    assert version["header"]["kekVersion"] == "1"
    assert state.creds.noise_key.private not in version["ciphertext"]
    restored = vault.restore("acct-1")
    assert canonical_state_bytes(restored.state) == canonical_state_bytes(state)


def test_large_state_is_chunked_and_deleted_completely(vault: Vault, firestore_client: Any) -> None:
    state = grow(registered_state(), 2 * 1024 * 1024)
    result = vault.save("acct-1", state, 1)
    assert result.stored_size > 900_000
    doc = sessions(firestore_client).collection("versions").document("0000000001")
    assert doc.get().to_dict()["chunks"] >= 2
    assert len(list(doc.collection("chunks").list_documents())) == doc.get().to_dict()["chunks"]
    assert canonical_state_bytes(vault.restore("acct-1").state) == canonical_state_bytes(state)

    assert vault.delete("acct-1") is True
    assert not sessions(firestore_client).get().exists
    assert list(sessions(firestore_client).collection("versions").list_documents()) == []
    assert list(doc.collection("chunks").list_documents()) == []


def test_missing_chunk_falls_back(vault: Vault, firestore_client: Any) -> None:
    small = registered_state()
    vault.save("acct-1", small, 1)
    vault.save("acct-1", grow(small, 1_500_000), 1)
    sessions(firestore_client).collection("versions").document("0000000002").collection("chunks").document(
        "1").delete()
    restored = vault.restore("acct-1")
    assert restored.version == 1
    assert "chunk 1" in restored.skipped[0].reason
    assert sessions(firestore_client).get().to_dict()["health"]["status"] == "fell_back"


def test_kept_versions_and_fencing(firestore_client: Any, kek: LocalFileKek) -> None:
    vault = Vault(FirestoreVaultStore(firestore_client), kek, versions_kept=2)
    state = registered_state()
    for n in range(4):
        vault.save("acct-1", changed(state, n), 3)
    ids = sorted(d.id for d in sessions(firestore_client).collection("versions").list_documents())
    assert ids == ["0000000003", "0000000004"]
    with pytest.raises(StaleGenerationError):
        vault.save("acct-1", changed(state, 9), 2)
    assert vault.inspect("acct-1").latest_version == 4


def test_altered_and_moved_blobs_are_skipped(vault: Vault, firestore_client: Any) -> None:
    vault.save("acct-1", registered_state(1), 1)
    vault.save("acct-1", changed(registered_state(1), 1), 1)
    v2 = sessions(firestore_client).collection("versions").document("0000000002")
    data = v2.get().to_dict()
    data["ciphertext"] = data["ciphertext"][:-1] + bytes([data["ciphertext"][-1] ^ 1])
    v2.set(data)
    restored = vault.restore("acct-1")
    assert (restored.version, [s.version for s in restored.skipped]) == (1, [2])

    vault.save("acct-2", registered_state(2), 1)
    v1_of_1 = sessions(firestore_client).collection("versions").document("0000000001").get().to_dict()
    sessions(firestore_client, "acct-2").collection("versions").document("0000000001").set(v1_of_1)
    report = vault.verify("acct-2")
    assert report.ok == () and "IntegrityError" in report.failed[0].reason


def test_concurrent_saves_number_versions_without_gaps(vault: Vault) -> None:
    base = registered_state()
    created: list[int] = []
    conflicts: list[Exception] = []
    lock = threading.Lock()

    def writer(worker: int) -> None:
        for n in range(3):
            try:
                result = vault.save("acct-1", changed(base, worker * 10 + n), 1)
            except VaultConflictError as exc:
                conflicts.append(exc)
                continue
            with lock:
                created.append(result.version)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(created) == list(range(1, len(created) + 1))
    assert len(created) + len(conflicts) == 9
    assert vault.inspect("acct-1").latest_version == len(created)
    assert vault.verify("acct-1").passed


def test_rotation_on_firestore(vault: Vault, kek: LocalFileKek, firestore_client: Any) -> None:
    vault.save("acct-1", registered_state(), 1)
    kek.add_version()
    report = vault.rotate_kek("acct-1")
    assert report.rewrapped == (1,)
    head = sessions(firestore_client).get().to_dict()
    assert head["versions"][0]["kekVersion"] == "2"
    assert vault.restore("acct-1").version == 1


def test_legacy_migration_on_firestore(vault: Vault, firestore_client: Any) -> None:
    state = registered_state()
    state.keys = {}
    sessions(firestore_client).set({
        "accountId": "acct-1", "creds": to_plain(dict(state.creds.as_json())),
        "updatedAt": datetime(2025, 1, 1, tzinfo=UTC),
    })
    sessions(firestore_client, "acct-0").set({"accountId": "acct-0", "note": "not legacy"})
    assert list(vault.list_legacy()) == ["acct-1"]
    result = vault.migrate_legacy("acct-1")
    assert (result.outcome, result.version) == ("migrated", 1)
    doc = sessions(firestore_client).get().to_dict()
    assert "creds" not in doc and "updatedAt" not in doc and doc["latestVersion"] == 1
    assert canonical_state_bytes(vault.restore("acct-1").state) == canonical_state_bytes(state)
    assert vault.migrate_legacy("acct-1").outcome == "absent"
    assert list(vault.list_accounts()) == ["acct-1"]


def test_prune_removes_only_orphans(vault: Vault, firestore_client: Any) -> None:
    store = FirestoreVaultStore(firestore_client)
    vault.save("acct-1", registered_state(), 1)
    vault.save("acct-1", grow(registered_state(), 1_500_000), 1)
    versions = sessions(firestore_client).collection("versions")
    versions.document("0000000001").collection("chunks").document("0").set({"index": 0, "data": b"x"})
    versions.document("0000000002").collection("chunks").document("7").set({"index": 7, "data": b"x"})
    versions.document("0000000000").collection("chunks").document("0").set({"index": 0, "data": b"x"})
    assert store.prune("acct-1") == 4  # v0's chunk and v0 itself, the stray chunks of v1 and v2
    assert store.prune("acct-1") == 0
    assert vault.verify("acct-1").passed
    assert vault.restore("acct-1").version == 2


def test_leftovers_of_an_interrupted_delete_do_not_block_a_new_save(vault: Vault, firestore_client: Any) -> None:
    vault.save("acct-1", registered_state(1), 1)
    sessions(firestore_client).delete()  # as if delete() stopped right after removing the head
    fresh = registered_state(2)
    assert vault.save("acct-1", fresh, 1).version == 1
    assert canonical_state_bytes(vault.restore("acct-1").state) == canonical_state_bytes(fresh)


@pytest.mark.parametrize("chunks", ["x", 5_000_000, 0])
def test_a_version_document_with_an_edited_chunk_count_falls_back(vault: Vault, firestore_client: Any,
                                                                  chunks: object) -> None:
    small = registered_state()
    vault.save("acct-1", small, 1)
    vault.save("acct-1", grow(small, 1_500_000), 1)
    sessions(firestore_client).collection("versions").document("0000000002").update({"chunks": chunks})
    restored = vault.restore("acct-1")
    assert restored.version == 1
    assert "chunks, the head" in restored.skipped[0].reason


def test_concurrent_late_deliveries_never_roll_the_state_back(vault: Vault, firestore_client: Any) -> None:
    """Pub/Sub push retries arrive late and in parallel: whatever the interleaving, the head ends on the
    newest produced state among those saved (the order check runs inside the commit), never an older one."""
    t0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    states = [changed(registered_state(), n) for n in range(6)]
    outcomes: dict[int, str] = {}
    lock = threading.Lock()

    def deliver(n: int) -> None:
        outcome = "conflict"
        for attempt in range(20):  # a conflict is retried with backoff, as Pub/Sub redelivers
            try:
                vault.save("acct-1", states[n], 1, produced_at=t0 + timedelta(seconds=n))
                outcome = "saved"
            except OutOfOrderSnapshotError:
                outcome = "refused"
            except VaultConflictError:
                time.sleep(0.02 * (attempt + 1) * (1 + n / 10))
                continue
            break
        with lock:
            outcomes[n] = outcome

    threads = [threading.Thread(target=deliver, args=(n,)) for n in (5, 0, 3, 1, 4, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == 6
    saved = [n for n, outcome in outcomes.items() if outcome == "saved"]
    assert saved, outcomes
    newest = max(saved)
    head = sessions(firestore_client).get().to_dict()
    assert head["producedAt"] == t0 + timedelta(seconds=newest), outcomes
    restored = vault.restore("acct-1").state
    assert canonical_state_bytes(restored) == canonical_state_bytes(states[newest])


def test_a_head_changed_between_read_and_commit_is_planned_again(firestore_client: Any, kek: LocalFileKek) -> None:
    """The save's commit is guarded by the head it planned against: a writer slipping in between makes
    nothing of the stale plan land, and the save numbers its version after the other writer's."""
    store = FirestoreVaultStore(firestore_client)
    vault = Vault(store, kek)
    base = registered_state()
    vault.save("acct-1", base, 1)
    original_commit = store.commit
    interfered: list[int] = []

    def commit_with_a_writer_in_between(account_id: str, planner: Any) -> Any:
        def planner_then_other_writer(head: Any) -> Any:
            decision = planner(head)
            if not interfered:  # after the first plan, before its commit: another save lands
                interfered.append(head.latest_version)
                Vault(FirestoreVaultStore(firestore_client), kek).save("acct-1", changed(base, 99), 1)
            return decision

        return original_commit(account_id, planner_then_other_writer)

    store.commit = commit_with_a_writer_in_between  # type: ignore[method-assign]
    result = vault.save("acct-1", changed(base, 1), 1)
    assert interfered == [1]
    assert result.version == 3 and result.versions_kept == 3
    info = vault.inspect("acct-1")
    assert [v.version for v in info.versions] == [3, 2, 1]
    assert vault.restore("acct-1").state.keys["session"]["extra.1"] is not None
    assert len(list(sessions(firestore_client).collection("versions").list_documents())) == 3


def test_first_save_keeps_a_legacy_document_fields(firestore_client: Any, kek: LocalFileKek) -> None:
    sessions(firestore_client).set({"creds": {"registered": True}, "updatedAt": "2026-01-01T00:00:00Z"})
    result = Vault(FirestoreVaultStore(firestore_client), kek).save("acct-1", registered_state(), 1)
    assert (result.version, result.versions_kept) == (1, 1)
    document = sessions(firestore_client).get().to_dict()
    assert document["creds"] == {"registered": True} and document["latestVersion"] == 1
