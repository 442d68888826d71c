"""Outbound sends for the accounts this connector holds: from the outbox to the send handler.

::

    sendMessage ─► outbox topic ─► OutboxSubscription ─────────┐   (within a second)
                                   (outbox-<connectorId>)      ├─► OutboxDispatcher ─► SendHandler
    connectorSync reply ─► pendingSends ───────────────────────┘   (catch-up)          per account, in order

The functions accept a send into a durable outbox (``accounts/{id}/outbox/{messageId}``), publish it
on the outbox topic ordered by account, and list it in connectorSync's ``pendingSends`` while it
waits (:mod:`functions.send`). Two paths, one rule: a connector hands each ``messageId`` to its
handler once (:class:`OutboxDispatcher` remembers what it handed over), however often and by
whichever path it arrives.

- :class:`OutboxSubscription` is this connector's own pull subscription on the outbox topic
  (``<topic>-<connectorId>``, created at start with ordering on; it expires after a day unused, and
  is deleted at shutdown). Every connector sees every send; the dispatcher keeps only those of the
  accounts it holds. What was published before the subscription existed comes by the catch-up.
- A send for an account not held (yet) is *parked* for :data:`PARK_S`: the claim that brings the
  account (:meth:`OutboxDispatcher.account_claimed`) releases it at once, so a send accepted while
  the account was being claimed does not wait for the next sync.
- Each account has one worker that awaits the handler for its sends in acceptance order. The handler
  (the Signal send path: devices, sessions, encryption, the stanza, the server ack, the
  ``message.status`` event) returns once the send is settled, or raises
  :class:`~connector.errors.SendRetryLater` to be called again after a backoff (1 s, doubling to
  30 s) while the account is held. Any other exception is logged and retried the same way up to
  :data:`MAX_ATTEMPTS` times; then the send is left to the outbox (a later claim hands it out again,
  cleanup fails it after its TTL).
- When the account is lost, its queue is dropped, not settled: the next holder gets the sends from
  its claim's ``pendingSends``.

A crash after the server acknowledged a send but before its ``sent`` status was published makes the
next holder send it again under the same message id (recipients show one message per id).
Plaintext (the text, the quoted message) is never logged here: log lines name account and message id.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from connector.errors import OutboxError, SendRetryLater
from shared.events import InvalidEventError, OutboundSend

log = logging.getLogger(__name__)

#: How long a send for an account this connector does not hold waits for a claim of it.
PARK_S = 30.0
#: Parked sends kept at most (oldest dropped first: they come again with the account's claim).
MAX_PARKED = 10_000
#: Message ids remembered as handed over, so a late duplicate is not sent twice.
REMEMBER_SENT = 50_000
RETRY_BASE_S = 1.0
RETRY_MAX_S = 30.0
MAX_ATTEMPTS = 8
#: Subscription settings: Pub/Sub's minimum expiry (a connector that died leaves nothing for long),
#: and its minimum retention (a send older than that comes by the catch-up anyway).
SUBSCRIPTION_TTL_S = 86400
SUBSCRIPTION_RETENTION_S = 600
ACK_DEADLINE_S = 30

#: Settles one send: returns when it is sent or failed (and its status published), raises
#: ``SendRetryLater`` to be called again later.
SendHandler = Callable[[OutboundSend], Awaitable[None]]


class Offer(enum.StrEnum):
    """What :meth:`OutboxDispatcher.offer` did with a send."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"  # queued, in flight or handed over already
    PARKED = "parked"  # its account is not held (yet)


@dataclass
class _Account:
    queue: collections.deque[OutboundSend] = field(default_factory=collections.deque)
    ids: set[str] = field(default_factory=set)
    worker: asyncio.Task[None] | None = None


class OutboxDispatcher:
    """Deduplicates, parks and orders sends, and runs the handler for them (module docstring).

    ``holds(account_id)`` says whether this connector serves the account now. The handler may be
    set later (:meth:`set_handler`); until then sends wait in their queues.
    """

    def __init__(self, holds: Callable[[str], bool], handler: SendHandler | None = None, *,
                 clock: Callable[[], float] = time.monotonic, park_s: float = PARK_S,
                 retry_base_s: float = RETRY_BASE_S, retry_max_s: float = RETRY_MAX_S,
                 max_attempts: int = MAX_ATTEMPTS) -> None:
        self._holds = holds
        self._handler = handler
        self._clock = clock
        self._park_s = park_s
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._max_attempts = max_attempts
        self._accounts: dict[str, _Account] = {}
        self._parked: collections.OrderedDict[tuple[str, str], tuple[float, OutboundSend]] = collections.OrderedDict()
        self._sent: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._handler_set = asyncio.Event() if handler is None else None
        self.counts: collections.Counter[str] = collections.Counter()
        self._closed = False

    def set_handler(self, handler: SendHandler) -> None:
        self._handler = handler
        if self._handler_set is not None:
            self._handler_set.set()

    def offer(self, send: OutboundSend) -> Offer:
        """Take a send from either path; see :class:`Offer`."""
        key = (send.account_id, send.message_id)
        state = self._accounts.get(send.account_id)
        if key in self._sent or (state is not None and send.message_id in state.ids):
            self.counts["duplicate"] += 1
            return Offer.DUPLICATE
        if self._closed or not self._holds(send.account_id):
            again = key in self._parked
            self._park(key, send)
            self.counts["duplicate" if again else "parked"] += 1
            return Offer.DUPLICATE if again else Offer.PARKED
        self._parked.pop(key, None)
        self._enqueue(send)
        self.counts["queued"] += 1
        return Offer.QUEUED

    def offer_all(self, sends: Iterable[OutboundSend]) -> None:
        for send in sends:
            self.offer(send)

    def account_claimed(self, account_id: str) -> int:
        """The account is held now: its parked sends join its queue, in order; returns how many."""
        self._expire_parked()
        waiting = sorted((send for (account, _), (_, send) in self._parked.items() if account == account_id),
                         key=lambda s: (s.accepted_at, s.message_id))
        for send in waiting:
            del self._parked[(send.account_id, send.message_id)]
            self._enqueue(send)
        return len(waiting)

    def account_released(self, account_id: str) -> None:
        """The account is no longer held: its waiting sends are dropped (the next holder gets them)."""
        state = self._accounts.pop(account_id, None)
        if state is not None and state.worker is not None:
            state.worker.cancel()

    def waiting(self, account_id: str) -> list[str]:
        """Message ids queued or in flight for the account (tests, metrics)."""
        state = self._accounts.get(account_id)
        return [s.message_id for s in state.queue] if state is not None else []

    def parked(self) -> int:
        self._expire_parked()
        return len(self._parked)

    async def close(self) -> None:
        self._closed = True
        workers = [s.worker for s in self._accounts.values() if s.worker is not None]
        self._accounts.clear()
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker

    # --- internals --------------------------------------------------------------------------------

    def _parked_expired(self, key: tuple[str, str]) -> bool:
        return self._parked[key][0] + self._park_s < self._clock()

    def _park(self, key: tuple[str, str], send: OutboundSend) -> None:
        self._expire_parked()
        self._parked[key] = (self._clock(), send)
        self._parked.move_to_end(key)
        while len(self._parked) > MAX_PARKED:
            self._parked.popitem(last=False)

    def _expire_parked(self) -> None:
        limit = self._clock() - self._park_s
        while self._parked:
            key, (parked_at, _) = next(iter(self._parked.items()))
            if parked_at >= limit:
                break
            del self._parked[key]

    def _enqueue(self, send: OutboundSend) -> None:
        state = self._accounts.setdefault(send.account_id, _Account())
        if send.message_id in state.ids:
            return
        state.queue.append(send)
        state.ids.add(send.message_id)
        if state.worker is None or state.worker.done():
            state.worker = asyncio.get_running_loop().create_task(
                self._work(send.account_id, state), name=f"outbox:{send.account_id}")

    def _remember(self, send: OutboundSend) -> None:
        self._sent[(send.account_id, send.message_id)] = None
        while len(self._sent) > REMEMBER_SENT:
            self._sent.popitem(last=False)

    async def _work(self, account_id: str, state: _Account) -> None:
        while state.queue:
            send = state.queue[0]
            settled = await self._settle(send)
            if self._accounts.get(account_id) is not state:
                return  # released meanwhile
            state.queue.popleft()
            state.ids.discard(send.message_id)
            if settled:
                self._remember(send)

    async def _settle(self, send: OutboundSend) -> bool:
        """Run the handler until the send is settled (True) or given up to the outbox (False)."""
        extra = {"account_id": send.account_id, "fields": {"messageId": send.message_id, "kind": send.kind.value}}
        delay = self._retry_base_s
        attempt = 0
        while True:
            if self._handler is None and self._handler_set is not None:
                await self._handler_set.wait()
            handler = self._handler
            assert handler is not None
            attempt += 1
            try:
                await handler(send)
            except SendRetryLater as exc:
                log.info("send waits: %s", exc, extra=extra)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt >= self._max_attempts:
                    log.error("send handler failed %d times, the send stays in the outbox (%s)", attempt,
                              type(exc).__name__, extra=extra)
                    self.counts["given_up"] += 1
                    return False
                log.warning("send handler failed (%s); retrying", type(exc).__name__, extra=extra)
            else:
                self.counts["handed_over"] += 1
                log.info("send handed over", extra=extra)
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)


def subscription_id(topic: str, connector_id: str) -> str:
    """``<topic>-<connectorId>`` as a Pub/Sub subscription id (letters, digits and ``-_.~+%``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in connector_id)
    return f"{topic}-{safe}"[:255]


class OutboxSubscription:
    """This connector's pull subscription on the outbox topic, feeding ``deliver`` on the event loop.

    The subscriber library runs the streaming pull on its own threads; each message is parsed there
    (a malformed or newer-schema one is acknowledged and dropped with a log line: the outbox keeps
    the send) and handed to the loop with ``call_soon_threadsafe``, then acknowledged. A lost
    message costs nothing but latency: the send is still in the outbox and comes by the catch-up.
    """

    def __init__(self, project: str, topic: str, connector_id: str, deliver: Callable[[OutboundSend], Any]) -> None:
        self.project = project
        self.topic = topic
        self.subscription = subscription_id(topic, connector_id)
        self._deliver = deliver
        self._subscriber: Any = None
        self._future: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.received = 0

    @property
    def path(self) -> str:
        return f"projects/{self.project}/subscriptions/{self.subscription}"

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            await asyncio.to_thread(self._open)
        except Exception as exc:
            raise OutboxError(f"outbox subscription {self.subscription}: {type(exc).__name__}") from exc
        log.info("outbox subscription open", extra={"fields": {"subscription": self.subscription}})

    def _open(self) -> None:
        from google.api_core import exceptions as gexc
        from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]
        from google.protobuf import duration_pb2

        self._subscriber = pubsub_v1.SubscriberClient()
        with contextlib.suppress(gexc.AlreadyExists):  # this connector id restarted: its subscription stays
            self._subscriber.create_subscription(request={
                "name": self.path, "topic": f"projects/{self.project}/topics/{self.topic}",
                "enable_message_ordering": True, "ack_deadline_seconds": ACK_DEADLINE_S,
                "expiration_policy": {"ttl": duration_pb2.Duration(seconds=SUBSCRIPTION_TTL_S)},
                "message_retention_duration": duration_pb2.Duration(seconds=SUBSCRIPTION_RETENTION_S),
            })
        self._future = self._subscriber.subscribe(self.path, self._on_message)

    def _on_message(self, message: Any) -> None:
        try:
            send = OutboundSend.from_json(message.data)
        except InvalidEventError as exc:
            log.warning("outbox message dropped: %s", exc,
                        extra={"fields": {"messageId": message.attributes.get("messageId", "")}})
            message.ack()
            return
        self.received += 1
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, send)
        message.ack()

    async def close(self, *, delete: bool = True) -> None:
        """Stop pulling and (``delete``) remove the subscription: a connector that starts under another
        id makes its own, and the catch-up covers what was still in this one."""
        if self._future is not None:
            self._future.cancel()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._future.result, 5.0)
        if self._subscriber is not None:
            subscriber = self._subscriber
            self._subscriber = None
            if delete:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(subscriber.delete_subscription, request={"subscription": self.path},
                                            timeout=5.0)
            with contextlib.suppress(Exception):
                await asyncio.to_thread(subscriber.close)
