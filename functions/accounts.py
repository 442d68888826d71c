"""The frontend's account operations: add, list, get, reconnect, remove.

Every operation takes the verified :class:`Caller`. A caller sees and changes only the accounts it
owns; a caller with the ``admin`` custom claim sees and changes all. Views returned to the frontend
are JSON-ready dicts with status, phone, timestamps, versions kept and health, never key material;
the pairing code / QR string appears only while the account is pairing.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
)
from functions.model import (
    GONE,
    NEEDS_NEW_PAIRING,
    NUMBER_FREED,
    Account,
    AccountStatus,
    Clock,
    control_changed,
    holds_number,
    serving,
)
from functions.stores import Stores
from functions.validation import AddAccountInput
from shared.events import format_time

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Caller:
    uid: str
    admin: bool = False


def new_account_id() -> str:
    """Random, URL- and document-id-safe, 22 characters (128 bits)."""
    return "acc_" + secrets.token_urlsafe(16).replace("-", "x").replace("_", "y")


def _time(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def account_view(account: Account) -> dict[str, Any]:
    """What the frontend may see of an account."""
    view: dict[str, Any] = {
        "accountId": account.account_id,
        "phoneNumber": account.phone_number,
        "method": account.method.value,
        "status": account.status.value,
        "statusReason": account.status_reason,
        "linkedJid": account.linked_jid,
        "createdAt": _time(account.created_at),
        "lastConnectedAt": _time(account.last_connected_at),
        "lastSavedAt": _time(account.last_saved_at),
        "versionsKept": account.versions_kept,
        "health": account.health.value if account.health is not None else None,
        "healthCheckedAt": _time(account.health_checked_at),
        "pairing": None,
    }
    if account.status is AccountStatus.PAIRING and account.pairing is not None:
        view["pairing"] = {
            "code": account.pairing.code,
            "qr": account.pairing.qr,
            "expiresAt": _time(account.pairing.expires_at),
        }
    return view


class AccountService:
    def __init__(self, stores: Stores, clock: Clock, *, max_accounts_per_user: int,
                 new_id: Callable[[], str] = new_account_id) -> None:
        self._stores = stores
        self._clock = clock
        self._max_accounts = max_accounts_per_user
        self._new_id = new_id

    def _owned(self, caller: Caller, account_id: str) -> Account:
        account = self._stores.accounts.get(account_id)
        if account is None or (account.status is AccountStatus.REMOVED and not caller.admin
                               and account.owner_uid != caller.uid):
            raise NotFoundError(f"account {account_id} does not exist", {"accountId": account_id})
        if not caller.admin and account.owner_uid != caller.uid:
            raise PermissionDeniedError(f"account {account_id} belongs to another user",
                                        {"accountId": account_id})
        return account

    def add(self, caller: Caller, request: AddAccountInput) -> dict[str, Any]:
        now = self._clock()
        account = Account(
            account_id=self._new_id(), owner_uid=caller.uid, phone_number=request.phone_number,
            method=request.method, status=AccountStatus.PAIRING, serve=True, created_at=now,
            updated_at=now, pairing_started_at=now, claimable_after=now,
        )
        # Atomic: of a double click one request wins, and concurrent adds never pass the limit.
        refusal = self._stores.accounts.add(account, self._max_accounts)
        if refusal is not None and refusal.limit_reached:
            raise ResourceExhaustedError(f"at most {self._max_accounts} accounts per user")
        if refusal is not None:
            raise AlreadyExistsError("one of your accounts already manages this phone number",
                                     {"field": "phoneNumber"})
        _log.info("account %s: added, pairing by %s", account.account_id, request.method.value)
        return {"accountId": account.account_id}

    def list_accounts(self, caller: Caller) -> dict[str, Any]:
        accounts = self._stores.accounts.list_accounts(None if caller.admin else caller.uid)
        return {"accounts": [account_view(a) for a in accounts if a.status is not AccountStatus.REMOVED]}

    def get(self, caller: Caller, account_id: str) -> dict[str, Any]:
        return account_view(self._owned(caller, account_id))

    def reconnect(self, caller: Caller, account_id: str) -> dict[str, Any]:
        """Ask the holding connector to reconnect; after a logout or failed pairing, pair anew."""
        account = self._owned(caller, account_id)
        if account.status in GONE:
            raise FailedPreconditionError(f"account {account_id} is being removed", {"accountId": account_id})
        now = self._clock()
        if account.status in NUMBER_FREED and any(
                a.account_id != account_id and a.owner_uid == account.owner_uid and holds_number(a)
                for a in self._stores.accounts.find_by_phone(account.phone_number)):
            raise FailedPreconditionError(f"account {account_id}: its phone number is now managed by another "
                                          "account of yours; remove one of them first", {"accountId": account_id})
        if account.status in NEEDS_NEW_PAIRING:
            changes: dict[str, Any] = {
                "status": AccountStatus.PAIRING, **serving(True, now), "pairing": None, "pairing_started_at": now,
                "status_reason": None, "linked_jid": None,
            }
            action = "pairing"
            # Whoever still holds it holds dead credentials: take it back so it is claimed to pair.
            self._stores.leases.revoke(account_id, now)
        else:
            changes = {"reconnect_requested_at": now, **control_changed(now)}  # the holder reads it next call
            if not account.serve:
                changes.update(serving(True, now))
            if account.status in (AccountStatus.RESTORE_FAILED, AccountStatus.REPLACED,
                                  AccountStatus.STOPPED):
                changes["status"] = AccountStatus.RECONNECTING
            action = "reconnecting"
        changes["updated_at"] = now
        self._stores.accounts.update(account_id, changes)
        _log.info("account %s: %s requested", account_id, action)
        return {"accountId": account_id, "status": "pairing" if action == "pairing" else account.status.value}

    def remove(self, caller: Caller, account_id: str) -> dict[str, Any]:
        """Mark for removal: the holder logs out and deletes local state; stored state goes with it.

        Idempotent: removing a removing or removed account changes nothing.
        """
        account = self._owned(caller, account_id)
        if account.status in GONE:
            return {"accountId": account_id, "status": account.status.value}
        now = self._clock()
        lease = self._stores.leases.get(account_id)
        held = lease is not None and lease.live(now)
        # Nothing to log out when no connector holds it and it never linked: removal is done at once.
        nothing_linked = account.linked_jid is None and account.last_saved_at is None
        status = AccountStatus.REMOVED if (nothing_linked and not held) else AccountStatus.REMOVING
        self._stores.accounts.update(account_id, {
            "status": status, **serving(False, now), "removed_at": now, "updated_at": now, "pairing": None,
        })
        _log.info("account %s: removal requested (%s)", account_id, status.value)
        return {"accountId": account_id, "status": status.value}
