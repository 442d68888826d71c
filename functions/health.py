"""The scheduled health check: is every stored session still restorable?

For each stored session the latest version is decrypted and validated (through the vault), and the
result is recorded on the session head and the account:

``ok`` · ``fell_back`` (latest unusable, an older one restores) · ``cannot_decrypt`` · ``invalid``
· ``stale`` (no save for ``stale_after_s``) · ``logged_out`` (the phone unlinked the device) ·
``missing`` (the account is linked but nothing is stored).

Each problem opens an alert (``alerts/{id}`` + the alerts topic), once while it lasts; a session
found healthy again closes its health alerts. Sessions of removing / removed accounts are not
checked (cleanup deletes them). A summary goes to ``health/summary``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta
from typing import Any

from functions.alerts import Alerter
from functions.model import GONE, Account, AccountStatus, Clock, Health
from functions.ports import SessionCheck, SessionVault
from functions.stores import HealthSummary, Stores
from shared import errors as shared_errors
from shared.events import format_time

_log = logging.getLogger(__name__)

HEALTH_ALERT_KINDS = tuple(h.value for h in Health if h is not Health.OK)

_MESSAGES = {
    Health.FELL_BACK: "latest stored version is unusable; an older version still restores",
    Health.CANNOT_DECRYPT: "no stored version decrypts",
    Health.INVALID: "no stored version holds a valid auth state",
    Health.STALE: "no session save for a long time",
    Health.LOGGED_OUT: "logged out from the phone; pairing needed",
    Health.MISSING: "linked, but no session state is stored",
}


def classify(check: SessionCheck, account: Account | None, now: Any, stale_after_s: float) -> Health:
    if account is not None and account.status is AccountStatus.NEEDS_PAIRING:
        return Health.LOGGED_OUT
    if check.usable_version is None:
        return Health.INVALID if check.problem == "invalid" else Health.CANNOT_DECRYPT
    if check.usable_version != check.latest_version:
        return Health.FELL_BACK
    if check.saved_at is not None and check.saved_at + timedelta(seconds=stale_after_s) < now:
        return Health.STALE
    return Health.OK


class HealthChecker:
    def __init__(self, stores: Stores, vault: SessionVault, alerter: Alerter, clock: Clock, *,
                 stale_after_s: float) -> None:
        self._stores = stores
        self._vault = vault
        self._alerter = alerter
        self._clock = clock
        self._stale_after_s = stale_after_s

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        now = self._clock()
        stored = self._vault.list_accounts()
        accounts = {a.account_id: a for a in self._stores.accounts.list_accounts()}
        counts: Counter[str] = Counter()
        errors = 0
        checked = 0
        for account_id in stored:
            account = accounts.get(account_id)
            if account is not None and account.status in GONE:
                continue  # removed: its state goes with the removal, nobody needs an alert about it
            checked += 1
            try:
                health = self._check_one(account_id, account)
            except shared_errors.KekUnavailableError:
                raise  # nothing can be judged without the KEK: fail the run, the scheduler retries
            except Exception:
                errors += 1
                _log.exception("account %s: health check failed", account_id)
                continue
            counts[health.value] += 1
        stored_ids = set(stored)
        for account in accounts.values():
            linked = account.linked_jid is not None and account.status not in GONE
            if linked and account.account_id not in stored_ids:
                self._record(account, Health.MISSING)
                counts[Health.MISSING.value] += 1
        problems = sum(n for kind, n in counts.items() if kind != Health.OK.value)
        summary = HealthSummary(checked_at=now, by_health=dict(counts), sessions=checked,
                                problems=problems, duration_ms=int((time.monotonic() - started) * 1000))
        self._stores.status.put_health_summary(summary)
        _log.info("health check: %d sessions, %d problems, %d errors", checked, problems, errors)
        return {"checkedAt": format_time(now), "sessions": checked, "problems": problems,
                "errors": errors, "byHealth": dict(counts), "durationMs": summary.duration_ms}

    def _check_one(self, account_id: str, account: Account | None) -> Health:
        check = self._vault.check(account_id)
        health = classify(check, account, self._clock(), self._stale_after_s)
        self._vault.record_health(account_id, health.value, self._clock())
        if account is not None:
            self._record(account, health)
        return health

    def _record(self, account: Account, health: Health) -> None:
        now = self._clock()
        self._stores.accounts.update(account.account_id, {"health": health, "health_checked_at": now})
        if health is Health.OK:
            self._alerter.resolve(account.account_id, HEALTH_ALERT_KINDS)
            return
        # The logged-out alert is raised when the event arrives; this keeps it open.
        self._alerter.raise_alert(account.account_id, health.value,
                                  f"Account {account.account_id}: {_MESSAGES[health]}.")
