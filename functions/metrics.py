"""getMetrics: the numbers on the frontend's dashboard.

An admin sees the whole system, including the connectors and when each last synced; any other
user sees the same figures for the accounts they own, and the stores are asked about those accounts
only (their heads by id, their outcomes and alerts by query, health from the account documents): a user's
call never reads the fleet's heads, outcomes or alerts, nor its health-check totals.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from functions.accounts import Caller
from functions.model import Account, AccountStatus, Clock, Health, RestoreOutcomeKind
from functions.ports import SessionVault
from functions.stores import Stores
from shared.events import format_time

RESTORE_WINDOW = timedelta(hours=24)
MAX_ALERTS_LISTED = 50
CONNECTOR_LIVE_WINDOW = timedelta(minutes=1)


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
