"""Incoming messages, from the link's decrypted outcome to the ack: publish, make durable, confirm.

For every ``MessageDecrypted`` / ``MessageUndecryptable`` of an account, in this order:

1. **publish** its event (``message.received`` in the msgstore schema, or ``message.undecryptable``)
   on the ``messages`` topic, ordered by account;
2. once Pub/Sub **accepted** it, make the Signal state that opened it **durable**: a snapshot of the
   account at or after the store revision the message was handled at, written to the local cache
   and accepted by Pub/Sub (``SnapshotGate.persist_through``);
3. only then **ack** (the receipt, or the error ack): the ack makes WhatsApp forget the message.

Why both waits (docs/ARCHITECTURE.md, "Receive durability"): a crash before step 1 completes
leaves the message unacknowledged and the restored state older than its decrypt, so the
redelivery decrypts again. A crash after step 2 finds the message published, and the redelivery
is a duplicate (its key is spent in the restored state): acked with 487, nothing lost. The one
order that would lose it, a snapshot carrying the ratchet step becoming durable before the event
was accepted, is prevented by the gate: while an account has events submitted but not yet accepted,
its snapshots wait (:meth:`SnapshotGate.may_snapshot`).

What is published holds plaintext (``message``, ``text``, ``pushName``): never logged here, only
ids, reasons and counts. A message with nothing for a reader (a bare sender key, an app-state key
share, which carries key material) is not published but still made durable before its ack.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from connector.errors import PublishError
from connector.metrics import Counter, Histogram
from connector.protocol.events import (
    DecryptedMessage,
    DecryptFailure,
    DuplicateIgnored,
    FailureReason,
    MessageDecrypted,
    MessageUndecryptable,
    ReceivedMessage,
    RetryRequested,
)
from connector.protocol.wamessage import ContentKind
from connector.publisher import OrderedPublisher
from shared import events as shared_events
from shared.events import InvalidEventError, MessageKey

log = logging.getLogger(__name__)

#: The ``type`` slug of a ``message.received`` by what the message holds.
TYPE_BY_KIND: dict[ContentKind, str] = {
    ContentKind.TEXT: "text", ContentKind.EXTENDED_TEXT: "text", ContentKind.IMAGE: "image",
    ContentKind.VIDEO: "video", ContentKind.AUDIO: "audio", ContentKind.DOCUMENT: "document",
    ContentKind.STICKER: "sticker", ContentKind.LOCATION: "location", ContentKind.CONTACT: "contact",
    ContentKind.REACTION: "reaction", ContentKind.REVOKE: "revoke", ContentKind.EDIT: "edit",
    ContentKind.EPHEMERAL_SETTING: "protocol", ContentKind.PROTOCOL: "protocol", ContentKind.UNKNOWN: "unknown",
}
#: Kinds with nothing for a reader of the messages topic (and, for the key share, key material).
NOT_PUBLISHED = frozenset({ContentKind.SENDER_KEY_DISTRIBUTION, ContentKind.APP_STATE_KEY_SHARE})


class SnapshotGate(Protocol):
    """What the inbox needs from the snapshot side of the service."""

    def revision(self, account_id: str) -> int | None:
        """The account's auth-store revision now; None when the account is no longer held."""
        ...

    async def persist_through(self, account_id: str, revision: int) -> bool:
        """Wait until a snapshot at ``revision`` or later is cached and accepted; False if not in time."""
        ...

    def messages_settled(self, account_id: str) -> None:
        """No event of the account is waiting for Pub/Sub any more: a held-back snapshot may go."""
        ...


def received_event(account_id: str, message: DecryptedMessage, *, push_name: str | None = None
                   ) -> shared_events.MessageReceived:
    """The ``message.received`` event of a decrypted message (raises ``InvalidEventError``)."""
    incoming, where = message.incoming, message.addressing
    decoded = message.decoded
    text = decoded.text
    if text is not None and len(text) > shared_events.MAX_MESSAGE_TEXT_CHARS:
        text = text[:shared_events.MAX_MESSAGE_TEXT_CHARS]  # the full text stays in ``message``
    name = push_name if push_name is None or len(push_name) <= shared_events.MAX_PUSH_NAME_CHARS else None
    return shared_events.MessageReceived(
        account_id=account_id, key=MessageKey(where.chat, where.from_me, incoming.id, where.participant),
        message=decoded.json, chat=where.chat, sender=where.sender, timestamp=incoming.timestamp or 0,
        type=TYPE_BY_KIND.get(decoded.content.kind, "unknown"), text=text, push_name=name)


def undecryptable_event(account_id: str, event: MessageUndecryptable, reason: str | None = None
                        ) -> shared_events.MessageUndecryptable:
    failure = event.failure
    where = failure.addressing
    return shared_events.MessageUndecryptable(
        account_id=account_id, key=MessageKey(where.chat, where.from_me, failure.incoming.id, where.participant),
        chat=where.chat, sender=where.sender, timestamp=failure.incoming.timestamp or 0,
        reason=reason or failure.reason.value, retries=min(event.retries, shared_events.MAX_RETRY_RECEIPTS))


@dataclass
class InboxMetrics:
    outcomes: Counter
    undecryptable: Counter
    retries: Counter
    latency: Histogram


@dataclass
class _Account:
    in_flight: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class Inbox:
    """Publishes each account's incoming messages and acks them once safe (module docstring)."""

    def __init__(self, publisher: OrderedPublisher, gate: SnapshotGate, metrics: InboxMetrics,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._publisher = publisher
        self._gate = gate
        self._metrics = metrics
        self._clock = clock
        self._accounts: dict[str, _Account] = {}

    def in_flight(self, account_id: str) -> int:
        """Events of the account submitted and not yet accepted (its snapshots wait while > 0)."""
        entry = self._accounts.get(account_id)
        return 0 if entry is None else entry.in_flight

    def tasks(self) -> list[asyncio.Task[None]]:
        return [task for entry in self._accounts.values() for task in entry.tasks]

    def forget(self, account_id: str) -> None:
        self._accounts.pop(account_id, None)

    def noted(self, account_id: str, event: RetryRequested | DuplicateIgnored) -> None:
        if isinstance(event, RetryRequested):
            self._metrics.retries.inc(event.failure.reason.value)
            log.info("message did not decrypt: retry receipt sent", extra={"account_id": account_id, "fields": {
                "messageId": event.failure.incoming.id, "reason": event.failure.reason.value,
                "count": event.count, "error": event.failure.detail}})
        else:
            self._metrics.outcomes.inc("duplicate")
            log.info("duplicate message acked with 487", extra={"account_id": account_id,
                                                               "fields": {"messageId": event.message.id}})

    def received(self, account_id: str, event: ReceivedMessage, ack: Callable[[], Awaitable[bool]]) -> None:
        """Take one message: publish (unless nothing to publish), then durable, then ack."""
        started = self._clock()
        revision = self._gate.revision(account_id)
        if revision is None:
            return
        data = self._event_bytes(account_id, event)
        entry = self._accounts.setdefault(account_id, _Account())
        accepted: asyncio.Future[bool] | None = None
        if data is not None:
            payload, attributes = data
            accepted = self._publisher.submit(account_id, payload, attributes)
            entry.in_flight += 1
        task = asyncio.get_running_loop().create_task(
            self._settle(account_id, entry, event, accepted=accepted, revision=revision, ack=ack, started=started))
        entry.tasks.add(task)
        task.add_done_callback(entry.tasks.discard)

    def _event_bytes(self, account_id: str, event: ReceivedMessage) -> tuple[bytes, dict[str, str]] | None:
        built: shared_events.MessageReceived | shared_events.MessageUndecryptable
        if isinstance(event, MessageDecrypted):
            message = event.message
            if message.decoded.content.kind in NOT_PUBLISHED:
                return None
            try:
                built = received_event(account_id, message, push_name=message.incoming.push_name)
                return built.to_json(), built.attributes()
            except InvalidEventError as exc:
                # Too large or not representable: the owner still learns that a message came.
                log.warning("decrypted message cannot travel as message.received; published as undecryptable",
                            extra={"account_id": account_id, "fields": {"messageId": message.incoming.id,
                                                                        "error": str(exc)[:120]}})
                failed = MessageUndecryptable(_as_failure(message), retries=0)
                built = undecryptable_event(account_id, failed, reason="invalid_event")
                return built.to_json(), built.attributes()
        built = undecryptable_event(account_id, event)
        return built.to_json(), built.attributes()

    async def _settle(self, account_id: str, entry: _Account, event: ReceivedMessage, *,
                      accepted: asyncio.Future[bool] | None, revision: int,
                      ack: Callable[[], Awaitable[bool]], started: float) -> None:
        outcome = "acked"
        if accepted is not None:
            try:
                await accepted
            except (PublishError, asyncio.CancelledError):
                # Not acknowledged: WhatsApp delivers it again on the next connection.
                self._metrics.outcomes.inc("not_published")
                return
            finally:
                entry.in_flight -= 1
                if entry.in_flight == 0:
                    self._gate.messages_settled(account_id)
            self._metrics.latency.observe(self._clock() - started)
        else:
            outcome = "acked_unpublished"
        if isinstance(event, MessageUndecryptable):
            self._metrics.undecryptable.inc(event.failure.reason.value)
            log.warning("message undecryptable after its retries", extra={"account_id": account_id, "fields": {
                "messageId": event.failure.incoming.id, "reason": event.failure.reason.value,
                "retries": event.retries}})
        while not await self._gate.persist_through(account_id, revision):
            # Not durable yet (Pub/Sub slow or down): no ack until it is. Given up only when the account
            # is no longer held here: WhatsApp then redelivers it to the next holder.
            if self._gate.revision(account_id) is None:
                self._metrics.outcomes.inc("not_durable")
                return
            self._metrics.outcomes.inc("durability_wait")
        try:
            sent = await ack()
        except Exception as exc:
            sent = False
            log.info("message ack failed", extra={"account_id": account_id,
                                                  "fields": {"error": type(exc).__name__}})
        self._metrics.outcomes.inc(outcome if sent else "ack_failed")


def _as_failure(message: DecryptedMessage) -> DecryptFailure:
    return DecryptFailure(message.incoming, FailureReason.INVALID, "InvalidEventError", message.addressing)
