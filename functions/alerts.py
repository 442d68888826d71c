"""Raising alerts: an ``alerts/{alertId}`` document plus a message on the alerts topic.

An alert's id is derived from its account and kind (this module is the one place that says how),
so one problem that persists across health checks keeps one open alert and is published once; once
closed, the same problem raises it anew. Knowing the ids also lets an alert of a given kind be read
or closed without a query: resolving kinds reads those documents, and a flow that writes its account
anyway reads them beside the account (:func:`alert_ids`) and closes them in the same write.
Publishing is best effort: the ``alerts/{id}`` document is written first and is the record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from functions.model import Alert, Clock
from functions.stores import AlertPublisher, AlertStore
from shared.events import AlertRaised

_log = logging.getLogger(__name__)


def alert_id(account_id: str, kind: str) -> str:
    return f"{account_id}.{kind}"


def alert_ids(account_id: str, kinds: Iterable[str]) -> tuple[str, ...]:
    """The ids the account's alerts of these kinds have (open or not)."""
    return tuple(alert_id(account_id, kind) for kind in kinds)


class Alerter:
    def __init__(self, store: AlertStore, publisher: AlertPublisher, clock: Clock) -> None:
        self._store = store
        self._publisher = publisher
        self._clock = clock

    def raise_alert(self, account_id: str, kind: str, message: str) -> bool:
        """Open an alert unless the same one is open; publish it when new. True when new."""
        alert = Alert(alert_id(account_id, kind), account_id, kind, message, self._clock())
        if not self._store.raise_alert(alert):
            return False
        event = AlertRaised(alert.alert_id, account_id, kind, message, alert.created_at)
        try:
            self._publisher.publish(event.to_json(), event.attributes())
        except Exception:
            # The document is the durable record (metrics list it); a missing or unreachable topic
            # must not fail the persist / restore / event flow that found the problem.
            _log.exception("account %s: alert %s stored but not published", account_id, kind)
        _log.warning("account %s: alert %s raised", account_id, kind)
        return True

    def resolve(self, account_id: str, kinds: tuple[str, ...] | None = None) -> int:
        """Close the account's open alerts of these kinds (all of them: None); returns how many.

        With kinds, their documents are read by id; all of an account's alerts take a query."""
        if kinds is None:
            return self._store.close(account_id)
        return self._store.close_ids(account_id, alert_ids(account_id, kinds))
