"""The send path of the connector: an accepted send (``OutboundSend``) through the account's socket, and
what became of it published as ``message.status``.

::

    OutboxDispatcher ─► Sender.handle(send) ─► AccountSupervisor.send ─► link ─► protocol client
                                                                  (connector.protocol.outbound)
    SendStatus events ─► Sender.send_status ─► message.status on the messages topic ─► the store

- :meth:`Sender.handle` is the outbox dispatcher's handler: it builds the WhatsApp ``Message`` (text,
  reply, reaction), starts the send on the live socket and returns once its ``sent`` or ``failed``
  status was accepted by Pub/Sub. No socket logged in, or the socket lost before the server's ack:
  :class:`~connector.errors.SendRetryLater`, and the dispatcher tries again after its backoff with
  the same message id (WhatsApp, and the simulator, keep one message per id: a send whose ack was
  lost shows once).
- ``delivered`` and ``read`` come later, from receipts; they are published as they come.
- The Signal state that produced a send's ciphertext is persisted before the ciphertext leaves: the
  client reports it as a critical change, which the link hands to the supervisor's before-send hook
  (the snapshot cached and accepted by Pub/Sub) before writing the bytes.

Plaintext never reaches a log here: log lines carry the account and the message id.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from connector.errors import SendRetryLater
from connector.protocol.binary import Jid
from connector.protocol.errors import JidError, MessageFormatError
from connector.protocol.outbound import SendRequest
from connector.protocol.send_status import SendStatus, Status
from connector.protocol.wamessage import MessageRef
from connector.protocol.wamessage_encode import (
    ReplyTarget,
    message_from_json,
    reaction_message,
    reply_message,
    text_message,
)
from connector.publisher import OrderedPublisher
from connector.slots import AccountSlot
from shared.events import MessageStatus, MessageStatusUpdate, OutboundSend, SendKind

log = logging.getLogger(__name__)

#: From the send started to its server ack (the protocol client fails it itself after its iq timeout).
OUTCOME_TIMEOUT_S = 120.0
#: The chats of recent sends, for the statuses that come later (receipts name only the message id).
REMEMBER_CHATS = 20_000

_STATUS = {Status.SENT: MessageStatus.SENT, Status.DELIVERED: MessageStatus.DELIVERED,
           Status.READ: MessageStatus.READ, Status.FAILED: MessageStatus.FAILED}


def send_request(send: OutboundSend, now_ms: int) -> SendRequest:
    """The protocol core's request for ``send``; raises ``MessageFormatError`` when it cannot be built."""
    try:
        chat = Jid.parse(send.chat)
    except JidError as exc:
        raise MessageFormatError(f"bad chat JID: {exc}") from None
    if send.kind is SendKind.REACTION:
        assert send.react is not None
        key = send.react.key
        target = MessageRef(id=key.id, remote_jid=key.remote_jid, from_me=key.from_me, participant=key.participant)
        return SendRequest(send.message_id, chat, reaction_message(target, send.react.emoji, now_ms))
    assert send.text is not None
    if send.reply_to is None:
        return SendRequest(send.message_id, chat, text_message(send.text))
    quoted = send.reply_to
    message = message_from_json(quoted.message) if quoted.message is not None else None
    return SendRequest(send.message_id, chat, reply_message(
        send.text, ReplyTarget(quoted.id, quoted.participant, message=message)))


def _extra(account_id: str, **values: object) -> dict[str, object]:
    return {"account_id": account_id, "fields": values}


class Sender:
    """Runs sends for the accounts in ``accounts`` and publishes their statuses on ``messages``."""

    def __init__(self, accounts: Mapping[str, AccountSlot], messages: OrderedPublisher, *,
                 outcome_timeout_s: float = OUTCOME_TIMEOUT_S, wall_clock: Callable[[], float] = time.time) -> None:
        self._accounts = accounts
        self._messages = messages
        self._outcome_timeout_s = outcome_timeout_s
        self._wall_clock = wall_clock
        self._waiting: dict[tuple[str, str], asyncio.Future[asyncio.Future[bool]]] = {}
        self._chats: collections.OrderedDict[tuple[str, str], str] = collections.OrderedDict()
        self.counts: collections.Counter[str] = collections.Counter()

    async def handle(self, send: OutboundSend) -> None:
        """The outbox dispatcher's handler (module docstring)."""
        key = (send.account_id, send.message_id)
        slot = self._accounts.get(send.account_id)
        if slot is None:
            raise SendRetryLater("account not held here")
        try:
            request = send_request(send, int(self._wall_clock() * 1000))
        except MessageFormatError as exc:
            log.warning("send cannot be built; failed", extra=_extra(send.account_id, messageId=send.message_id,
                                                                     error=str(exc)[:200]))
            await self._publish(send.account_id, send.message_id, send.chat, MessageStatus.FAILED, "invalid_message")
            return
        self._remember_chat(key, send.chat)
        outcome: asyncio.Future[asyncio.Future[bool]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = outcome
        try:
            try:
                started = await slot.supervisor.send(request)
            except MessageFormatError as exc:
                log.warning("send refused by the protocol core; failed", extra=_extra(
                    send.account_id, messageId=send.message_id, error=str(exc)[:200]))
                await self._publish(send.account_id, send.message_id, send.chat, MessageStatus.FAILED,
                                    "invalid_message")
                return
            if not started:
                raise SendRetryLater("socket not logged in")
            self.counts["started"] += 1
            log.info("send started", extra=_extra(send.account_id, messageId=send.message_id, kind=send.kind.value))
            try:
                accepted = await asyncio.wait_for(asyncio.shield(outcome), self._outcome_timeout_s)
            except TimeoutError:
                raise SendRetryLater("no outcome from the server") from None
            if not await accepted:
                raise SendRetryLater("status not accepted by Pub/Sub")
        finally:
            if self._waiting.get(key) is outcome:
                del self._waiting[key]

    def send_status(self, account_id: str, status: SendStatus) -> None:
        """A ``SendStatus`` from the account's socket: publish it; ``sent``/``failed`` settle the send."""
        key = (account_id, status.message_id)
        chat = self._chats.get(key)
        if chat is None:
            return  # a send of an earlier process (its statuses come again when WhatsApp resends receipts)
        self.counts[status.status.label] += 1
        log.info("send status", extra=_extra(account_id, messageId=status.message_id, status=status.status.label,
                                             reason=status.reason))
        reason = status.reason if status.status is Status.FAILED else None
        accepted = self._submit(account_id, status.message_id, chat, _STATUS[status.status], reason)
        outcome = self._waiting.get(key)
        if outcome is not None and not outcome.done() and status.status in (Status.SENT, Status.FAILED):
            outcome.set_result(accepted)

    def socket_ended(self, account_id: str) -> None:
        """Sends of ``account_id`` waiting for their server ack will not get it on this socket."""
        for (account, _), outcome in list(self._waiting.items()):
            if account == account_id and not outcome.done():
                outcome.set_exception(SendRetryLater("socket lost before the server's ack"))

    # --- internals -----------------------------------------------------------------------------

    async def _publish(self, account_id: str, message_id: str, chat: str, status: MessageStatus,
                       reason: str | None) -> None:
        if not await self._submit(account_id, message_id, chat, status, reason):
            raise SendRetryLater("status not accepted by Pub/Sub")

    def _submit(self, account_id: str, message_id: str, chat: str, status: MessageStatus,
                reason: str | None) -> asyncio.Future[bool]:
        event = MessageStatusUpdate(account_id=account_id, message_id=message_id, chat=chat, status=status,
                                    at=datetime.fromtimestamp(self._wall_clock(), UTC), reason=reason)
        return self._messages.submit(account_id, event.to_json(), event.attributes())

    def _remember_chat(self, key: tuple[str, str], chat: str) -> None:
        self._chats[key] = chat
        self._chats.move_to_end(key)
        while len(self._chats) > REMEMBER_CHATS:
            self._chats.popitem(last=False)
