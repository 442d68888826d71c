"""Lease renewal and release for a connector (the first half of connectorSync).

A lease is the fencing token of one account: ``leases/{accountId}`` names the connector that serves
it and a generation that grows on every change of owner. A connector renews what it holds every few
seconds; whatever it cannot renew comes back as ``lost`` and it must close that socket at once.
Accounts that are no longer to be served (logged out, restore failed, re-pairing) are taken back
here too, so the connector stops them; removing accounts stay held until the connector confirms
the logout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.model import Account, AccountStatus, Lease
from functions.stores import Stores
from functions.validation import HeldAccount
from shared.events import format_time

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RenewResult:
    renewed: list[dict[str, Any]]
    lost: list[dict[str, Any]]
    commands: list[dict[str, Any]]
    held_ids: set[str]


def lease_entry(lease: Lease) -> dict[str, Any]:
    return {"accountId": lease.account_id, "generation": lease.generation,
            "leaseExpiresAt": format_time(lease.expires_at)}


def _lost_reason(lease: Lease | None, held: HeldAccount) -> str:
    if lease is None:
        return "unknown_account"
    if lease.generation != held.generation:
        return "taken"  # another connector claimed it after this one's lease ran out
    return "released"


def release_all(stores: Stores, connector_id: str, items: tuple[HeldAccount, ...], now: datetime) -> None:
    accounts = stores.accounts.get_many([i.account_id for i in items]) if items else {}
    for item in items:
        if stores.leases.release(item.account_id, connector_id, item.generation, now):
            account = accounts.get(item.account_id)
            if account is not None and account.serve:
                stores.accounts.update(item.account_id, {"claimable_after": now})  # claimable at once
            _log.info("account %s: released by %s (generation %d)", item.account_id, connector_id,
                      item.generation)


def _commands_for(stores: Stores, account: Account, now: datetime) -> list[dict[str, Any]]:
    if account.status is AccountStatus.REMOVING:
        return [{"accountId": account.account_id, "action": "remove"}]
    if account.reconnect_requested_at is not None:
        # Delivered once: cleared as it is handed out (a lost response means one lost nudge).
        stores.accounts.update(account.account_id, {"reconnect_requested_at": None, "updated_at": now})
        return [{"accountId": account.account_id, "action": "reconnect"}]
    return []


def renew_all(stores: Stores, connector_id: str, items: tuple[HeldAccount, ...], now: datetime,
              ttl_s: float) -> RenewResult:
    renewed: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    held_ids: set[str] = set()
    accounts = stores.accounts.get_many([i.account_id for i in items])
    for item in items:
        account = accounts.get(item.account_id)
        if account is None or account.status is AccountStatus.REMOVED:
            stores.leases.release(item.account_id, connector_id, item.generation, now)
            lost.append({"accountId": item.account_id, "reason": "removed"})
            continue
        if not account.serve and account.status is not AccountStatus.REMOVING:
            stores.leases.release(item.account_id, connector_id, item.generation, now)
            lost.append({"accountId": item.account_id, "reason": "not_served"})
            _log.info("account %s: taken back from %s (status %s)", item.account_id, connector_id,
                      account.status.value)
            continue
        lease = stores.leases.renew(item.account_id, connector_id, item.generation, now, ttl_s)
        if lease is None:
            current = stores.leases.get(item.account_id)
            reason = _lost_reason(current, item)
            lost.append({"accountId": item.account_id, "reason": reason})
            _log.warning("account %s: %s lost its lease (%s)", item.account_id, connector_id, reason)
            continue
        held_ids.add(item.account_id)
        renewed.append(lease_entry(lease))
        # Keep the claimable index ahead of the clock, writing it only every half lease.
        stale_index = account.claimable_after is None or account.claimable_after < now + timedelta(seconds=ttl_s / 2)
        if account.serve and stale_index:
            stores.accounts.update(item.account_id, {"claimable_after": lease.expires_at})
        commands.extend(_commands_for(stores, account, now))
    return RenewResult(renewed, lost, commands, held_ids)
