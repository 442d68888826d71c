"""connectorSync over memory stores and a real vault: claims, fencing, restore sealing, outcomes."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from functions.alerts import Alerter
from functions.model import AccountStatus, RestoreOutcomeKind
from functions.restore import KEK_RETRY_S, ConnectorSyncService
from functions.vault_adapter import VaultSealer
from shared import sealing
from testkit.functions_world import ALICE, FakeConnector, World, registered_state, world


def _linked(w: World, phone: str = "+40700000001", seed: int = 1) -> str:
    """An account that paired and saved one version under generation 1, then was released."""
    account_id = w.add(ALICE, phone)
    c = FakeConnector("c-pair")
    c.sync(w.services)
    w.vault.save(account_id, registered_state(seed), c.held[account_id])
    w.services.stores.accounts.update(account_id, {"status": AccountStatus.CONNECTED,
                                                   "linked_jid": "40700000001:7@s.whatsapp.net"})
    c.sync(w.services, release=dict(c.held))
    return account_id


def test_pairing_account_is_claimed_in_pair_mode_with_generation_one(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add(ALICE, "+40700000001", "code")
    response = FakeConnector("c-1").sync(w.services)
    [claim] = response["claimed"]
    assert claim["accountId"] == account_id
    assert claim["generation"] == 1
    assert claim["mode"] == "pair"
    assert claim["sealedState"] is None
    assert claim["pairing"] == {"method": "code", "phoneNumber": "+40700000001"}
    assert response["leaseTtlS"] == 30.0
    assert response["vaultKeyId"] == w.sealer.vault_public_key()[1]


def test_a_live_lease_is_not_claimed_twice_and_passes_on_only_after_expiry(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add()
    first, second = FakeConnector("c-1"), FakeConnector("c-2")
    first.sync(w.services)
    assert second.sync(w.services)["claimed"] == []
    w.clock.advance(20)
    renewed = first.sync(w.services)["renewed"]
    assert [r["generation"] for r in renewed] == [1]
    w.clock.advance(20)  # 40 s after the claim, 20 s after the renewal: still live
    assert second.sync(w.services)["claimed"] == []
    w.clock.advance(31)
    [claim] = second.sync(w.services)["claimed"]
    assert claim["generation"] == 2, "every change of owner increments the fencing token"
    assert first.sync(w.services)["lost"] == [{"accountId": account_id, "reason": "taken"}]


def test_capacity_bounds_claims(tmp_path: Path) -> None:
    w = world(tmp_path)
    for i in range(5):
        w.add(ALICE, f"+4070000000{i}")
    small = FakeConnector("c-1", capacity=2)
    assert len(small.sync(w.services)["claimed"]) == 2
    assert small.sync(w.services)["claimed"] == []  # full: renews two, claims none
    assert len(FakeConnector("c-2", capacity=10).sync(w.services)["claimed"]) == 3


def test_restore_hands_out_the_state_sealed_to_the_connector_key(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _linked(w)
    connector = FakeConnector("c-2")
    [claim] = connector.sync(w.services)["claimed"]
    assert claim["mode"] == "restore"
    assert claim["version"] == 1
    assert claim["fellBack"] is False
    assert claim["generation"] == 2
    snapshot = connector.open_claim(claim)
    assert snapshot.account_id == account_id
    assert snapshot.generation == 2
    assert snapshot.connector_id == "c-2"
    assert snapshot.state == registered_state(1)
    # Nobody else can open it.
    other = FakeConnector("c-3")
    try:
        other.open_claim(claim)
        raise AssertionError("opened with the wrong key")
    except Exception as exc:
        assert type(exc).__name__ == "SealingError"
    [outcome] = w.services.stores.outcomes.since(w.clock.now)
    assert outcome.outcome is RestoreOutcomeKind.RESTORED and outcome.version == 1


def test_restore_falls_back_to_an_older_version_and_alerts(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _linked(w)
    w.vault.save(account_id, registered_state(2), 1)
    damaged = w.vault_store.raw_versions(account_id)[2]
    flipped = bytes([damaged.ciphertext[0] ^ 1]) + damaged.ciphertext[1:]
    w.vault_store.put_version(account_id, dataclasses.replace(damaged, ciphertext=flipped))
    connector = FakeConnector("c-2")
    [claim] = connector.sync(w.services)["claimed"]
    assert claim["fellBack"] is True
    assert claim["version"] == 1
    assert connector.open_claim(claim).state == registered_state(1)
    [outcome] = w.services.stores.outcomes.since(w.clock.now)
    assert outcome.outcome is RestoreOutcomeKind.FELL_BACK and outcome.reason == "cannot_decrypt"
    assert [a[1]["kind"] for a in w.alerts_out.published] == ["fell_back"]


def test_unrestorable_account_is_failed_released_and_not_served(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _linked(w)
    record = w.vault_store.raw_versions(account_id)[1]
    w.vault_store.put_version(account_id, dataclasses.replace(record, ciphertext=b"\x00" * 64))
    connector = FakeConnector("c-2")
    assert connector.sync(w.services)["claimed"] == []
    account = w.services.stores.accounts.get(account_id)
    assert account is not None
    assert account.status is AccountStatus.RESTORE_FAILED and not account.serve
    lease = w.services.stores.leases.get(account_id)
    assert lease is not None and lease.connector_id is None
    [outcome] = w.services.stores.outcomes.since(w.clock.now)
    assert outcome.outcome is RestoreOutcomeKind.FAILED and outcome.reason == "cannot_decrypt"
    assert "restore_failed" in [a[1]["kind"] for a in w.alerts_out.published]
    # The owner asks again: served again.
    w.services.accounts.reconnect(ALICE, account_id)
    assert w.services.stores.accounts.get(account_id).serve  # type: ignore[union-attr]


def test_release_keeps_the_generation_and_the_next_claim_increments_it(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add()
    c = FakeConnector("c-1")
    c.sync(w.services)
    c.sync(w.services, release={account_id: 1})
    lease = w.services.stores.leases.get(account_id)
    assert lease is not None and lease.connector_id is None and lease.generation == 1
    [claim] = FakeConnector("c-2").sync(w.services)["claimed"]
    assert claim["generation"] == 2


def test_pairing_attempt_past_its_ttl_is_not_handed_out(tmp_path: Path) -> None:
    w = world(tmp_path, pairing_ttl_s=60.0)
    account_id = w.add()
    w.clock.advance(61)
    assert FakeConnector("c-1").sync(w.services)["claimed"] == []
    assert w.services.stores.accounts.get(account_id).status is AccountStatus.PAIRING_EXPIRED  # type: ignore[union-attr]


def test_reconnect_request_becomes_one_command(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _linked(w)
    c = FakeConnector("c-2")
    c.sync(w.services)
    w.services.accounts.reconnect(ALICE, account_id)
    assert c.sync(w.services)["commands"] == [{"accountId": account_id, "action": "reconnect"}]
    assert c.sync(w.services)["commands"] == []


def test_free_accounts_are_found_behind_many_held_ones(tmp_path: Path) -> None:
    """The claim query must reach unheld accounts however many live leases sit in front of them."""
    w = world(tmp_path, max_accounts_per_user=1000, max_claims_per_sync=1000)
    ids = [w.add(ALICE, f"+4071{i:07d}") for i in range(300)]
    busy = FakeConnector("c-busy", capacity=300)
    assert len(busy.sync(w.services)["claimed"]) == 300
    freed = {ids[7]: 1, ids[150]: 1, ids[299]: 1}
    busy.capacity = 297  # it gives three up for good
    busy.sync(w.services, release=freed)
    w.clock.advance(20)
    busy.sync(w.services)  # renewals keep the other 297 live
    w.clock.advance(20)
    helper = FakeConnector("c-helper", capacity=5)
    claimed = {c["accountId"] for c in helper.sync(w.services)["claimed"]}
    assert claimed == set(freed)


def test_claims_per_call_are_capped_and_the_rest_follow_on_the_next_sync(tmp_path: Path) -> None:
    w = world(tmp_path, max_claims_per_sync=3)
    for i in range(5):
        w.add(ALICE, f"+4070000000{i}")
    connector = FakeConnector("c-1", capacity=100)
    assert len(connector.sync(w.services)["claimed"]) == 3
    second = connector.sync(w.services)
    assert (len(second["renewed"]), len(second["claimed"])) == (3, 2)


def test_a_stale_claimable_index_heals_itself(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add()
    FakeConnector("c-1").sync(w.services)
    w.services.stores.accounts.update(account_id, {"claimable_after": w.clock.now})  # as if a write was lost
    assert FakeConnector("c-2").sync(w.services)["claimed"] == []
    account = w.services.stores.accounts.get(account_id)
    lease = w.services.stores.leases.get(account_id)
    assert account is not None and lease is not None
    assert account.claimable_after == lease.expires_at


def _kek_out_of_reach(w: World, versions: set[str] | None = None) -> Callable[[], None]:
    """Make the KEK's ``versions`` (all when None) unfetchable; returns the undo."""
    from shared.errors import KekUnavailableError

    kek = w.vault.kek
    original = kek.key

    def key(version: str) -> bytes:
        if versions is None or version in versions:
            raise KekUnavailableError(f"secret version {version} cannot be read")
        return original(version)

    kek.key = key  # type: ignore[method-assign]

    def undo() -> None:
        kek.key = original  # type: ignore[method-assign]

    return undo


def test_a_kek_out_of_reach_postpones_the_restore_instead_of_failing_it(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _linked(w)
    undo = _kek_out_of_reach(w)
    connector = FakeConnector("c-2")
    assert connector.sync(w.services)["claimed"] == []
    account = w.services.stores.accounts.get(account_id)
    assert account is not None
    assert account.status is AccountStatus.CONNECTED and account.serve, "still to be served"
    assert account.claimable_after == w.clock.now + timedelta(seconds=KEK_RETRY_S)
    lease = w.services.stores.leases.get(account_id)
    assert lease is not None and lease.connector_id is None
    assert w.services.stores.outcomes.since(w.clock.now) == [], "no verdict on the stored state"
    assert [a.kind for a in w.services.stores.alerts.open_alerts()] == ["kek_unavailable"]
    assert connector.sync(w.services)["claimed"] == [], "not retried on every sync"
    undo()
    w.clock.advance(KEK_RETRY_S + 1)
    [claim] = connector.sync(w.services)["claimed"]
    assert (claim["mode"], claim["version"], claim["fellBack"]) == ("restore", 1, False)
    assert w.services.stores.alerts.open_alerts() == []


def test_an_older_version_never_stands_in_for_a_newer_one_out_of_reach(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _linked(w)
    newer_kek = w.vault.kek.add_version()
    w.vault.save(account_id, registered_state(2), 1)
    w.sealer.vault_public_key()  # a warm instance: the (public) sealing key is cached
    undo = _kek_out_of_reach(w, {newer_kek})
    assert FakeConnector("c-2").sync(w.services)["claimed"] == []
    undo()
    w.clock.advance(KEK_RETRY_S + 1)
    connector = FakeConnector("c-3")
    [claim] = connector.sync(w.services)["claimed"]
    assert (claim["version"], claim["fellBack"]) == (2, False)
    assert connector.open_claim(claim).state == registered_state(2)


def test_the_health_check_does_not_call_a_kek_outage_broken_sessions(tmp_path: Path) -> None:
    from shared.errors import KekUnavailableError

    w = world(tmp_path)
    account_id = _linked(w)
    _kek_out_of_reach(w)
    with pytest.raises(KekUnavailableError):
        w.services.health.run()
    assert w.services.stores.accounts.get(account_id).health is None  # type: ignore[union-attr]
    assert w.alerts_out.published == []


def test_removing_an_account_whose_state_cannot_be_restored_ends_the_removal(tmp_path: Path) -> None:
    """No connector can log it out; it must not be claimed, failed and released on every sync."""
    w = world(tmp_path)
    account_id = _linked(w)
    record = w.vault_store.raw_versions(account_id)[1]
    w.vault_store.put_version(account_id, dataclasses.replace(record, ciphertext=b"\x00" * 64))
    assert w.services.accounts.remove(ALICE, account_id)["status"] == "removing"
    connector = FakeConnector("c-2")
    assert connector.sync(w.services)["claimed"] == []
    account = w.services.stores.accounts.get(account_id)
    assert account is not None and account.status is AccountStatus.REMOVED and not account.serve
    assert w.vault_store.get_head(account_id) is None
    assert w.services.stores.outcomes.since(w.clock.now) == [], "a removal is not a failed restore"
    assert w.services.stores.alerts.open_alerts() == []
    assert connector.sync(w.services)["claimed"] == []


def test_renewals_reach_connectors_while_the_kek_is_out_of_reach(tmp_path: Path) -> None:
    """A cold instance during a Secret Manager outage still answers with the last known vault key."""
    w = world(tmp_path)
    account_id = _linked(w)
    holder = FakeConnector("c-1")
    first = holder.sync(w.services)
    assert [c["accountId"] for c in first["claimed"]] == [account_id]
    cold = world(tmp_path)  # a fresh process (same KEK file, nothing cached) on the same stores
    stores = w.services.stores
    cold_sync = ConnectorSyncService(stores, cold.services.vault, VaultSealer(cold.vault.kek),
                                     Alerter(stores.alerts, cold.alerts_out, w.clock), w.clock,
                                     lease_ttl_s=30.0, pairing_ttl_s=600.0)
    cold_services = dataclasses.replace(w.services, sync=cold_sync)
    _kek_out_of_reach(cold)
    w.clock.advance(20)
    response = holder.sync(cold_services)
    assert [r["accountId"] for r in response["renewed"]] == [account_id]
    assert (response["vaultPublicKey"], response["vaultKeyId"]) == (first["vaultPublicKey"], first["vaultKeyId"])


def test_one_sync_waits_on_an_unreachable_kek_once(tmp_path: Path) -> None:
    """Secret Manager calls may each block for its retry deadline: after the first failure the rest of
    the call claims no more accounts to restore (pairing ones still go out)."""
    w = world(tmp_path)
    first, second = _linked(w, "+40700000001", 1), _linked(w, "+40700000002", 2)
    pairing = w.add(ALICE, "+40700000003")
    attempts: list[str] = []
    undo = _kek_out_of_reach(w)
    failing = w.vault.kek.key

    def counted(version: str) -> bytes:
        attempts.append(version)
        return failing(version)

    w.vault.kek.key = counted  # type: ignore[method-assign]
    before = w.services.stores.leases.get_many([first, second])
    response = FakeConnector("c-2").sync(w.services)
    assert [c["accountId"] for c in response["claimed"]] == [pairing]
    assert len(attempts) == 1, attempts
    untouched = {first, second} - {a.account_id for a in w.services.stores.alerts.open_alerts()}
    assert len(untouched) == 1
    assert [w.services.stores.leases.get(a) for a in untouched] == [before[a] for a in untouched], \
        "not taken only to be given back"
    undo()


def test_a_restore_seals_the_stored_bytes_as_they_are(tmp_path: Path) -> None:
    # The vault hands back the canonical bytes it decrypted; sealing them for the connector must not
    # serialise the state again (milliseconds per account on a 1,000-account restart).
    from functions.vault_adapter import VaultSessions
    from shared.snapshot import canonical_state_bytes

    w = world(tmp_path)
    w.vault.save("acct-1", registered_state(1), 1)
    w.vault.save("acct-2", registered_state(2), 1)
    sessions = VaultSessions(w.vault, w.vault_store)
    one = sessions.restore("acct-1")
    many = sessions.restore_many(["acct-1", "acct-2"])
    assert one.state_bytes == canonical_state_bytes(registered_state(1))
    assert all(not isinstance(r, Exception) and r.state_bytes == canonical_state_bytes(r.state)
               for r in many.values())
    connector = FakeConnector("c-1")
    other_bytes = canonical_state_bytes(registered_state(2))
    sealed = VaultSealer(w.vault.kek).seal_restored_bytes(
        sealing.public_key_bytes(connector.key), account_id="acct-1", generation=2, connector_id="c-1",
        produced_at=w.clock.now, state_bytes=other_bytes)
    opened = connector.open_claim({"sealedState": base64.b64encode(sealed).decode()})
    assert canonical_state_bytes(opened.state) == other_bytes  # the bytes given, not a re-serialisation


def test_rounds_claimed_side_by_side_hand_out_every_account_once(tmp_path: Path) -> None:
    # After the first restore proves the vault, rounds of 25 run in parallel: 130 linked accounts are
    # claimed by one call, each once, each restored and recorded once, and a rival gets none of them.
    w = world(tmp_path, max_accounts_per_user=1000, max_claims_per_sync=1000)
    ids = {w.add(ALICE, f"+4072{i:07d}") for i in range(130)}
    pairing = FakeConnector("c-pair", capacity=1000)
    assert len(pairing.sync(w.services)["claimed"]) == 130
    for i, account_id in enumerate(sorted(ids)):
        w.vault.save(account_id, registered_state(i % 5 + 1), pairing.held[account_id])
        w.services.stores.accounts.update(account_id, {"status": AccountStatus.CONNECTED})
    pairing.sync(w.services, release=dict(pairing.held))
    connector, rival = FakeConnector("c-1", capacity=1000), FakeConnector("c-2", capacity=1000)
    claimed = connector.sync(w.services)["claimed"]
    assert sorted(c["accountId"] for c in claimed) == sorted(ids)
    assert all(c["mode"] == "restore" and c["generation"] == 2 for c in claimed)
    assert connector.open_claim(claimed[-1]).account_id == claimed[-1]["accountId"]
    outcomes = w.services.stores.outcomes.since(w.clock.now)
    assert sorted(o.account_id for o in outcomes) == sorted(ids)
    assert rival.sync(w.services)["claimed"] == []


def test_a_connector_id_is_bound_to_the_identity_that_first_used_it(tmp_path: Path) -> None:
    """Issue 16 item 10: connectorSync accepted any connectorId from any allowed caller, so one could release
    another connector's leases. The id is bound to the verified identity of its first call."""
    from functions.errors import PermissionDeniedError

    w = world(tmp_path)
    account_id = w.add()
    owner = FakeConnector("c-1")
    owner.sync(w.services)  # the local shared token: identity "token"
    generation = owner.held[account_id]
    with pytest.raises(PermissionDeniedError, match="c-1"):
        w.services.sync.sync(owner.request(release={account_id: generation}),
                             caller="someone-else@p.iam.gserviceaccount.com")
    lease = w.services.stores.leases.get(account_id)
    assert lease is not None and (lease.connector_id, lease.generation) == ("c-1", generation)
    owner.sync(w.services)  # its own identity still may
    assert owner.held == {account_id: generation}
    other = FakeConnector("c-2")
    other.sync(w.services)
    with pytest.raises(PermissionDeniedError):
        w.services.sync.sync(other.request(), caller="token-but-not-really")
