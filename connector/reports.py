"""Connection reports: every ``connection.update`` of this connector, published in batches.

A restart brings up every account at once: one message per update would be two messages, two
function calls and several Firestore round trips per account. :class:`ConnectionReports` collects
the updates of a short window (:data:`REPORT_WINDOW_S`, or :data:`~shared.events.MAX_BATCHED_UPDATES`
updates, whichever comes first) and publishes them, oldest first, as one ``connection.updates``
message with this connector's id as ordering key: the batches of one connector are accepted and
delivered in order, and each is retried until Pub/Sub takes it (:class:`~connector.publisher.OrderedPublisher`).
An update waits at most one window; :meth:`flush` sends what is waiting at once (shutdown).
"""

from __future__ import annotations

import asyncio
import logging

from connector.publisher import OrderedPublisher
from shared.events import MAX_BATCHED_UPDATES, ConnectionUpdate, ConnectionUpdates

log = logging.getLogger(__name__)

#: How long an update may wait for others to share its message.
REPORT_WINDOW_S = 1.0


class ConnectionReports:
    def __init__(self, publisher: OrderedPublisher, connector_id: str, *, window_s: float = REPORT_WINDOW_S,
                 max_updates: int = MAX_BATCHED_UPDATES) -> None:
        if not 0 < max_updates <= MAX_BATCHED_UPDATES:
            raise ValueError(f"max_updates must be 1..{MAX_BATCHED_UPDATES}")
        self._publisher = publisher
        self._connector_id = connector_id
        self._window_s = window_s
        self._max = max_updates
        self._waiting: list[ConnectionUpdate] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, update: ConnectionUpdate) -> None:
        """Queue ``update`` for the next batch (needs a running event loop)."""
        if update.connector_id != self._connector_id:
            raise ValueError("a connection update of another connector")
        self._waiting.append(update)
        if len(self._waiting) >= self._max:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._window_s, self.flush)

    def waiting(self) -> int:
        """Updates not yet handed to the publisher."""
        return len(self._waiting)

    def flush(self) -> asyncio.Future[bool] | None:
        """Hand every waiting update to the publisher now; the future says when Pub/Sub took them."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._waiting:
            return None
        batch = ConnectionUpdates(self._connector_id, tuple(self._waiting))
        self._waiting = []
        accepted = self._publisher.submit(self._connector_id, batch.to_json(), batch.attributes())
        accepted.add_done_callback(self._log_refused)
        return accepted

    @staticmethod
    def _log_refused(accepted: asyncio.Future[bool]) -> None:
        if accepted.cancelled():
            return
        exc = accepted.exception()
        if exc is not None:
            log.error("connection updates not published", extra={"fields": {"error": str(exc)}})
