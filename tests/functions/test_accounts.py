"""The frontend's account operations over memory stores: ownership, admin, duplicates, removal."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from functions.accounts import Caller
from functions.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
)
from functions.model import AccountStatus, PairingInfo
from testkit.functions_world import ADMIN, ALICE, BOB, T0, FakeConnector, world


def test_add_creates_a_pairing_account_visible_to_its_owner_only(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add(ALICE, "+40700000001", "qr")
    view = w.services.accounts.get(ALICE, account_id)
    assert view["status"] == "pairing"
    assert view["phoneNumber"] == "+40700000001"
    assert view["method"] == "qr"
    assert view["createdAt"] == "2026-11-25T12:00:00.000Z"
    assert [a["accountId"] for a in w.services.accounts.list_accounts(ALICE)["accounts"]] == [account_id]
    assert w.services.accounts.list_accounts(BOB)["accounts"] == []
    with pytest.raises(PermissionDeniedError):
        w.services.accounts.get(BOB, account_id)
    with pytest.raises(PermissionDeniedError):
        w.services.accounts.remove(BOB, account_id)


def test_admin_sees_and_acts_on_every_account(tmp_path: Path) -> None:
    w = world(tmp_path)
    a = w.add(ALICE, "+40700000001")
    b = w.add(BOB, "+40700000002")
    listed = {x["accountId"] for x in w.services.accounts.list_accounts(ADMIN)["accounts"]}
    assert listed == {a, b}
    assert w.services.accounts.get(ADMIN, b)["accountId"] == b


def test_unknown_account_is_not_found(tmp_path: Path) -> None:
    w = world(tmp_path)
    with pytest.raises(NotFoundError):
        w.services.accounts.get(ALICE, "acc_missing")


def test_a_phone_number_is_managed_once_per_user_until_removed(tmp_path: Path) -> None:
    w = world(tmp_path)
    first = w.add(ALICE, "+40700000001")
    with pytest.raises(AlreadyExistsError):
        w.add(ALICE, "+40700000001")
    w.services.accounts.remove(ALICE, first)
    assert w.add(ALICE, "+40700000001") != first


def test_another_users_number_is_neither_held_nor_revealed(tmp_path: Path) -> None:
    """Issue 16 item 4: uniqueness was global, so any user could reserve any number forever and the 409 told
    anyone that a number was managed. Each user's numbers are now theirs alone: another user's add of the
    same number succeeds as if it were free (it pairs as a device of its own, which the phone must accept)."""
    w = world(tmp_path)
    alice = w.add(ALICE, "+40700000001")
    bob = w.add(BOB, "+40700000001")
    assert alice != bob
    assert w.services.accounts.get(BOB, bob)["phoneNumber"] == "+40700000001"
    with pytest.raises(PermissionDeniedError):
        w.services.accounts.get(BOB, alice)


@pytest.mark.parametrize("reason", ["expired", "rejected"])
def test_a_number_is_freed_when_its_pairing_expires_or_fails(tmp_path: Path, reason: str) -> None:
    """Issue 16 item 4: an account whose pairing expired or failed no longer holds its number; re-pairing
    that account is refused while a newer account of the user has taken the number."""
    from shared.events import PairingFailed

    w = world(tmp_path)
    first = w.add(ALICE, "+40700000001")
    connector = FakeConnector("c-1")
    connector.sync(w.services)
    w.services.events.handle(PairingFailed(first, reason, "c-1", connector.held[first]).to_json())
    second = w.add(ALICE, "+40700000001")
    assert second != first
    with pytest.raises(FailedPreconditionError, match="another account"):
        w.services.accounts.reconnect(ALICE, first)
    w.services.accounts.remove(ALICE, second)
    assert w.services.accounts.reconnect(ALICE, first)["status"] == "pairing"


def test_accounts_per_user_are_limited(tmp_path: Path) -> None:
    w = world(tmp_path, max_accounts_per_user=2)
    w.add(ALICE, "+40700000001")
    w.add(ALICE, "+40700000002")
    with pytest.raises(ResourceExhaustedError):
        w.add(ALICE, "+40700000003")


def test_pairing_code_shows_only_while_pairing_and_never_key_material(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add()
    w.services.stores.accounts.update(account_id, {"pairing": PairingInfo(code="ABCD1234", expires_at=T0)})
    view = w.services.accounts.get(ALICE, account_id)
    assert view["pairing"] == {"code": "ABCD1234", "qr": None, "expiresAt": "2026-11-25T12:00:00.000Z"}
    w.services.stores.accounts.update(account_id, {"status": AccountStatus.CONNECTED})
    view = w.services.accounts.get(ALICE, account_id)
    assert view["pairing"] is None
    text = repr(view).lower()
    assert "noisekey" not in text and "private" not in text and "creds" not in text


def test_removing_a_never_linked_unheld_account_is_immediate_and_idempotent(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add()
    assert w.services.accounts.remove(ALICE, account_id)["status"] == "removed"
    assert w.services.accounts.remove(ALICE, account_id)["status"] == "removed"
    assert w.services.accounts.list_accounts(ALICE)["accounts"] == []
    with pytest.raises(FailedPreconditionError):
        w.services.accounts.reconnect(ALICE, account_id)


def test_removing_a_held_account_waits_for_the_connector(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add()
    connector = FakeConnector("c-1")
    connector.sync(w.services)
    assert w.services.accounts.remove(ALICE, account_id)["status"] == "removing"
    response = connector.sync(w.services)
    assert response["commands"] == [{"accountId": account_id, "action": "remove"}]
    assert w.services.accounts.remove(ALICE, account_id)["status"] == "removing"


def test_two_concurrent_adds_of_one_number_leave_one_account(tmp_path: Path) -> None:
    """The duplicate check and the write are one atomic store operation: of a double click
    (here: eight at once), exactly one add succeeds and the others are told why."""
    from concurrent.futures import ThreadPoolExecutor

    w = world(tmp_path)
    start = threading.Barrier(8)

    def add(uid: str) -> str:
        start.wait()
        try:
            return w.add(Caller("alice"), "+40700000001")
        except AlreadyExistsError:
            return "refused"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(add, [f"user{i}" for i in range(8)]))
    winners = [o for o in outcomes if o != "refused"]
    assert len(winners) == 1 and outcomes.count("refused") == 7
    assert [a.account_id for a in w.services.stores.accounts.find_by_phone("+40700000001")] == winners
