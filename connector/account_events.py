"""What the supervisors report, published: connection updates, pairing events, incoming messages.

:class:`AccountEvents` is the :class:`~connector.supervisor.SupervisorHooks` of every held account.
Connection updates go out in batches (:mod:`connector.reports`); pairing events one per message on
the connection-events topic; each incoming message becomes a message event on the messages topic
and is acknowledged to WhatsApp only after Pub/Sub accepted it (at-least-once: an unacknowledged
message is redelivered on the next login).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from connector.cache import StateCache
from connector.errors import CacheError, PublishError
from connector.metrics import Counter
from connector.protocol.close import CloseReason
from connector.protocol.events import IncomingMessage
from connector.protocol.send_status import SendStatus
from connector.publisher import OrderedPublisher
from connector.reports import ConnectionReports
from connector.sender import Sender
from connector.slots import AccountSlot
from connector.snapshot_writer import SnapshotWriter
from connector.states import AccountState
from shared.events import (
    ConnectionState,
    ConnectionUpdate,
    MessageKey,
    MessageUndecryptable,
    PairingCode,
    PairingFailed,
    PairingQr,
    PairingSuccess,
)

log = logging.getLogger(__name__)

PAIRING_CODE_TTL_S = 180.0
QR_TTL_S = 20.0


def message_event(account_id: str, message: IncomingMessage) -> MessageUndecryptable:
    """The event of an incoming stanza. The Signal layer is not wired here yet: a message it cannot read
    is published as ``message.undecryptable`` (never as ciphertext) and acknowledged like any other;
    decrypting replaces this with ``message.received`` (``shared.events.MessageReceived``)."""
    user, _, server = message.sender.partition("@")
    chat = f"{user.split(':', 1)[0]}@{server}"  # a 1:1 chat is the user, not the sending device
    return MessageUndecryptable(account_id=account_id, key=MessageKey(chat, False, message.id, message.participant),
                                chat=chat, sender=message.participant or chat, timestamp=message.timestamp or 0,
                                reason="decryption_unavailable")


class AccountEvents:
    """Implements :class:`~connector.supervisor.SupervisorHooks` for the accounts in ``accounts``."""

    def __init__(self, connector_id: str, accounts: Mapping[str, AccountSlot], *, events: OrderedPublisher,
                 messages: OrderedPublisher, reports: ConnectionReports, writer: SnapshotWriter,
                 cache: StateCache | None, reconnects: Counter, message_outcomes: Counter,
                 sender: Sender | None = None) -> None:
        """``sender``: the send path (:mod:`connector.sender`), told of send statuses and lost sockets."""
        self._send_path = sender
        self._connector_id = connector_id
        self._accounts = accounts
        self._events = events
        self._messages = messages
        self._reports = reports
        self._writer = writer
        self._cache = cache
        self._reconnects = reconnects
        self._message_outcomes = message_outcomes

    def report(self, account_id: str, state: ConnectionState, reason: str | None, code: int | None,
               attempt: int) -> None:
        slot = self._accounts.get(account_id)
        if slot is None:
            return
        if state is ConnectionState.NEEDS_PAIRING and self._cache is not None:
            # These keys were unlinked by the phone: never bring them back from the cache.
            with contextlib.suppress(CacheError):
                self._cache.delete(account_id)
        if state is ConnectionState.OPEN:
            log.info("connected", extra={"account_id": account_id, "fields": {"generation": slot.generation}})
        self.publish_update(account_id, slot.generation, state, reason, code=code, attempt=attempt)

    def publish_update(self, account_id: str, generation: int, state: ConnectionState, reason: str | None,
                       *, code: int | None = None, attempt: int = 0) -> None:
        event = ConnectionUpdate(account_id=account_id, connector_id=self._connector_id,
                                 generation=generation, at=datetime.now(UTC), state=state, reason=reason,
                                 code=code, attempt=attempt)
        self._reports.add(event)

    def _sender(self, account_id: str) -> tuple[str, int]:
        """Who sends an account's pairing events: this connector, under the generation it holds the account."""
        slot = self._accounts.get(account_id)
        return self._connector_id, slot.generation if slot is not None else 0

    def pairing_code(self, account_id: str, code: str) -> None:
        log.info("pairing code ready", extra={"account_id": account_id})
        event = PairingCode(account_id, code.replace("-", "").upper(),
                            datetime.now(UTC) + timedelta(seconds=PAIRING_CODE_TTL_S), *self._sender(account_id))
        self._events.submit(account_id, event.to_json(), event.attributes())

    def pairing_qr(self, account_id: str, qr: str) -> None:
        log.info("pairing QR ready", extra={"account_id": account_id})
        event = PairingQr(account_id, qr, datetime.now(UTC) + timedelta(seconds=QR_TTL_S), *self._sender(account_id))
        self._events.submit(account_id, event.to_json(), event.attributes())

    def paired(self, account_id: str, jid: str) -> None:
        log.info("paired", extra={"account_id": account_id})
        event = PairingSuccess(account_id, jid, *self._sender(account_id))
        self._events.submit(account_id, event.to_json(), event.attributes())

    def pairing_failed(self, account_id: str, reason: str) -> None:
        log.warning("pairing failed", extra={"account_id": account_id, "fields": {"reason": reason}})
        slug = "expired" if reason == CloseReason.PAIRING_EXPIRED else reason
        event = PairingFailed(account_id, slug, *self._sender(account_id))
        self._events.submit(account_id, event.to_json(), event.attributes())

    def message(self, account_id: str, message: IncomingMessage, ack: Callable[[], Awaitable[bool]]) -> None:
        slot = self._accounts.get(account_id)
        if slot is None:
            return
        event = message_event(account_id, message)
        accepted = self._messages.submit(account_id, event.to_json(), event.attributes())

        async def ack_when_accepted() -> None:
            try:
                await accepted
            except (PublishError, asyncio.CancelledError):
                # Not acknowledged: WhatsApp delivers it again on the next connection.
                self._message_outcomes.inc("not_published")
                return
            try:
                await ack()
                self._message_outcomes.inc("acked")
            except Exception as exc:
                self._message_outcomes.inc("ack_failed")
                log.info("message published but not acknowledged (socket gone); it will be redelivered",
                         extra={"account_id": account_id, "fields": {"error": type(exc).__name__}})

        task = asyncio.get_running_loop().create_task(ack_when_accepted())
        slot.message_tasks.add(task)
        task.add_done_callback(slot.message_tasks.discard)

    def state_changed(self, account_id: str, old: AccountState, new: AccountState) -> None:
        log.debug("state", extra={"account_id": account_id, "fields": {"from": old.value, "to": new.value}})

    def reconnecting(self, account_id: str, reason: str) -> None:
        # The supervisor logs the reconnect with its reason and delay; count it here.
        self._reconnects.inc(reason)

    async def persist_now(self, account_id: str) -> bool:
        return await self._writer.persist_now(account_id)

    def send_status(self, account_id: str, status: SendStatus) -> None:
        if self._send_path is not None:
            self._send_path.send_status(account_id, status)

    def socket_ended(self, account_id: str) -> None:
        if self._send_path is not None:
            self._send_path.socket_ended(account_id)
