"""Batched lease claims and outcome records, on both stores (memory, and Firestore on the emulator)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from functions.firestore_stores import firestore_stores
from functions.model import RestoreOutcome, RestoreOutcomeKind
from functions.stores import Stores
from testkit.functions_world import T0
from testkit.memory_stores import memory_stores


def _check_claim_many(stores: Stores) -> None:
    leases = stores.leases
    assert leases.claim("held", "c2", T0, 30) is not None
    assert leases.claim("expired", "c2", T0 - timedelta(seconds=60), 30) is not None
    assert leases.claim("released", "c2", T0, 30) is not None
    assert leases.release("released", "c2", 1, T0)
    got = leases.claim_many(["new", "held", "expired", "released", "new"], "c1", T0, 30)
    assert set(got) == {"new", "held", "expired", "released"}
    assert got["held"] is None, "a live lease of another connector is not taken"
    new, expired, released = got["new"], got["expired"], got["released"]
    assert new is not None and (new.connector_id, new.generation) == ("c1", 1)
    assert new.expires_at == T0 + timedelta(seconds=30)
    assert expired is not None and expired.generation == 2, "a change of owner increments the generation"
    assert released is not None and released.generation == 2
    stored = leases.get_many(["new", "held", "expired", "released"])
    assert {k: (v.connector_id, v.generation) for k, v in stored.items()} == {
        "new": ("c1", 1), "held": ("c2", 1), "expired": ("c1", 2), "released": ("c1", 2)}
    assert leases.claim_many([], "c1", T0, 30) == {}


def _check_release_many(stores: Stores) -> None:
    leases = stores.leases
    for account_id in ("mine", "other", "old"):
        leases.claim(account_id, "c1", T0, 30)
    leases.release("other", "c1", 1, T0)
    assert leases.claim("other", "c2", T0, 30) is not None  # now c2's, generation 2
    later = T0 + timedelta(seconds=5)
    got = leases.release_many([("mine", 1), ("other", 1), ("old", 7), ("missing", 1)], "c1", later)
    assert got == {"mine": True, "other": False, "old": False, "missing": False}
    stored = leases.get_many(["mine", "other", "old"])
    assert (stored["mine"].connector_id, stored["mine"].generation, stored["mine"].expires_at) == (None, 1, later)
    assert (stored["other"].connector_id, stored["other"].generation) == ("c2", 2), "another's lease untouched"
    assert stored["old"].connector_id == "c1", "a wrong generation releases nothing"
    again = leases.claim("mine", "c3", later, 30)
    assert again is not None and again.generation == 2
    assert leases.release_many([], "c1", later) == {}


def _check_record_many(stores: Stores) -> None:
    outcomes = [RestoreOutcome(f"a{i}", RestoreOutcomeKind.RESTORED, T0, "c1", 3, None, 0) for i in range(5)]
    stores.outcomes.record_many(outcomes)
    stores.outcomes.record_many([])
    got = sorted(stores.outcomes.since(T0), key=lambda o: o.account_id)
    assert got == outcomes


def test_claim_many_in_memory() -> None:
    _check_claim_many(memory_stores())


def test_record_many_in_memory() -> None:
    _check_record_many(memory_stores())


def test_release_many_in_memory() -> None:
    _check_release_many(memory_stores())


@pytest.mark.integration
def test_release_many_on_firestore(firestore_client: Any) -> None:
    _check_release_many(firestore_stores(firestore_client))


@pytest.mark.integration
def test_claim_many_on_firestore(firestore_client: Any) -> None:
    _check_claim_many(firestore_stores(firestore_client))


@pytest.mark.integration
def test_record_many_on_firestore(firestore_client: Any) -> None:
    _check_record_many(firestore_stores(firestore_client))


@pytest.mark.integration
def test_concurrent_batched_claims_give_each_account_to_exactly_one_connector(firestore_client: Any) -> None:
    stores = firestore_stores(firestore_client)
    accounts = [f"acc{i}" for i in range(12)]
    won: dict[str, list[str]] = {a: [] for a in accounts}
    lock = threading.Lock()

    errors: list[BaseException] = []

    def connector(name: str, order: list[str]) -> None:
        # Like a connector's successive calls: what nobody got (a chunk given up to contention) is
        # asked for again, a bounded number of times.
        try:
            for _ in range(10):
                with lock:
                    left = [a for a in order if not won[a]]
                if not left:
                    return
                for start in range(0, len(left), 4):
                    for account_id, lease in stores.leases.claim_many(left[start:start + 4], name, T0, 30).items():
                        if lease is not None:
                            with lock:
                                won[account_id].append(f"{name}@{lease.generation}")
        except BaseException as exc:
            errors.append(exc)

    orders = [accounts, accounts[::-1], accounts[6:] + accounts[:6], accounts[3:] + accounts[:3]]
    threads = [threading.Thread(target=connector, args=(f"c{i}", order)) for i, order in enumerate(orders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert all(len(winners) == 1 for winners in won.values()), won
    assert all(w[0].endswith("@1") for w in won.values())
    stored = stores.leases.get_many(accounts)
    assert all(f"{stored[a].connector_id}@{stored[a].generation}" == won[a][0] for a in accounts)


@pytest.mark.integration
def test_a_claim_chunk_lost_to_contention_claims_nothing_instead_of_failing(
        firestore_client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The call's renewals and releases are committed before its claims: contention on a chunk must not
    turn the whole call into an error. Anything else still is one."""
    from google.api_core.exceptions import Aborted

    import functions.firestore_stores as module

    def contended_run(run: Any, client: Any) -> Any:
        raise ValueError("Failed to commit transaction in 5 attempts.") from Aborted("lock timeout")

    stores = firestore_stores(firestore_client)
    monkeypatch.setattr(module, "run_contended", contended_run)
    assert stores.leases.claim_many(["acc-x", "acc-y"], "c1", T0, 30) == {"acc-x": None, "acc-y": None}

    def broken_run(run: Any, client: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(module, "run_contended", broken_run)
    with pytest.raises(ValueError, match="a bug"):
        stores.leases.claim_many(["acc-x"], "c1", T0, 30)
    monkeypatch.undo()
    assert stores.leases.get_many(["acc-x", "acc-y"]) == {}
