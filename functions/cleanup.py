"""Scheduled cleanup: what is no longer needed goes, after a grace period where it matters.

- removed accounts (``removing`` / ``removed``) older than ``removed_grace_s``: account document,
  lease, alerts, every stored version and chunk, and its messages, chats and outbox;
- stored sessions whose account document is gone, once their last save is older than the grace
  period (a session imported a moment ago has no account yet);
- versions beyond the number kept, and chunks no version refers to (``vault.prune``);
- versions and chunks left without a head by an interrupted delete (``vault.list_orphaned_accounts``);
- pairing attempts that ran past ``pairing_ttl_s``: ``pairing_expired``, no longer served;
- restore outcomes and closed alerts older than :data:`HISTORY_RETENTION`;
- stored messages (and chats whose last message is) older than ``message_retention_s``
  (``KEEPER_MESSAGE_RETENTION_S``), at most :data:`MESSAGES_PER_RUN` per run, and sends that waited
  in the outbox past ``KEEPER_OUTBOX_TTL_S`` (failed, reason ``expired``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from functions.messages import DEFAULT_RETENTION_S, MessageStore
from functions.model import GONE, AccountStatus, Clock, serving
from functions.ports import SessionVault
from functions.send import SendService
from functions.stores import Stores

_log = logging.getLogger(__name__)


#: Restore outcomes, closed alerts and hourly reconnect counts are history: kept this long for the
#: dashboard, then deleted.
HISTORY_RETENTION = timedelta(days=30)
#: Message documents deleted per run at most (a daily run; what is left goes the next day).
MESSAGES_PER_RUN = 20_000


@dataclass(frozen=True, slots=True)
class CleanupSettings:
    removed_grace_s: float
    pairing_ttl_s: float
    message_retention_s: float = DEFAULT_RETENTION_S


class Cleaner:
    def __init__(self, stores: Stores, vault: SessionVault, clock: Clock, settings: CleanupSettings, *,
                 messages: MessageStore | None = None, sender: SendService | None = None) -> None:
        self._messages = messages
        self._sender = sender
        self._stores = stores
        self._vault = vault
        self._clock = clock
        self._settings = settings

    def run(self) -> dict[str, Any]:
        now = self._clock()
        grace = timedelta(seconds=self._settings.removed_grace_s)
        pairing_ttl = timedelta(seconds=self._settings.pairing_ttl_s)
        purged = expired = orphans = pruned = 0
        accounts = self._stores.accounts.list_accounts()
        for account in accounts:
            if account.status in GONE:
                removed_at = account.removed_at or account.updated_at
                if removed_at + grace <= now:
                    self._purge(account.account_id)
                    purged += 1
            elif account.status is AccountStatus.PAIRING:
                started = account.pairing_started_at or account.created_at
                if started + pairing_ttl < now:
                    self._stores.accounts.update(account.account_id, {
                        "status": AccountStatus.PAIRING_EXPIRED, **serving(False, now), "pairing": None,
                        "status_reason": "expired", "updated_at": now})
                    self._stores.leases.revoke(account.account_id, now)
                    expired += 1
                    _log.info("account %s: pairing expired", account.account_id)
        known = {a.account_id for a in accounts}
        for account_id in self._vault.list_accounts():
            if account_id not in known:
                check = self._vault.check(account_id)
                if check.saved_at is None or check.saved_at + grace <= now:
                    self._vault.delete(account_id)
                    orphans += 1
                    _log.info("account %s: orphaned session deleted", account_id)
                continue
            pruned += self._vault.prune(account_id)
        # versions and chunks whose head is gone (a delete interrupted half-way) are invisible to
        # list_accounts(); without this sweep they would stay forever
        for account_id in self._vault.list_orphaned_accounts():
            removed = self._vault.prune(account_id)
            if removed:
                pruned += removed
                orphans += 1
                _log.info("account %s: %d orphaned version documents deleted", account_id, removed)
        history = (self._stores.outcomes.delete_before(now - HISTORY_RETENTION)
                   + self._stores.alerts.delete_closed_before(now - HISTORY_RETENTION)
                   + self._stores.status.delete_reconnects_before(now - HISTORY_RETENTION))
        messages = sends_expired = 0
        if self._messages is not None:
            cutoff = now - timedelta(seconds=self._settings.message_retention_s)
            messages = self._messages.delete_older_than(cutoff, MESSAGES_PER_RUN)
        if self._sender is not None:
            sends_expired = self._sender.expire()
        _log.info("cleanup: %d purged, %d pairing expired, %d orphans, %d documents pruned, %d history records, "
                  "%d message documents, %d sends expired", purged, expired, orphans, pruned, history, messages,
                  sends_expired)
        result = {"purged": purged, "pairingExpired": expired, "orphanSessions": orphans, "pruned": pruned,
                  "history": history}
        if self._messages is not None:
            result.update(messages=messages, sendsExpired=sends_expired)
        return result

    def _purge(self, account_id: str) -> None:
        if self._messages is not None:  # first: a purge interrupted later leaves the account to purge again
            self._messages.delete_account(account_id)
        self._vault.delete(account_id)
        self._stores.leases.delete(account_id)
        self._stores.alerts.delete_for(account_id)
        self._stores.accounts.delete(account_id)
        _log.info("account %s: purged after the grace period", account_id)
