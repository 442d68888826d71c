"""Local Pub/Sub delivery to the functions, shaped like Eventarc's delivery in production.

Deployed, Eventarc pulls each trigger's subscription and POSTs every message to the function as a
binary-mode CloudEvent (``ce-*`` headers, body ``{"message": {...}, "subscription": ...}``); a 2xx
reply acknowledges it, anything else makes Pub/Sub redeliver it after a backoff. The Pub/Sub
emulator's own push delivery keeps at most two requests in flight per subscription (measured here:
with a 100 ms handler it tops out near 20 messages/s), far below what 100 accounts churning
produce, so the local stack does what Eventarc does instead::

    Pub/Sub emulator ──StreamingPull (ordered per key)──► PubSubRelay ──POST CloudEvent──► gateway ──► function
                     ◄── ack on 2xx; otherwise retried with backoff ──┘

The functions run exactly as deployed (functions-framework parses the CloudEvent); only the
transport in front of them differs. Messages of one ordering key are handed over one at a time, in
order (the subscriber library holds the next one until the previous is acked or nacked; a refused
message is retried with backoff before anything after it), and up to ``max_in_flight`` messages of
different keys at once.

:func:`cloud_event` (the request for one message) and :class:`RetryPolicy` are pure; the
subscriber, the HTTP connections and the threads live in :class:`PubSubRelay`.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_log = logging.getLogger(__name__)

#: Eventarc's CloudEvent type for a Pub/Sub message.
PUBSUB_EVENT_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
DEFAULT_MAX_IN_FLIGHT = 16
REQUEST_TIMEOUT_S = 60.0
#: Deliveries of one message before it is handed back to Pub/Sub (deployed: the dead-letter policy's 20).
MAX_ATTEMPTS = 20
#: How often the relay logs what it delivered (0: never).
REPORT_EVERY_S = 10.0


@dataclass(frozen=True)
class Route:
    """One trigger: the subscription the relay pulls and the function URL it posts to."""

    function: str
    topic: str  # projects/P/topics/T
    subscription: str  # projects/P/subscriptions/S
    endpoint: str  # http://host:port/<project>/<region>/<function>


@dataclass(frozen=True)
class Delivery:
    """What the relay needs of one pulled message."""

    message_id: str
    data: bytes
    attributes: Mapping[str, str]
    publish_time: datetime
    ordering_key: str = ""


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def cloud_event(route: Route, delivery: Delivery) -> tuple[dict[str, str], bytes]:
    """Headers and body of the binary-mode CloudEvent Eventarc sends for ``delivery``."""
    message: dict[str, Any] = {
        "data": base64.b64encode(delivery.data).decode("ascii"),
        "attributes": dict(delivery.attributes),
        "messageId": delivery.message_id,
        "publishTime": _rfc3339(delivery.publish_time),
    }
    if delivery.ordering_key:
        message["orderingKey"] = delivery.ordering_key
    body = json.dumps({"message": message, "subscription": route.subscription}).encode()
    headers = {
        "Content-Type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": delivery.message_id,
        "ce-type": PUBSUB_EVENT_TYPE,
        "ce-source": f"//pubsub.googleapis.com/{route.topic}",
        "ce-time": _rfc3339(delivery.publish_time),
    }
    return headers, body


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff before a failed message is handed back for redelivery (Pub/Sub's retry policy)."""

    base_s: float = 0.5
    cap_s: float = 10.0

    def delay_s(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay after the ``attempt``-th failure (1-based): exponential, capped, half of it jittered."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** max(0, attempt - 1))
        return ceiling / 2 + ceiling / 2 * rand()


class _Connections:
    """One keep-alive HTTP connection per worker thread and host."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._local = threading.local()

    def post(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"the relay posts to plain http URLs only, not {url!r}")
        pool: dict[tuple[str, int], http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        key = (parts.hostname, parts.port or 80)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        for attempt in range(2):
            conn = pool.get(key)
            if conn is None:
                conn = pool[key] = http.client.HTTPConnection(key[0], key[1], timeout=self._timeout_s)
            try:
                conn.request("POST", path, body=body, headers=dict(headers))
                response = conn.getresponse()
                response.read()
                if response.will_close:
                    conn.close()
                    del pool[key]
                return response.status
            except (http.client.HTTPException, OSError):
                conn.close()
                del pool[key]
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


class RelayStats:
    """Counters of one relay (thread-safe): deliveries, failures, time spent in the functions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0
        self.in_flight = 0
        self.busy_s = 0.0
        self.slowest_s = 0.0

    def begin(self) -> None:
        with self._lock:
            self.in_flight += 1

    def end(self, ok: bool, elapsed_s: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.busy_s += elapsed_s
            self.slowest_s = max(self.slowest_s, elapsed_s)
            if ok:
                self.delivered += 1
            else:
                self.failed += 1

    def take(self) -> tuple[int, int, float, float, int]:
        """(delivered, failed, busy seconds, slowest seconds, in flight) since the last take."""
        with self._lock:
            taken = (self.delivered, self.failed, self.busy_s, self.slowest_s, self.in_flight)
            self.delivered = self.failed = 0
            self.busy_s = self.slowest_s = 0.0
            return taken


class PubSubRelay:
    """Pulls each route's subscription and posts every message to its function (module docstring)."""

    def __init__(self, routes: Iterable[Route], *, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 request_timeout_s: float = REQUEST_TIMEOUT_S, retry: RetryPolicy | None = None,
                 subscriber: Any = None, report_every_s: float = REPORT_EVERY_S) -> None:
        self.routes = tuple(routes)
        self.stats = RelayStats()
        self._max_in_flight = max_in_flight
        self._retry = retry or RetryPolicy()
        self._connections = _Connections(request_timeout_s)
        self._subscriber = subscriber
        self._futures: list[Any] = []
        self._executors: list[ThreadPoolExecutor] = []
        self._stopping = threading.Event()
        self._report_every_s = report_every_s

    def start(self) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]
        from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler

        if self._subscriber is None:
            self._subscriber = pubsub_v1.SubscriberClient()
        for route in self.routes:
            executor = ThreadPoolExecutor(self._max_in_flight, thread_name_prefix=f"relay-{route.function}")
            self._executors.append(executor)
            future = self._subscriber.subscribe(
                route.subscription, callback=lambda message, route=route: self._handle(route, message),
                flow_control=pubsub_v1.types.FlowControl(max_messages=self._max_in_flight),
                scheduler=ThreadScheduler(executor),
            )
            self._futures.append(future)
            _log.info("relay %s -> %s", route.subscription, route.endpoint)
        if self._report_every_s > 0:
            threading.Thread(target=self._report, name="relay-stats", daemon=True).start()

    def _report(self) -> None:
        while not self._stopping.wait(self._report_every_s):
            delivered, failed, busy_s, slowest_s, in_flight = self.stats.take()
            if delivered or failed:
                _log.info("relay: %d delivered, %d refused in %.0f s; mean %.0f ms, slowest %.0f ms; %d in flight",
                          delivered, failed, self._report_every_s, busy_s / (delivered + failed) * 1000,
                          slowest_s * 1000, in_flight)

    def stop(self) -> None:
        """Stop pulling; messages in flight are not acknowledged (Pub/Sub redelivers them)."""
        self._stopping.set()
        for future in self._futures:
            future.cancel()
            with contextlib.suppress(Exception):
                future.result(timeout=5)
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)
        self._futures.clear()
        self._executors.clear()

    def _handle(self, route: Route, message: Any) -> None:
        delivery = Delivery(message_id=str(message.message_id), data=bytes(message.data),
                            attributes=dict(message.attributes), publish_time=message.publish_time,
                            ordering_key=str(message.ordering_key or ""))
        headers, body = cloud_event(route, delivery)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            problem = self._post(route, headers, body)
            if problem is None:
                message.ack()
                return
            delay = self._retry.delay_s(attempt)
            _log.warning("relay: %s refused message %s (%s, attempt %d); again in %.1f s", route.function,
                         delivery.message_id, problem, attempt, delay)
            # Retried here rather than nacked: the subscriber hands out the next message of an ordering
            # key as soon as this one is nacked, so a nack would let it overtake the failed one.
            if self._stopping.wait(delay):
                break
        else:
            _log.error("relay: %s refused message %s %d times; handing it back to Pub/Sub (deployed, it "
                       "would go to the dead-letter topic)", route.function, delivery.message_id, MAX_ATTEMPTS)
        message.nack()

    def _post(self, route: Route, headers: Mapping[str, str], body: bytes) -> str | None:
        """POST one CloudEvent; None when the function accepted it, else what went wrong."""
        started = time.monotonic()
        self.stats.begin()
        try:
            status = self._connections.post(route.endpoint, headers, body)
            problem = None if 200 <= status < 300 else f"HTTP {status}"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            problem = type(exc).__name__
        self.stats.end(problem is None, time.monotonic() - started)
        return problem
