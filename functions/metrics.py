"""getMetrics: the numbers on the frontend's dashboard.

An admin sees the whole system, including the connectors and when each last synced; any other
user sees the same figures for the accounts they own, and the stores are asked about those accounts
only (their heads by id, their outcomes and alerts by query, health from the account documents): a user's
call never reads the fleet's heads, outcomes or alerts, nor its health-check totals.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from functions.accounts import Caller
from functions.model import Account, AccountStatus, Clock, Health, RestoreOutcome, RestoreOutcomeKind
from functions.ports import SessionVault
from functions.stores import Stores
from shared.events import format_time

RESTORE_WINDOW = timedelta(hours=24)
MAX_ALERTS_LISTED = 50
CONNECTOR_LIVE_WINDOW = timedelta(minutes=1)
#: A restore counts towards the durations when its account connected within this long after the claim.
RESTORE_DURATION_LIMIT = timedelta(minutes=5)


def _timeline(now: datetime, outcomes: list[RestoreOutcome], accounts: dict[str, Account],
              reconnects: dict[datetime, int]) -> list[dict[str, Any]]:
    """The last 24 hours, hour by hour: restores by outcome, the median restore duration (claim to
    connected, for each account's latest restore) and reconnects (admins only: they are counted for all)."""
    first = (now - RESTORE_WINDOW).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = [first + timedelta(hours=i) for i in range(24)]
    buckets: dict[datetime, dict[str, Any]] = {
        h: {"hour": format_time(h), "restored": 0, "fellBack": 0, "failed": 0, "durations": [],
            "reconnects": 0} for h in hours}
    latest: dict[str, RestoreOutcome] = {}
    for outcome in outcomes:
        bucket = buckets.get(outcome.at.replace(minute=0, second=0, microsecond=0))
        if bucket is None:
            continue
        key = {RestoreOutcomeKind.RESTORED: "restored", RestoreOutcomeKind.FELL_BACK: "fellBack"}.get(
            outcome.outcome, "failed")
        bucket[key] += 1
        if outcome.outcome is not RestoreOutcomeKind.FAILED and (
                outcome.account_id not in latest or latest[outcome.account_id].at < outcome.at):
            latest[outcome.account_id] = outcome
    for account_id, outcome in latest.items():
        account = accounts.get(account_id)
        connected = account.last_connected_at if account is not None else None
        if connected is not None and timedelta(0) <= connected - outcome.at <= RESTORE_DURATION_LIMIT:
            buckets[outcome.at.replace(minute=0, second=0, microsecond=0)]["durations"].append(
                (connected - outcome.at).total_seconds())
    for hour, count in reconnects.items():
        if hour in buckets:
            buckets[hour]["reconnects"] += count
    out = []
    for hour in hours:
        bucket = buckets[hour]
        durations = bucket.pop("durations")
        bucket["restoreSecondsP50"] = round(median(durations), 3) if durations else None
        out.append(bucket)
    return out


def metrics(stores: Stores, vault: SessionVault, caller: Caller, clock: Clock) -> dict[str, Any]:
    now = clock()
    accounts = [a for a in stores.accounts.list_accounts(None if caller.admin else caller.uid)
                if a.status is not AccountStatus.REMOVED]
    ids = {a.account_id for a in accounts}
    by_status = Counter(a.status.value for a in accounts)
    since = now - RESTORE_WINDOW
    if caller.admin:
        sessions = len(vault.list_accounts())
        outcomes = stores.outcomes.since(since)
        alerts = stores.alerts.open_alerts(None)
        summary = stores.status.health_summary()
        last_check = None if summary is None else {
            "checkedAt": format_time(summary.checked_at), "sessions": summary.sessions,
            "problems": summary.problems, "byHealth": dict(summary.by_health)}
    else:
        sessions = len(vault.stored_among(sorted(ids))) if ids else 0
        outcomes = stores.outcomes.for_accounts(sorted(ids), since) if ids else []
        alerts = stores.alerts.open_alerts(sorted(ids)) if ids else []
        last_check = _own_health(accounts)
    by_outcome = Counter(o.outcome.value for o in outcomes)
    succeeded = by_outcome[RestoreOutcomeKind.RESTORED.value] + by_outcome[RestoreOutcomeKind.FELL_BACK.value]
    alerts.sort(key=lambda a: a.created_at, reverse=True)
    view: dict[str, Any] = {
        "accounts": len(accounts),
        "accountsByStatus": dict(by_status),
        "sessionsStored": sessions,
        "restores24h": {
            "total": len(outcomes),
            "restored": by_outcome[RestoreOutcomeKind.RESTORED.value],
            "fellBack": by_outcome[RestoreOutcomeKind.FELL_BACK.value],
            "failed": by_outcome[RestoreOutcomeKind.FAILED.value],
            "successRate": round(succeeded / len(outcomes), 4) if outcomes else None,
        },
        "lastHealthCheck": last_check,
        "openAlerts": len(alerts),
        "alerts": [{"alertId": a.alert_id, "accountId": a.account_id, "kind": a.kind, "message": a.message,
                    "createdAt": format_time(a.created_at)} for a in alerts[:MAX_ALERTS_LISTED]],
    }
    view["timeline"] = _timeline(now, outcomes, {a.account_id: a for a in accounts},
                                 stores.status.reconnects_since(now - RESTORE_WINDOW) if caller.admin else {})
    if caller.admin:
        # A connector is live while it synced within a couple of lease lifetimes.
        live_after = now - CONNECTOR_LIVE_WINDOW
        view["connectors"] = sorted(
            ({"connectorId": c.connector_id, "lastSyncAt": format_time(c.last_sync_at), "capacity": c.capacity,
              "held": c.held, "live": c.last_sync_at >= live_after} for c in stores.status.connectors()),
            key=lambda c: str(c["connectorId"]))
    return view


def _own_health(accounts: list[Account]) -> dict[str, Any] | None:
    """The last health check as it judged the caller's own accounts (their ``health`` fields)."""
    checked = [a for a in accounts if a.health is not None and a.health_checked_at is not None]
    if not checked:
        return None
    by_health = Counter(a.health.value for a in checked if a.health is not None)
    return {"checkedAt": format_time(max(a.health_checked_at for a in checked if a.health_checked_at)),
            "sessions": len(checked), "problems": sum(n for h, n in by_health.items() if h != Health.OK.value),
            "byHealth": dict(by_health)}
