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
    to_renew: list[HeldAccount] = []
    for item in items:
        account = accounts.get(item.account_id)
        if account is None or account.status is AccountStatus.REMOVED:
            stores.leases.release(item.account_id, connector_id, item.generation, now)
            lost.append({"accountId": item.account_id, "reason": "removed"})
        elif not account.serve and account.status is not AccountStatus.REMOVING:
            stores.leases.release(item.account_id, connector_id, item.generation, now)
            lost.append({"accountId": item.account_id, "reason": "not_served"})
            _log.info("account %s: taken back from %s (status %s)", item.account_id, connector_id,
                      account.status.value)
        else:
            to_renew.append(item)
    leases = stores.leases.renew_many([(i.account_id, i.generation) for i in to_renew], connector_id, now, ttl_s)
    failed = [i for i in to_renew if leases.get(i.account_id) is None]
    current = stores.leases.get_many([i.account_id for i in failed]) if failed else {}
    index: dict[str, dict[str, Any]] = {}
    # Keep the claimable index ahead of the clock, writing it only about every half lease.
    index_horizon = now + timedelta(seconds=ttl_s / 2)
    for item in to_renew:
        lease = leases.get(item.account_id)
        account = accounts[item.account_id]
        if lease is None:
            reason = _lost_reason(current.get(item.account_id), item)
            lost.append({"accountId": item.account_id, "reason": reason})
            _log.warning("account %s: %s lost its lease (%s)", item.account_id, connector_id, reason)
            continue
        held_ids.add(item.account_id)
        renewed.append(lease_entry(lease))
        if account.serve and (account.claimable_after is None or account.claimable_after < index_horizon):
            index[item.account_id] = {"claimable_after": lease.expires_at}
        commands.extend(_commands_for(stores, account, now))
    if index:
        stores.accounts.update_many(index)
    return RenewResult(renewed, lost, commands, held_ids)
