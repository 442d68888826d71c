"""Lease renewal and release for a connector (the first half of connectorSync).

A lease is the fencing token of one account: ``leases/{accountId}`` names the connector that serves
it and a generation that grows on every change of owner. A connector renews what it holds every few
seconds; whatever it cannot renew comes back as ``lost`` and it must close that socket at once.
Accounts that are no longer to be served (logged out, restore failed, re-pairing) are taken back
here too, so the connector stops them; removing accounts stay held until the connector confirms
the logout.

A held entry with ``renew`` false is a lease the connector does not need extended yet (it asks only
when its own deadline comes near, so the lease is live here): it is neither written nor listed in
``renewed``. Only the leases due are written, so a connector holding a thousand accounts costs a
third of the writes per sync.

Nor is it read, unless something the holder must act on happened to it. Those events are marked
where they are written: on the account, ``control_changed_at`` (serving on or off, which covers
removal, logout, replacement, failed restore, pairing expiry and restart, and every lease revoke;
a reconnect request); on the lease, ``taken_at`` (claimed from a connector whose lease had run
out) and ``expires_at`` itself (run out, released or revoked). Each call asks, in three
single-field queries, which accounts had any of these since :data:`CONTROL_MARGIN_S` before the
connector's previous call (``connectors/{id}``, recorded at the end of every call); a held entry
among them is read, account and lease, and handled as before (lost, commands, renewed if run out);
the others count as held with no read. Without a previous call, or after a gap of more than
:data:`PREVIOUS_CALL_MAX_TTLS` lease TTLs, every held account is read. The margin spans clock
differences between function instances and writes still in flight, and makes every call within
it see a change again, so an answer that never reached the connector loses nothing. One thing
reaches a holder only at its next renewal (the account read then finds it missing): the purge of
an account removed a grace period ago, whose document is gone.

Leases due for renewal (``renew`` true) are always read with their accounts: the renewal
transaction reads the lease anyway, and the account keeps the claimable index ahead of the lease.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.model import Account, AccountStatus, ConnectorRecord, Lease
from functions.stores import Stores
from shared.connector_sync import Command, CommandAction, HeldLease, Lost, LostReason, RenewedLease

_log = logging.getLogger(__name__)


#: How far before the connector's previous call the change queries reach back: function instances'
#: clocks differ, a change is committed a moment after its time was taken, and every call inside
#: this window sees a change again (so a lost answer is made good by the next).
CONTROL_MARGIN_S = 60.0
#: A previous call older than this many lease TTLs is no basis for "changed since": every held
#: account is read (its leases ran out meanwhile anyway).
PREVIOUS_CALL_MAX_TTLS = 2


@dataclass(frozen=True, slots=True)
class _RecentChanges:
    """What changed for holders since shortly before the connector's previous call."""

    #: Accounts whose control fields changed, as the query read them.
    accounts: dict[str, Account]
    #: Accounts whose lease was taken over from a connector whose lease ran out, or whose lease ran
    #: out, was released or revoked (its expiry passed) in the window.
    leases: set[str]


@dataclass(frozen=True, slots=True)
class RenewResult:
    renewed: list[RenewedLease]
    lost: list[Lost]
    commands: list[Command]
    held_ids: set[str]


def renewed_lease(lease: Lease) -> RenewedLease:
    return RenewedLease(lease.account_id, lease.generation, lease.expires_at)


def _lost_reason(lease: Lease | None, held: HeldLease) -> LostReason:
    if lease is None:
        return LostReason.UNKNOWN_ACCOUNT
    if lease.generation != held.generation:
        return LostReason.TAKEN  # another connector claimed it after this one's lease ran out
    return LostReason.RELEASED


def release_all(stores: Stores, connector_id: str, items: tuple[HeldLease, ...], now: datetime) -> None:
    if not items:
        return
    accounts = stores.accounts.get_many([i.account_id for i in items])
    released = stores.leases.release_many([(i.account_id, i.generation) for i in items], connector_id, now)
    index: dict[str, dict[str, Any]] = {}
    for item in items:
        if released.get(item.account_id):
            account = accounts.get(item.account_id)
            if account is not None and account.serve:
                index[item.account_id] = {"claimable_after": now}  # claimable at once
            _log.info("account %s: released by %s (generation %d)", item.account_id, connector_id,
                      item.generation)
    if index:
        stores.accounts.update_many(index)


def _commands_for(stores: Stores, account: Account, now: datetime) -> list[Command]:
    if account.status is AccountStatus.REMOVING:
        return [Command(account.account_id, CommandAction.REMOVE)]
    if account.reconnect_requested_at is not None:
        # Delivered once: cleared as it is handed out (a lost response means one lost nudge).
        stores.accounts.update(account.account_id, {"reconnect_requested_at": None, "updated_at": now})
        return [Command(account.account_id, CommandAction.RECONNECT)]
    return []


def _confirm_unrenewed(stores: Stores, connector_id: str, items: list[HeldLease], now: datetime,
                       ) -> tuple[dict[str, Lease], list[HeldLease], dict[str, Lease]]:
    """Split leases the connector did not ask to renew into still held (kept) and to be renewed after
    all (held by it but run out); returns (kept, due, what was read)."""
    current = stores.leases.get_many([i.account_id for i in items]) if items else {}
    kept: dict[str, Lease] = {}
    due: list[HeldLease] = []
    for item in items:
        lease = current.get(item.account_id)
        if lease is not None and lease.held_by(connector_id, item.generation):
            if lease.live(now):
                kept[item.account_id] = lease
            else:
                due.append(item)
    return kept, due, current


def _recent_changes(stores: Stores, previous: ConnectorRecord | None, now: datetime,
                    ttl_s: float) -> _RecentChanges | None:
    """Changes since :data:`CONTROL_MARGIN_S` before the connector's previous call (``previous``, its record
    as this call found it); None when there is no usable previous call (first call, or too long ago): then
    every held account must be read."""
    if previous is None or previous.last_sync_at < now - timedelta(seconds=ttl_s * PREVIOUS_CALL_MAX_TTLS):
        return None
    since = min(previous.last_sync_at, now) - timedelta(seconds=CONTROL_MARGIN_S)
    accounts = {a.account_id: a for a in stores.accounts.control_changed_since(since)}
    leases = {lease.account_id for lease in stores.leases.taken_since(since)}
    leases.update(lease.account_id for lease in stores.leases.ended_between(since, now))
    return _RecentChanges(accounts, leases)


def _split_quiet(stores: Stores, connector_id: str, items: tuple[HeldLease, ...], now: datetime,
                 ttl_s: float, *, previous: ConnectorRecord | None) -> tuple[set[str], dict[str, Account]]:
    """The held entries that need no read (``renew`` false and nothing changed for them), and the
    accounts the change query already read."""
    if all(i.renew for i in items):
        return set(), {}
    changes = _recent_changes(stores, previous, now, ttl_s)
    if changes is None:
        _log.info("connector %s: no recent previous call, reading every held account", connector_id)
        return set(), {}
    quiet = {i.account_id for i in items
             if not i.renew and i.account_id not in changes.accounts and i.account_id not in changes.leases}
    return quiet, changes.accounts


def renew_all(stores: Stores, connector_id: str, items: tuple[HeldLease, ...], now: datetime,
              ttl_s: float, *, previous: ConnectorRecord | None) -> RenewResult:
    """Renew, confirm or give up the held leases. ``previous`` is the connector's record as this call read
    it (once, for the identity check too)."""
    renewed: list[RenewedLease] = []
    lost: list[Lost] = []
    commands: list[Command] = []
    quiet, known = _split_quiet(stores, connector_id, items, now, ttl_s, previous=previous)
    held_ids: set[str] = set(quiet)
    items = tuple(i for i in items if i.account_id not in quiet)
    accounts = {i.account_id: known[i.account_id] for i in items if i.account_id in known}
    unread = [i.account_id for i in items if i.account_id not in known]
    if unread:
        accounts.update(stores.accounts.get_many(unread))
    to_renew: list[HeldLease] = []
    for item in items:
        account = accounts.get(item.account_id)
        if account is None or account.status is AccountStatus.REMOVED:
            stores.leases.release(item.account_id, connector_id, item.generation, now)
            lost.append(Lost(item.account_id, LostReason.REMOVED))
        elif not account.serve and account.status is not AccountStatus.REMOVING:
            stores.leases.release(item.account_id, connector_id, item.generation, now)
            lost.append(Lost(item.account_id, LostReason.NOT_SERVED))
            _log.info("account %s: taken back from %s (status %s)", item.account_id, connector_id,
                      account.status.value)
        else:
            to_renew.append(item)
    kept, overdue, current = _confirm_unrenewed(stores, connector_id, [i for i in to_renew if not i.renew], now)
    due = [i for i in to_renew if i.renew] + overdue
    leases = stores.leases.renew_many([(i.account_id, i.generation) for i in due], connector_id, now,
                                      ttl_s) if due else {}
    failed = [i.account_id for i in to_renew if i.account_id not in kept and leases.get(i.account_id) is None]
    if failed:  # read again: a lease found run out above may have been taken since
        current = {**current, **stores.leases.get_many(failed)}
    index: dict[str, dict[str, Any]] = {}
    # Keep the claimable index ahead of the clock, writing it only about every half lease.
    index_horizon = now + timedelta(seconds=ttl_s / 2)
    for item in to_renew:
        account = accounts[item.account_id]
        if item.account_id in kept:
            held_ids.add(item.account_id)
            commands.extend(_commands_for(stores, account, now))
            continue
        lease = leases.get(item.account_id)
        if lease is None:
            reason = _lost_reason(current.get(item.account_id), item)
            lost.append(Lost(item.account_id, reason))
            _log.warning("account %s: %s lost its lease (%s)", item.account_id, connector_id, reason)
            continue
        held_ids.add(item.account_id)
        renewed.append(renewed_lease(lease))
        if account.serve and (account.claimable_after is None or account.claimable_after < index_horizon):
            index[item.account_id] = {"claimable_after": lease.expires_at}
        commands.extend(_commands_for(stores, account, now))
    if index:
        stores.accounts.update_many(index)
    return RenewResult(renewed, lost, commands, held_ids)
