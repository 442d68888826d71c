"""Imported sessions become served accounts (``keeper vault import-baileys --owner``, ``migrate-legacy --owner``).

Storing a state in the vault is not enough for a connector to serve it: connectorSync claims
*accounts*. :func:`serve_imported` writes the account record of an imported, linked state (its
owner, the phone number and device JID from ``creds.me``, status ``connecting``, served and claimable
at once), so the next connectorSync claims it in ``restore`` mode and the session continues from the
imported keys, with no re-pairing. The phone number is claimed like ``addAccount`` claims it: one
active account per number.

Rules: a state that is not linked (no ``creds.me`` / ``creds.account``) is refused; an existing
account with this id is kept when it has the same owner and number (served again when it had
stopped: logged out, restore failed, pairing), and refused when it belongs to another owner, manages
another number, or is being removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from functions.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    PermissionDeniedError,
    ResourceExhaustedError,
)
from functions.model import GONE, Account, AccountStatus, PairingMethod, serving
from functions.stores import AccountStore
from shared.authstate import AuthState

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServedImport:
    account_id: str
    phone_number: str
    linked_jid: str
    outcome: Literal["created", "served", "unchanged"]


def linked_identity(state: AuthState) -> tuple[str, str]:
    """(E.164 phone number, device JID) of a linked state; InvalidArgumentError when it is not linked."""
    me = state.creds.me
    if me is None or state.creds.account is None:
        raise InvalidArgumentError("the imported state is not linked (creds.me / creds.account missing): pair it "
                                   "instead", {"field": "creds"})
    user = me.id.partition("@")[0].split(":", 1)[0]
    if not user.isdigit():
        raise InvalidArgumentError(f"creds.me.id {me.id!r} does not name a phone number", {"field": "creds.me"})
    return f"+{user}", me.id


def serve_imported(accounts: AccountStore, account_id: str, owner_uid: str, state: AuthState,
                   now: datetime, *, max_active: int) -> ServedImport:
    """Write or reuse the account record (``max_active``: the owner's account limit, as addAccount's)."""
    phone, jid = linked_identity(state)
    existing = accounts.get(account_id)
    if existing is not None:
        return _serve_existing(accounts, existing, owner_uid, (phone, jid), now)
    account = Account(
        account_id=account_id, owner_uid=owner_uid, phone_number=phone, method=PairingMethod.CODE,
        status=AccountStatus.CONNECTING, serve=True, created_at=now, updated_at=now, linked_jid=jid,
        last_saved_at=now, claimable_after=now, control_changed_at=now,
    )
    refusal = accounts.add(account, max_active)
    if refusal is not None and refusal.rival is not None:
        raise AlreadyExistsError(f"{phone} is already managed by account {refusal.rival.account_id}",
                                 {"field": "phone"})
    if refusal is not None:
        raise ResourceExhaustedError(f"owner {owner_uid} has {max_active} accounts already", {"field": "owner"})
    _log.info("account %s: imported session served (owner %s)", account_id, owner_uid)
    return ServedImport(account_id, phone, jid, "created")


def _serve_existing(accounts: AccountStore, account: Account, owner_uid: str, identity: tuple[str, str],
                    now: datetime) -> ServedImport:
    phone, jid = identity
    if account.owner_uid != owner_uid:
        raise PermissionDeniedError(f"account {account.account_id} belongs to another owner", {"field": "owner"})
    if account.phone_number != phone:
        raise FailedPreconditionError(f"account {account.account_id} manages {account.phone_number}, not {phone}",
                                      {"field": "phone"})
    if account.status in GONE:
        raise FailedPreconditionError(f"account {account.account_id} is being removed", {"field": "account"})
    if account.serve and account.status not in (AccountStatus.PAIRING, AccountStatus.RESTORE_FAILED):
        return ServedImport(account.account_id, phone, jid, "unchanged")
    accounts.update(account.account_id, {
        "status": AccountStatus.CONNECTING, **serving(True, now), "linked_jid": jid, "pairing": None,
        "status_reason": None, "last_saved_at": now, "updated_at": now})
    _log.info("account %s: imported session served again", account.account_id)
    return ServedImport(account.account_id, phone, jid, "served")
