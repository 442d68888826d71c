"""persistSnapshot on the Firestore emulator with the one-round-trip save: account, lease and head read in one
call, the version and the account's bookkeeping in one commit; the same rules as over the separate stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from functions.errors import MalformedMessageError, StaleMessageError
from functions.firestore_stores import firestore_stores
from functions.model import Account, AccountStatus, Lease
from functions.persist import SnapshotFence
from functions.vault_adapter import FirestoreFencedSave, VaultSealer, VaultSessions
from functions.wiring import Services, build_services
from shared.errors import VaultError
from shared.vault import Vault
from shared.vault.firestore_store import FirestoreVaultStore
from shared.vault.kek import LocalFileKek
from testkit.functions_world import (
    ALICE,
    T0,
    Clock,
    FakeConnector,
    RecordingPublisher,
    config,
    registered_state,
    seal_snapshot,
    snapshot_attrs,
)

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    services: Services
    vault: Vault
    clock: Clock
    client: Any

    def add_and_claim(self, phone: str = "+40700000001") -> tuple[str, int]:
        from functions.validation import AddAccountInput
        from shared.connector_sync import PairingMethod

        account_id = str(self.services.accounts.add(ALICE, AddAccountInput(phone, PairingMethod("code")))["accountId"])
        connector = FakeConnector("c-1")
        connector.sync(self.services)
        return account_id, connector.held[account_id]

    def persist(self, account_id: str, generation: int, state: Any, seconds: float = 0.0) -> Any:
        at = T0 + timedelta(seconds=seconds)
        return self.services.persister.handle(seal_snapshot(self.vault, account_id, generation, "c-1", state, at),
                                              snapshot_attrs(account_id, generation, "c-1"))

    def account_doc(self, account_id: str) -> dict[str, Any]:
        return dict(self.client.collection("accounts").document(account_id).get().to_dict() or {})

    def head(self, account_id: str) -> dict[str, Any] | None:
        snap = self.client.collection("whatsapp_sessions").document(account_id).get()
        return snap.to_dict() if snap.exists else None


@pytest.fixture
def stack(firestore_client: Any, tmp_path: Path) -> Stack:
    clock = Clock()
    vault = Vault(FirestoreVaultStore(firestore_client), LocalFileKek(tmp_path / "kek.json"), versions_kept=3,
                  clock=clock)
    services = build_services(config(), firestore_stores(firestore_client),
                              VaultSessions(vault, FirestoreVaultStore(firestore_client)), VaultSealer(vault.kek),
                              RecordingPublisher(), clock=clock, fenced=FirestoreFencedSave(vault))
    return Stack(services, vault, clock, firestore_client)


def changed(n: int) -> Any:
    state = registered_state()
    state.keys["session"][f"bench-{n}.0"] = {"n": n}
    return state


def test_saves_record_the_version_on_the_account_and_a_redelivery_writes_nothing(stack: Stack) -> None:
    account_id, generation = stack.add_and_claim()
    for n in range(4):
        stack.clock.advance(1)
        result = stack.persist(account_id, generation, changed(n), seconds=n)
        assert (result.version, result.noop) == (n + 1, False)
    account = stack.account_doc(account_id)
    assert (account["lastVersion"], account["versionsKept"]) == (4, 3)
    assert account["lastSavedAt"] == account["updatedAt"] == stack.clock.now
    stack.clock.advance(1)
    again = stack.persist(account_id, generation, changed(3), seconds=3)
    assert (again.version, again.noop) == (4, True)
    assert stack.account_doc(account_id)["lastSavedAt"] == account["lastSavedAt"]  # untouched
    versions = stack.client.collection("whatsapp_sessions").document(account_id).collection("versions")
    assert sorted(ref.id for ref in versions.list_documents()) == ["0000000002", "0000000003", "0000000004"]


def test_fencing_refuses_without_writing(stack: Stack) -> None:
    account_id, generation = stack.add_and_claim()
    stack.persist(account_id, generation, changed(0))
    with pytest.raises(StaleMessageError, match="older than the lease"):
        stack.persist(account_id, generation - 1, changed(1), seconds=1)
    with pytest.raises(MalformedMessageError, match="never granted"):
        stack.persist(account_id, generation + 1, changed(2), seconds=2)
    with pytest.raises(StaleMessageError, match="unknown or removed"):
        stack.persist("acc_nobody", 1, changed(3), seconds=3)
    head = stack.head(account_id)
    assert head is not None and head["latestVersion"] == 1
    stack.services.stores.accounts.update(account_id, {"status": AccountStatus.REMOVED})
    with pytest.raises(StaleMessageError, match="unknown or removed"):
        stack.persist(account_id, generation, changed(4), seconds=4)
    assert stack.head(account_id) == head


def test_an_older_snapshot_after_a_newer_one_changes_nothing(stack: Stack) -> None:
    account_id, generation = stack.add_and_claim()
    stack.persist(account_id, generation, changed(1), seconds=10)
    with pytest.raises(StaleMessageError):
        stack.persist(account_id, generation, changed(0), seconds=5)
    head = stack.head(account_id)
    assert head is not None and head["latestVersion"] == 1


def test_an_account_deleted_between_read_and_commit_gets_no_version(stack: Stack, firestore_client: Any) -> None:
    """The account update rides in the version's commit: an account gone meanwhile fails it whole."""
    account_id, generation = stack.add_and_claim()

    @dataclass(frozen=True, slots=True)
    class DeletingFence(SnapshotFence):
        def check(self, account: Account | None, lease: Lease | None) -> None:
            super(DeletingFence, self).check(account, lease)
            firestore_client.collection("accounts").document(self.account_id).delete()

    opened = VaultSealer(stack.vault.kek).open_snapshot(
        seal_snapshot(stack.vault, account_id, generation, "c-1", changed(0)), account_id)
    with pytest.raises(VaultError):
        FirestoreFencedSave(stack.vault).save(opened, DeletingFence(account_id, generation), stack.clock())
    assert stack.head(account_id) is None
    assert not list(firestore_client.collection("whatsapp_sessions").document(account_id)
                    .collection("versions").list_documents())


def test_a_claim_between_read_and_commit_keeps_the_old_generations_snapshot_out(
        stack: Stack, firestore_client: Any) -> None:
    """Issue 16 item 2: the lease is part of the commit's precondition. Connector c-2 claims generation 2
    (a real connectorSync claim on the emulator) after c-1's save has read the lease at generation 1 and
    before it commits: the commit fails, the save reads again and the fence refuses the snapshot."""
    account_id, generation = stack.add_and_claim()
    stack.persist(account_id, generation, changed(0))
    claims: list[int] = []

    @dataclass(frozen=True, slots=True)
    class ClaimingFence(SnapshotFence):
        def check(self, account: Account | None, lease: Lease | None) -> None:
            super(ClaimingFence, self).check(account, lease)
            if not claims:
                stack.clock.advance(stack.services.config.lease_ttl_s + 1)
                taker = FakeConnector("c-2")
                taker.sync(stack.services)
                claims.append(taker.held[account_id])

    opened = VaultSealer(stack.vault.kek).open_snapshot(
        seal_snapshot(stack.vault, account_id, generation, "c-1", changed(1), T0 + timedelta(seconds=1)),
        account_id)
    with pytest.raises(StaleMessageError, match="older than the lease"):
        FirestoreFencedSave(stack.vault).save(opened, ClaimingFence(account_id, generation), stack.clock())
    assert claims == [generation + 1]
    head = stack.head(account_id)
    assert head is not None and (head["latestVersion"], head["generation"]) == (1, generation)
    assert stack.account_doc(account_id)["lastVersion"] == 1
