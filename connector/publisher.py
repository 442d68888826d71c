"""Publishing to Pub/Sub: ordered per account, retried until accepted, bounded in memory.

- :class:`MessageTransport` is the one interface to Pub/Sub; :class:`PubSubTransport` implements
  it over ``google-cloud-pubsub``'s Publish call, batching messages of many ordering keys into one
  call, and translates the library's errors into :class:`~connector.errors.PublishError`.
- :class:`OrderedPublisher` keeps one FIFO per ordering key (the account id) and publishes its
  head, one at a time, retrying with jittered backoff until Pub/Sub accepts it. So a 30 s outage
  delays messages but loses none, and an account's messages never overtake each other.
  With ``newest_only`` (snapshots) a key's queue holds at most one waiting item and a newer one
  replaces it: a snapshot is the whole state, so only the newest matters, and memory stays at two
  snapshots per account however long the outage lasts.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector.backoff import Backoff
from connector.errors import PublishError

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0
#: Messages in one Publish call (Pub/Sub allows 1,000) and their bytes (the request limit is 10 MB).
MAX_BATCH = 100
MAX_BATCH_BYTES = 9_000_000
#: Publish calls out at once per transport.
MAX_CONCURRENT_CALLS = 4
RETRY_BASE_S = 0.25
RETRY_CAP_S = 4.0
MAX_QUEUED_PER_KEY = 10_000


class MessageTransport(Protocol):
    """Sends one message to a topic; returns the server's message id or raises PublishError."""

    async def publish(self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> str:
        ...

    async def close(self) -> None:
        ...


class PubSubTransport:
    """:class:`MessageTransport` over Pub/Sub's Publish call, batching across ordering keys.

    Everything published while the loop was busy (up to ``max_batch`` messages, ``MAX_BATCH_BYTES``)
    goes out in one Publish call: messages of different accounts share a call, each with its own
    ordering key. Ordering holds because :class:`OrderedPublisher` never has two messages of one key
    in flight. (The client library's own publisher batches per ordering key only: 100 accounts would
    cost 100 calls.) Library errors become :class:`PublishError`.
    """

    def __init__(self, project_id: str, timeout_s: float = PUBLISH_TIMEOUT_S, max_batch: int = MAX_BATCH,
                 max_calls: int = MAX_CONCURRENT_CALLS) -> None:
        self._project = project_id
        self._timeout_s = timeout_s
        self._max_batch = max_batch
        self._calls = ThreadPoolExecutor(max_calls, thread_name_prefix="pubsub-publish")
        # The client library takes ~0.6 s to import: it loads on a publish thread while the connector
        # starts (its first connectorSync needs none of it), and the first call waits for it.
        self._library: Future[_Library] = self._calls.submit(_load_library, timeout_s)
        self._slots = asyncio.Semaphore(max_calls)
        self._waiting: dict[str, list[tuple[_Message, asyncio.Future[str]]]] = {}
        self._senders: set[asyncio.Task[None]] = set()

    def topic_path(self, topic: str) -> str:
        return f"projects/{self._project}/topics/{topic}"

    async def publish(self, topic: str, data: bytes, attributes: Mapping[str, str], ordering_key: str) -> str:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[str] = loop.create_future()
        message = _Message(data, dict(attributes), ordering_key)
        waiting = self._waiting.setdefault(topic, [])
        waiting.append((message, accepted))
        if len(waiting) == 1:
            # Sent from the next loop iteration on: whatever else is published meanwhile joins the call.
            task = loop.create_task(self._send(topic), name=f"publish:{topic}")
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(accepted), self._timeout_s + 2.0)
        except TimeoutError as exc:
            accepted.cancel()  # not sent any more if it is still waiting
            raise PublishError(f"publish to {topic} timed out") from exc

    async def _send(self, topic: str) -> None:
        async with self._slots:
            batch = self._take(topic)
            if not batch:
                return
            messages = [message for message, _ in batch]
            try:
                response = await asyncio.get_running_loop().run_in_executor(
                    self._calls, self._publish_call, self.topic_path(topic), messages)
                ids = list(response.message_ids)
                if len(ids) != len(batch):
                    raise PublishError(f"publish to {topic}: {len(ids)} ids for {len(batch)} messages")
            except Exception as exc:
                error = exc if isinstance(exc, PublishError) else PublishError(
                    f"publish to {topic} failed: {type(exc).__name__}")
                for _, accepted in batch:
                    if not accepted.done():
                        accepted.set_exception(error)
                return
            for (_, accepted), message_id in zip(batch, ids, strict=True):
                if not accepted.done():
                    accepted.set_result(str(message_id))
        if self._waiting.get(topic):
            # More arrived while this call was out (or the batch was full): send them too.
            task = asyncio.get_running_loop().create_task(self._send(topic), name=f"publish:{topic}")
            self._senders.add(task)
            task.add_done_callback(self._senders.discard)

    def _take(self, topic: str) -> list[tuple[_Message, asyncio.Future[str]]]:
        waiting = self._waiting.get(topic, [])
        batch: list[tuple[_Message, asyncio.Future[str]]] = []
        size = 0
        while waiting and len(batch) < self._max_batch:
            message, accepted = waiting[0]
            message_size = len(message.data) + sum(len(k) + len(v) for k, v in message.attributes.items()) + 64
            if batch and size + message_size > MAX_BATCH_BYTES:
                break
            waiting.pop(0)
            if accepted.done():  # its publisher gave up waiting
                continue
            batch.append((message, accepted))
            size += message_size
        if not waiting:
            self._waiting.pop(topic, None)
        return batch

    def _publish_call(self, topic_path: str, messages: list[_Message]) -> Any:
        library = self._library.result()
        wire = [library.message_type(data=m.data, attributes=m.attributes, ordering_key=m.ordering_key)
                for m in messages]
        return library.publish(library.client, topic=topic_path, messages=wire, retry=library.retry,
                               timeout=self._timeout_s)

    async def close(self) -> None:
        for task in list(self._senders):
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        for waiting in self._waiting.values():
            for _, accepted in waiting:
                if not accepted.done():
                    accepted.set_exception(PublishError("transport closed"))
        self._waiting.clear()
        await asyncio.to_thread(self._calls.shutdown, wait=True, cancel_futures=True)


@dataclass(frozen=True, slots=True)
class _Message:
    data: bytes
    attributes: dict[str, str]
    ordering_key: str


@dataclass(frozen=True, slots=True)
class _Library:
    """What the transport uses of google-cloud-pubsub, loaded once."""

    client: Any
    publish: Any
    message_type: Any
    retry: Any


def _load_library(timeout_s: float) -> _Library:
    # Imported by name: google-cloud-pubsub ships no type information, and importing it only here keeps
    # the rest of the connector importable (and testable) without it.
    try:
        pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")
        api_retry: Any = importlib.import_module("google.api_core.retry")
        return _Library(
            # The library's wrapper is kept for its channel set-up (the emulator host, credentials);
            # calls go through its generated client's publish, called on the wrapper (the wrapper
            # overrides ``publish`` with its own batching; its ``api`` attribute is deprecated).
            client=pubsub_v1.PublisherClient(),
            publish=importlib.import_module("google.pubsub_v1.services.publisher.client").PublisherClient.publish,
            message_type=importlib.import_module("google.pubsub_v1.types").PubsubMessage,
            # Kept short: OrderedPublisher retries forever above it.
            retry=api_retry.Retry(initial=0.1, maximum=1.0, multiplier=2.0, timeout=timeout_s),
        )
    except Exception as exc:
        log.error("Pub/Sub client could not be set up; nothing can be published",
                  extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}})
        raise


@dataclass
class Outgoing:
    """One message waiting for Pub/Sub."""

    key: str
    data: bytes
    attributes: Mapping[str, str]
    since: float
    accepted: asyncio.Future[bool] = field(repr=False)


class OrderedPublisher:
    """Per-key FIFO publishing with retries; see the module docstring."""

    def __init__(
        self,
        transport: MessageTransport,
        topic: str,
        *,
        newest_only: bool = False,
        on_accepted: Callable[[Outgoing, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
    ) -> None:
        self.transport = transport
        self.topic = topic
        self.newest_only = newest_only
        self._on_accepted = on_accepted
        self._clock = clock
        self._retry_base_s = retry_base_s
        self._retry_cap_s = retry_cap_s
        self._queues: dict[str, deque[Outgoing]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._inflight: dict[str, Outgoing] = {}
        self._latest: dict[str, asyncio.Future[bool]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.failures = 0

    def submit(self, key: str, data: bytes, attributes: Mapping[str, str],
               since: float | None = None) -> asyncio.Future[bool]:
        """Queue a message; the future becomes True once Pub/Sub accepted it, or False when a newer
        message replaced it (``newest_only``)."""
        loop = asyncio.get_running_loop()
        item = Outgoing(key, data, dict(attributes), self._clock() if since is None else since,
                        loop.create_future())
        queue = self._queues.setdefault(key, deque())
        if self.newest_only:
            while queue:
                older = queue.popleft()
                # The replacement inherits the older one's start time: latency counts from the
                # first change that was waiting, not the last.
                item.since = min(item.since, older.since)
                if not older.accepted.done():
                    older.accepted.set_result(False)
        elif len(queue) >= MAX_QUEUED_PER_KEY:
            item.accepted.set_exception(PublishError(f"{self.topic}: queue for one key is full"))
            return item.accepted
        queue.append(item)
        self._latest[key] = item.accepted
        self._idle.clear()
        if key not in self._workers:
            self._workers[key] = loop.create_task(self._drain(key), name=f"publish:{self.topic}:{key}")
        return item.accepted

    def pending(self) -> int:
        """Messages not yet accepted (waiting or in flight)."""
        return sum(len(q) for q in self._queues.values()) + len(self._inflight)

    async def settled(self, key: str, timeout_s: float) -> bool:
        """Wait until everything queued for ``key`` so far was accepted (or replaced by something
        newer that was); False if ``timeout_s`` passed first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            latest = self._latest.get(key)
            if latest is None or (latest.done() and not latest.cancelled() and latest.exception() is None
                                  and latest.result()):
                return True
            left = deadline - loop.time()
            if left <= 0:
                return False
            try:
                await asyncio.wait_for(asyncio.shield(latest), left)
            except TimeoutError:
                return False
            except (asyncio.CancelledError, PublishError):
                return False

    def pending_keys(self) -> set[str]:
        return set(self._workers)

    async def drained(self, timeout_s: float | None = None) -> bool:
        """Wait until everything queued has been accepted; False if ``timeout_s`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Stop retrying; whatever was not accepted is dropped (its futures are cancelled)."""
        unaccepted = [*self._inflight.values(), *(i for q in self._queues.values() for i in q)]
        workers = list(self._workers.values())
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for item in unaccepted:
            item.accepted.cancel()
        self._queues.clear()
        self._inflight.clear()
        self._workers.clear()
        self._idle.set()

    async def _drain(self, key: str) -> None:
        queue = self._queues[key]
        backoff = Backoff(base_s=self._retry_base_s, cap_s=self._retry_cap_s)
        try:
            while queue:
                item = self._inflight[key] = queue.popleft()
                try:
                    await self.transport.publish(self.topic, item.data, item.attributes, key)
                except Exception as exc:  # PublishError, or a transport bug: the worker must live on
                    self.failures += 1
                    delay = max(self._retry_base_s, backoff.next_delay_s())
                    log.warning(
                        "publish failed; will retry",
                        extra={"account_id": key, "fields": {"topic": self.topic, "error": str(exc),
                                                             "retryInS": round(delay, 2)}},
                    )
                    await asyncio.sleep(delay)
                    del self._inflight[key]
                    if self.newest_only and queue:
                        # A newer snapshot arrived while this one was failing: it supersedes it.
                        queue[0].since = min(queue[0].since, item.since)
                        if not item.accepted.done():
                            item.accepted.set_result(False)
                    else:
                        queue.appendleft(item)
                    continue
                del self._inflight[key]
                backoff.reset()
                if not item.accepted.done():
                    item.accepted.set_result(True)
                if self._on_accepted is not None:
                    self._on_accepted(item, self._clock() - item.since)
        finally:
            self._inflight.pop(key, None)
            if not queue:
                self._queues.pop(key, None)
                latest = self._latest.get(key)
                if latest is not None and latest.done():
                    del self._latest[key]
            self._workers.pop(key, None)
            if not self._workers:
                self._idle.set()
