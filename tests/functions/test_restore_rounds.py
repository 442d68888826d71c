"""connectorSync claims in rounds (batched leases, parallel restores): what each call hands out and records."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions import restore
from functions.model import AccountStatus, RestoreOutcomeKind
from testkit.functions_world import ALICE, FakeConnector, World, registered_state, world


def _linked_many(w: World, n: int) -> list[str]:
    """``n`` accounts that paired and saved one version under generation 1, then were released."""
    ids = [w.add(ALICE, f"+4070{i:07d}") for i in range(n)]
    pairing = FakeConnector("c-pair", capacity=n)
    pairing.sync(w.services)
    for i, account_id in enumerate(ids):
        w.vault.save(account_id, registered_state(i), pairing.held[account_id])
        w.services.stores.accounts.update(account_id, {"status": AccountStatus.CONNECTED})
    pairing.sync(w.services, release=dict(pairing.held))
    return ids


def test_one_call_restores_many_accounts_over_several_rounds(tmp_path: Path) -> None:
    n = restore.CLAIM_ROUND * 2 + 3
    w = world(tmp_path, max_accounts_per_user=1000, max_claims_per_sync=1000)
    ids = _linked_many(w, n)
    connector = FakeConnector("c-1", capacity=n)
    response = connector.sync(w.services)
    claimed = response["claimed"]
    assert sorted(c["accountId"] for c in claimed) == sorted(ids)
    assert all(c["mode"] == "restore" and c["generation"] == 2 and c["version"] == 1 for c in claimed)
    for i, account_id in enumerate(ids):
        [claim] = [c for c in claimed if c["accountId"] == account_id]
        snapshot = connector.open_claim(claim)
        assert (snapshot.account_id, snapshot.generation) == (account_id, 2)
        assert snapshot.state == registered_state(i), "each account gets its own state"
    outcomes = w.services.stores.outcomes.since(w.clock.now)
    assert sorted(o.account_id for o in outcomes) == sorted(ids)
    assert {o.outcome for o in outcomes} == {RestoreOutcomeKind.RESTORED}
    leases = w.services.stores.leases.get_many(ids)
    assert all((lease.connector_id, lease.generation) == ("c-1", 2) for lease in leases.values())
    accounts = w.services.stores.accounts.get_many(ids)
    assert all(a.claimable_after == leases[a.account_id].expires_at for a in accounts.values()), \
        "the claim index moves past the new leases"


def test_a_spent_budget_ends_the_call_after_one_round_and_leaves_the_rest_untouched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restore, "CLAIM_BUDGET_S", 0.0)
    w = world(tmp_path, max_accounts_per_user=1000, max_claims_per_sync=1000)
    ids = _linked_many(w, 6)
    before = w.services.stores.leases.get_many(ids)
    connector = FakeConnector("c-1", capacity=10)
    first = connector.sync(w.services)["claimed"]
    assert len(first) == 1, "the first account that needs the vault goes alone"
    rest = [a for a in ids if a != first[0]["accountId"]]
    after = w.services.stores.leases.get_many(rest)
    assert after == {a: before[a] for a in rest}, "nothing claimed only to be given back"
    second = connector.sync(w.services)["claimed"]
    assert len(second) == 1 and second[0]["accountId"] in rest


def test_pairing_accounts_share_rounds_with_restores(tmp_path: Path) -> None:
    w = world(tmp_path, max_accounts_per_user=1000, max_claims_per_sync=1000)
    linked = _linked_many(w, 4)
    pairing = [w.add(ALICE, f"+4079{i:07d}") for i in range(restore.CLAIM_ROUND)]
    response = FakeConnector("c-1", capacity=100).sync(w.services)
    modes = {c["accountId"]: c["mode"] for c in response["claimed"]}
    assert modes == {**dict.fromkeys(linked, "restore"), **dict.fromkeys(pairing, "pair")}
    assert len(w.services.stores.outcomes.since(w.clock.now)) == len(linked), "outcomes only for restores"
