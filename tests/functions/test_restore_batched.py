"""Batched restores (``Vault.restore_many`` through ``VaultSessions``) on the Firestore emulator: each
account gets what a restore of its own would give, in two reads for the common case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from functions.ports import RestoredState
from functions.vault_adapter import VaultSessions
from shared.errors import KekUnavailableError, NotFoundError, NoUsableVersionError
from shared.snapshot import canonical_state_bytes
from shared.vault import Vault
from shared.vault.firestore_store import SESSIONS, FirestoreVaultStore
from shared.vault.kek import LocalFileKek
from shared.vault.store import BatchReadStore
from testkit.auth_states import registered_state

pytestmark = pytest.mark.integration


def _sessions(firestore_client: Any, tmp_path: Path) -> tuple[Vault, FirestoreVaultStore, VaultSessions]:
    store = FirestoreVaultStore(firestore_client)
    vault = Vault(store, LocalFileKek(tmp_path / "kek.json"))
    return vault, store, VaultSessions(vault, store)


def test_a_batch_gives_each_account_what_its_own_restore_gives(firestore_client: Any, tmp_path: Path) -> None:
    vault, store, sessions = _sessions(firestore_client, tmp_path)
    assert isinstance(store, BatchReadStore)
    for i in range(4):
        vault.save(f"ok{i}", registered_state(i), 1)
    vault.save("fell", registered_state(10), 1)
    vault.save("fell", registered_state(11), 1)
    version = firestore_client.collection(SESSIONS).document("fell").collection("versions").document("0000000002")
    version.update({"ciphertext": b"\x00" * 64})  # the newest no longer opens: v1 stands in
    vault.save("broken", registered_state(20), 1)
    firestore_client.collection(SESSIONS).document("broken").collection("versions").document(
        "0000000001").update({"ciphertext": b"\x00" * 64})

    got = sessions.restore_many(["ok0", "ok1", "ok2", "ok3", "fell", "broken", "missing"])
    for i in range(4):
        result = got[f"ok{i}"]
        assert isinstance(result, RestoredState) and result.version == 1 and result.skipped == ()
        assert canonical_state_bytes(result.state) == canonical_state_bytes(registered_state(i))
    fell = got["fell"]
    assert isinstance(fell, RestoredState) and fell.version == 1 and [v for v, _ in fell.skipped] == [2]
    assert fell == sessions.restore("fell")
    assert isinstance(got["broken"], NoUsableVersionError)
    assert isinstance(got["missing"], NotFoundError)


def test_a_kek_out_of_reach_is_reported_for_the_account_without_falling_back(
        firestore_client: Any, tmp_path: Path) -> None:
    vault, _, sessions = _sessions(firestore_client, tmp_path)
    vault.save("a1", registered_state(1), 1)
    newer = vault.kek.add_version()
    vault.save("a2", registered_state(2), 1)
    vault.save("a2", registered_state(3), 1)  # v2 under the newer KEK, v1 under the older one
    vault.save("a3", registered_state(4), 1)
    original = vault.kek.key
    asked: list[str] = []

    def key(version: str) -> bytes:
        asked.append(version)
        if version == newer:
            raise KekUnavailableError(f"secret version {version} cannot be read")
        return original(version)

    vault.kek.key = key  # type: ignore[method-assign]
    got = sessions.restore_many(["a1", "a2", "a3"])
    assert isinstance(got["a1"], RestoredState) and got["a1"].version == 1
    assert isinstance(got["a2"], KekUnavailableError), "an older version never stands in for one out of reach"
    assert isinstance(got["a3"], KekUnavailableError)
    assert asked.count(newer) == 1, "one wait for the batch: not one per version, nor one per account"


def test_a_batch_hands_back_the_validated_bytes_without_parsing_them(
        firestore_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Decrypting proves the bytes are those the save validated: a claim seals them on as they are,
    # and the connector parses them once. Asked for, the state still parses (and validates).
    import shared.vault.vault as vault_module

    vault, _, sessions = _sessions(firestore_client, tmp_path)
    for i in range(3):
        vault.save(f"acct{i}", registered_state(i), 1)
    parsed: list[int] = []
    real_parse = vault_module.parse_state
    monkeypatch.setattr(vault_module, "parse_state", lambda data: parsed.append(len(data)) or real_parse(data))
    got = sessions.restore_many(["acct0", "acct1", "acct2"])
    assert parsed == []
    for i in range(3):
        result = got[f"acct{i}"]
        assert isinstance(result, RestoredState)
        assert result.state_bytes == canonical_state_bytes(registered_state(i))
        assert result.state.to_json() == registered_state(i).to_json()
