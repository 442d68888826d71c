"""The Firestore stores on the emulator: document round trips and lease transactions under races."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest

from functions.firestore_stores import firestore_stores
from functions.model import Account, AccountStatus, Alert, Health, PairingInfo
from functions.stores import AddRefusal, VaultKeyRecord
from shared.connector_sync import PairingMethod
from testkit.functions_world import T0

pytestmark = pytest.mark.integration


def _account(account_id: str, owner: str = "alice", **changes: Any) -> Account:
    base = Account(account_id=account_id, owner_uid=owner, phone_number="+40700000001", method=PairingMethod.CODE,
                   status=AccountStatus.PAIRING, serve=True, created_at=T0, updated_at=T0, pairing_started_at=T0)
    return Account(**{**{f: getattr(base, f) for f in base.__slots__}, **changes})


def test_account_documents_round_trip(firestore_client: Any) -> None:
    stores = firestore_stores(firestore_client)
    stores.accounts.create(_account("a1", claimable_after=T0))
    assert stores.accounts.update("a1", {
        "pairing": PairingInfo(code="ABCD1234", expires_at=T0), "health": Health.STALE,
        "status": AccountStatus.CONNECTED, "linked_jid": "1@s.whatsapp.net"})
    got = stores.accounts.get("a1")
    assert got == _account("a1", claimable_after=T0, pairing=PairingInfo("ABCD1234", None, T0), health=Health.STALE,
                           status=AccountStatus.CONNECTED, linked_jid="1@s.whatsapp.net")
    doc = firestore_client.collection("accounts").document("a1").get().to_dict()
    assert doc["ownerUid"] == "alice" and doc["status"] == "connected" and doc["pairing"]["code"] == "ABCD1234"
    assert not stores.accounts.update("missing", {"serve": False})
    with pytest.raises(ValueError, match="unknown account fields"):
        stores.accounts.update("a1", {"nope": 1})
    stores.accounts.create(_account("a2", owner="bob", serve=False, status=AccountStatus.REMOVING))
    assert [a.account_id for a in stores.accounts.list_accounts("alice")] == ["a1"]
    assert [a.account_id for a in stores.accounts.claimable(T0 + timedelta(seconds=1), 10)] == ["a1"]
    assert stores.accounts.claimable(T0 - timedelta(seconds=1), 10) == []
    assert [a.account_id for a in stores.accounts.removing(10)] == ["a2"]
    assert set(stores.accounts.get_many(["a1", "a2", "zz"])) == {"a1", "a2"}


def test_concurrent_claims_give_each_account_to_exactly_one_connector(firestore_client: Any) -> None:
    stores = firestore_stores(firestore_client)
    accounts = [f"acc{i}" for i in range(6)]
    won: dict[str, list[str]] = {a: [] for a in accounts}
    lock = threading.Lock()

    def connector(name: str) -> None:
        for account_id in accounts:
            lease = stores.leases.claim(account_id, name, T0, 30)
            if lease is not None:
                with lock:
                    won[account_id].append(f"{name}@{lease.generation}")

    threads = [threading.Thread(target=connector, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(len(winners) == 1 for winners in won.values()), won
    assert all(w[0].endswith("@1") for w in won.values())


def test_lease_renew_release_revoke(firestore_client: Any) -> None:
    leases = firestore_stores(firestore_client).leases
    first = leases.claim("a1", "c1", T0, 30)
    assert first is not None and first.generation == 1
    assert leases.claim("a1", "c2", T0 + timedelta(seconds=10), 30) is None
    renewed = leases.renew("a1", "c1", 1, T0 + timedelta(seconds=20), 30)
    assert renewed is not None and renewed.expires_at == T0 + timedelta(seconds=50)
    assert leases.renew("a1", "c2", 1, T0, 30) is None
    assert leases.renew("a1", "c1", 2, T0, 30) is None
    assert leases.release("a1", "c1", 1, T0 + timedelta(seconds=21))
    assert not leases.release("a1", "c1", 1, T0 + timedelta(seconds=21))
    second = leases.claim("a1", "c2", T0 + timedelta(seconds=22), 30)
    assert second is not None and second.generation == 2
    leases.revoke("a1", T0 + timedelta(seconds=23))
    assert leases.renew("a1", "c2", 2, T0 + timedelta(seconds=24), 30) is None
    third = leases.claim("a1", "c3", T0 + timedelta(seconds=25), 30)
    assert third is not None and third.generation == 3


def test_alerts_are_raised_once_while_open(firestore_client: Any) -> None:
    alerts = firestore_stores(firestore_client).alerts
    alert = Alert("a1.stale", "a1", "stale", "Account a1: no save.", T0)
    assert alerts.raise_alert(alert)
    assert not alerts.raise_alert(alert)
    assert [a.alert_id for a in alerts.open_alerts(["a1"])] == ["a1.stale"]
    assert alerts.open_alerts(["a2"]) == []
    assert alerts.close("a1", ["stale"]) == 1
    assert alerts.open_alerts() == []
    assert alerts.raise_alert(alert), "a closed alert is raised anew"
    alerts.delete_for("a1")
    assert alerts.open_alerts() == []


def test_renew_many_renews_only_what_is_still_held(firestore_client: Any) -> None:
    leases = firestore_stores(firestore_client).leases
    for i in range(5):
        leases.claim(f"a{i}", "c1", T0, 30)
    leases.release("a3", "c1", 1, T0)
    leases.claim("a4", "c2", T0 + timedelta(seconds=40), 30)  # expired, taken: generation 2
    later = T0 + timedelta(seconds=41)
    result = leases.renew_many([(f"a{i}", 1) for i in range(5)] + [("missing", 1)], "c1", later, 30)
    assert {k for k, v in result.items() if v is not None} == {"a0", "a1", "a2"}
    assert result["a3"] is None and result["a4"] is None and result["missing"] is None
    assert result["a0"] is not None and result["a0"].expires_at == later + timedelta(seconds=30)


def test_history_retention_queries(firestore_client: Any) -> None:
    from functions.model import RestoreOutcome, RestoreOutcomeKind

    stores = firestore_stores(firestore_client)
    stores.outcomes.record(RestoreOutcome("a1", RestoreOutcomeKind.RESTORED, T0, "c1", 1))
    stores.outcomes.record(RestoreOutcome("a1", RestoreOutcomeKind.FAILED, T0 + timedelta(days=40), "c1"))
    stores.alerts.raise_alert(Alert("a1.stale", "a1", "stale", "m", T0))
    stores.alerts.close("a1")
    stores.alerts.raise_alert(Alert("a1.invalid", "a1", "invalid", "m", T0))  # open: kept
    cutoff = T0 + timedelta(days=10)
    assert stores.outcomes.delete_before(cutoff) == 1
    assert stores.alerts.delete_closed_before(cutoff) == 1
    assert [o.outcome for o in stores.outcomes.since(T0)] == [RestoreOutcomeKind.FAILED]
    assert [a.alert_id for a in stores.alerts.open_alerts()] == ["a1.invalid"]


def test_the_last_vault_key_handed_out_is_kept(firestore_client: Any) -> None:
    status = firestore_stores(firestore_client).status
    assert status.vault_key() is None
    status.put_vault_key(VaultKeyRecord(b"\x01" * 32, "7"))
    assert firestore_stores(firestore_client).status.vault_key() == VaultKeyRecord(b"\x01" * 32, "7")


def test_concurrent_adds_of_one_number_store_exactly_one_account(firestore_client: Any) -> None:
    stores = firestore_stores(firestore_client)
    start = threading.Barrier(6)
    rivals: dict[str, Account | None] = {}

    def add(account_id: str) -> None:
        start.wait()
        refusal = stores.accounts.add(_account(account_id), 50)
        rivals[account_id] = refusal.rival if refusal is not None else None

    threads = [threading.Thread(target=add, args=(f"dbl{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    [winner] = [account_id for account_id, rival in rivals.items() if rival is None]
    assert {rival.account_id for rival in rivals.values() if rival is not None} == {winner}
    assert [a.account_id for a in stores.accounts.find_by_phone("+40700000001")] == [winner]
    assert firestore_client.collection("account_owners").document("alice").get().to_dict()["lastAccountId"] == winner


def test_a_number_is_free_again_once_its_account_is_removed_or_deleted(firestore_client: Any) -> None:
    stores = firestore_stores(firestore_client)
    legacy_claim = firestore_client.collection("phone_numbers").document("+40700000001")
    assert stores.accounts.add(_account("first"), 50) is None
    assert stores.accounts.add(_account("second"), 50) == AddRefusal(rival=stores.accounts.get("first"))
    stores.accounts.update("first", {"status": AccountStatus.REMOVED})
    assert stores.accounts.add(_account("second"), 50) is None
    legacy_claim.set({"accountId": "second"})  # written by an add before numbers were per owner
    stores.accounts.delete("first")  # purging the old account leaves the new account's claim alone
    assert legacy_claim.get().to_dict()["accountId"] == "second"
    stores.accounts.delete("second")
    assert not legacy_claim.get().exists
    stores.accounts.create(_account("legacy"))  # stored directly, as imports do
    assert stores.accounts.add(_account("third"), 50) == AddRefusal(rival=stores.accounts.get("legacy"))


def test_a_rounds_outcomes_share_documents_and_read_back_one_by_one(firestore_client: Any) -> None:
    # One document per claim round (up to 200 outcomes), not one per restored account; documents of
    # one outcome each, as written before, still read.
    from functions.firestore_stores import OUTCOMES
    from functions.model import RestoreOutcome, RestoreOutcomeKind

    stores = firestore_stores(firestore_client)
    firestore_client.collection(OUTCOMES).add({"accountId": "old", "outcome": "fell_back", "at": T0,
                                               "connectorId": "c0", "version": 2, "reason": "invalid",
                                               "skipped": 1})
    round_ = [RestoreOutcome(f"a{i}", RestoreOutcomeKind.RESTORED, T0 + timedelta(seconds=i % 3), "c1", 1)
              for i in range(250)]
    stores.outcomes.record_many(round_)
    assert len(list(firestore_client.collection(OUTCOMES).stream())) == 3  # 200 + 50, and the old one
    got = stores.outcomes.since(T0)
    assert sorted(o.account_id for o in got) == sorted(["old", *(o.account_id for o in round_)])
    assert next(o for o in got if o.account_id == "old") == RestoreOutcome(
        "old", RestoreOutcomeKind.FELL_BACK, T0, "c0", 2, "invalid", 1)
    assert {o.account_id for o in stores.outcomes.since(T0 + timedelta(seconds=2))} == {
        o.account_id for o in round_ if o.at >= T0 + timedelta(seconds=2)}


def test_concurrent_adds_at_the_per_user_limit_never_exceed_it(firestore_client: Any) -> None:
    """Issue 16 item 3: 12 concurrent addAccount calls for a user at 48 of 50 leave exactly 50 active
    accounts (the count and the add are one atomic step), the other 10 are refused with the limit."""
    from functions.accounts import AccountService, Caller
    from functions.errors import ResourceExhaustedError
    from functions.validation import AddAccountInput

    stores = firestore_stores(firestore_client)
    service = AccountService(stores, lambda: T0, max_accounts_per_user=50)
    for i in range(48):
        stores.accounts.create(_account(f"lim{i}", owner="carol", phone_number=f"+4071{i:07d}"))
    stores.accounts.create(_account("gone", owner="carol", phone_number="+40719999999", status=AccountStatus.REMOVED))
    start = threading.Barrier(12)
    outcomes: list[str] = []
    lock = threading.Lock()

    def add(i: int) -> None:
        start.wait()
        try:
            service.add(Caller("carol"), AddAccountInput(f"+4072{i:07d}", PairingMethod.CODE))
            outcome = "added"
        except ResourceExhaustedError:
            outcome = "limit"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["added"] * 2 + ["limit"] * 10
    assert stores.accounts.count_active("carol") == 50


def test_reconnect_counts_add_up_per_hour(firestore_client: Any) -> None:
    status = firestore_stores(firestore_client).status
    hour = T0.replace(minute=0, second=0, microsecond=0)
    status.count_reconnects(hour, 2)
    status.count_reconnects(hour, 3)
    status.count_reconnects(hour - timedelta(hours=2), 7)
    assert status.reconnects_since(hour) == {hour: 5}
    assert sum(status.reconnects_since(hour - timedelta(hours=3)).values()) == 12
    assert status.delete_reconnects_before(hour) == 1  # cleanup drops the old hours
    assert status.reconnects_since(hour - timedelta(hours=3)) == {hour: 5}


def test_a_connector_record_keeps_the_identity_it_is_bound_to(firestore_client: Any) -> None:
    from functions.model import ConnectorRecord

    status = firestore_stores(firestore_client).status
    status.record_connector(ConnectorRecord("c-bound", T0, 10, 2, "keeper-connector@p.iam.gserviceaccount.com"))
    got = status.connector("c-bound")
    assert got is not None and got.identity == "keeper-connector@p.iam.gserviceaccount.com"
    status.record_connector(ConnectorRecord("c-old", T0, 10, 2))
    got = status.connector("c-old")
    assert got is not None and got.identity is None


def test_outcomes_and_alerts_of_some_accounts_are_read_by_query(firestore_client: Any) -> None:
    """getMetrics for a user (issue 16 item 5): outcome documents name their accounts, so those of a user's
    accounts are found by query (up to 30 ids a query) instead of reading the fleet's."""
    from functions.model import RestoreOutcome, RestoreOutcomeKind

    stores = firestore_stores(firestore_client)
    outcomes = [RestoreOutcome(f"acc{i}", RestoreOutcomeKind.RESTORED, T0 + timedelta(seconds=i), "c-1", 1, None, 0)
                for i in range(45)]
    stores.outcomes.record_many(outcomes)
    wanted = [f"acc{i}" for i in range(0, 45, 3)] + [f"acc{i}" for i in range(40, 45)] + ["nobody"]
    found = stores.outcomes.for_accounts(wanted, T0 + timedelta(seconds=3))
    assert sorted(o.account_id for o in found) == sorted({a for a in wanted if a != "nobody"} - {"acc0"})
    for i in range(35):
        stores.alerts.raise_alert(Alert(f"al{i}", f"acc{i}", "stale", "m", T0))
    stores.alerts.close("acc2")
    assert sorted(a.account_id for a in stores.alerts.open_alerts([f"acc{i}" for i in range(1, 34)])) == sorted(
        f"acc{i}" for i in range(1, 34) if i != 2)


def test_numbers_are_claimed_per_owner_and_freed_by_a_failed_pairing(firestore_client: Any) -> None:
    """Issue 16 item 4 on the emulator: the same number for two owners, and for one owner again once the
    first account's pairing expired or failed."""
    stores = firestore_stores(firestore_client)
    assert stores.accounts.add(_account("al-1"), 50) is None
    assert stores.accounts.add(_account("bo-1", owner="bob"), 50) is None
    assert stores.accounts.add(_account("al-2"), 50) == AddRefusal(rival=stores.accounts.get("al-1"))
    for status, account_id in ((AccountStatus.PAIRING_EXPIRED, "al-3"), (AccountStatus.PAIRING_FAILED, "al-4")):
        stores.accounts.update(_holder(stores, "alice"), {"status": status})
        assert stores.accounts.add(_account(account_id), 50) is None


def _holder(stores: Any, owner: str) -> str:
    from functions.model import NUMBER_FREED

    [holder] = [a.account_id for a in stores.accounts.find_by_phone("+40700000001")
                if a.owner_uid == owner and a.status not in NUMBER_FREED and a.status not in
                (AccountStatus.REMOVING, AccountStatus.REMOVED)]
    return str(holder)
