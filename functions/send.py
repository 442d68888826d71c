"""``sendMessage``: accept a send into the durable outbox, and hand the outbox to connectors.

Accepting (:meth:`SendService.send`) fixes the WhatsApp message id, then writes in one transaction
(:meth:`functions.messages.MessageStore.transact`) the message as ``pending`` in the owner's store,
its chat, and the outbox entry ``accounts/{id}/outbox/{messageId}``. With a ``clientMessageId`` the
id is derived from it (:func:`shared.message_ids.client_message_id`), so a repeat reads the stored
message in that transaction and is the same send: same id, no second entry. A repeat with other
content is refused (``ALREADY_EXISTS``): one id cannot name two messages.

Pickup: after the commit the send is published on the ``outbox`` topic (ordering key the account),
where the connector holding the account takes it within a second (``connector/outbox.py``). That
publish is an optimisation, not the record: if it fails, or no connector holds the account, or the
holder crashes before the server acknowledged the send, the outbox entry is still there and
connectorSync hands it out (:func:`pending_for_sync`): every pending send of the accounts a call
claims, and the sends of held accounts accepted since shortly before the connector's previous
call. The entry leaves the outbox when a ``message.status`` says sent or failed; cleanup fails the
sends that waited longer than ``KEEPER_OUTBOX_TTL_S`` (reason ``expired``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from functions.accounts import Caller
from functions.errors import AlreadyExistsError, FailedPreconditionError, NotFoundError, PermissionDeniedError
from functions.message_input import SendInput
from functions.messages import NOTHING, Doc, MessageStore, MessageWrite, chat_with, plan_status
from functions.model import AccountStatus, Clock
from functions.stores import AccountStore
from shared.events import (
    MessageKey,
    MessageStatus,
    MessageStatusUpdate,
    OutboundSend,
    QuotedMessage,
    Reaction,
    SendKind,
)
from shared.message_ids import MESSAGE_ID_RANDOM_BYTES, client_message_id, new_message_id

_log = logging.getLogger(__name__)

#: Statuses of a linked account a send may wait on (it goes out once the account is connected).
SENDABLE = frozenset({AccountStatus.CONNECTING, AccountStatus.CONNECTED, AccountStatus.RECONNECTING,
                      AccountStatus.STOPPED, AccountStatus.REPLACED})
DEFAULT_OUTBOX_TTL_S = 86400.0


class OutboxPublisher(Protocol):
    def publish(self, send: OutboundSend) -> None:
        """Publish on the outbox topic (ordering key: the account); raise when not accepted."""
        ...


def user_jid(device_jid: str) -> str:
    """``4070...:5@s.whatsapp.net`` -> ``4070...@s.whatsapp.net``."""
    user, _, server = device_jid.partition("@")
    return f"{user.split(':', 1)[0]}@{server}"


def request_hash(request: SendInput, chat: str) -> str:
    """What a repeated ``clientMessageId`` must match to be the same send."""
    canonical = {"to": chat, "text": request.text, "replyTo": request.reply_to,
                 "react": [request.react.message_id, request.react.emoji] if request.react else None}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def message_json(send: OutboundSend) -> Doc:
    """The stored ``message`` of an outgoing send, in the protobuf JSON shape incoming ones have (the
    connector builds the protobuf it encrypts from the send's fields)."""
    if send.kind is SendKind.REACTION:
        assert send.react is not None
        key = {k: v for k, v in send.react.key.to_dict().items() if v is not None}
        return {"reactionMessage": {"key": key, "text": send.react.emoji}}
    if send.reply_to is None:
        return {"conversation": send.text}
    context: Doc = {"stanzaId": send.reply_to.id, "participant": send.reply_to.participant}
    if send.reply_to.message is not None:
        context["quotedMessage"] = send.reply_to.message
    return {"extendedTextMessage": {"text": send.text, "contextInfo": context}}


def _stored_type(send: OutboundSend) -> str:
    if send.kind is SendKind.REACTION:
        return "reaction"
    return "extended_text" if send.reply_to is not None else "text"


@dataclass
class _Seen:
    current: Doc | None = None


class SendService:
    def __init__(self, accounts: AccountStore, store: MessageStore, publisher: OutboxPublisher | None,
                 clock: Clock, *, random_bytes: Callable[[int], bytes] = secrets.token_bytes,
                 outbox_ttl_s: float = DEFAULT_OUTBOX_TTL_S) -> None:
        self._accounts = accounts
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._random = random_bytes
        self._outbox_ttl = timedelta(seconds=outbox_ttl_s)

    def send(self, caller: Caller, request: SendInput) -> dict[str, Any]:
        account = self._accounts.get(request.account_id)
        if account is None or (account.owner_uid != caller.uid and account.status is AccountStatus.REMOVED):
            raise NotFoundError(f"account {request.account_id} does not exist", {"accountId": request.account_id})
        if account.owner_uid != caller.uid:
            raise PermissionDeniedError(f"account {request.account_id} belongs to another user",
                                        {"accountId": request.account_id})
        if account.status not in SENDABLE or account.linked_jid is None:
            raise FailedPreconditionError(
                f"account {request.account_id} cannot send while {account.status.value}: it sends once linked "
                "and served", {"accountId": request.account_id, "status": account.status.value})
        now = self._clock()
        own = user_jid(account.linked_jid)
        if request.client_message_id is not None:
            message_id = client_message_id(request.account_id, request.client_message_id)
        else:
            message_id = new_message_id(int(now.timestamp()), own.split("@", 1)[0],
                                        self._random(MESSAGE_ID_RANDOM_BYTES))
        send = OutboundSend(account_id=request.account_id, message_id=message_id, chat=request.chat,
                            kind=SendKind.REACTION if request.react else SendKind.TEXT, accepted_at=now,
                            text=request.text, reply_to=self._quoted(request),
                            react=self._reaction(request))
        fingerprint = request_hash(request, request.chat)
        seen = _Seen()

        def plan(current: Doc | None, chat: Doc | None) -> MessageWrite:
            seen.current = current
            if current is not None:
                return NOTHING
            doc: Doc = {
                "key": MessageKey(request.chat, True, message_id).to_dict(), "chat": request.chat, "sender": own,
                "fromMe": True, "timestamp": now, "type": _stored_type(send), "text": send.text,
                "message": message_json(send), "pushName": None, "status": MessageStatus.PENDING.value,
                "statusAt": now, "statusReason": None, "receipts": {}, "requestHash": fingerprint,
                "clientMessageId": request.client_message_id, "storedAt": now, "updatedAt": now,
            }
            return MessageWrite(message=doc, chat=chat_with(chat, request.chat, message_id, doc, now,
                                                            count_unread=False), outbox=send)

        written = self._store.transact(request.account_id, message_id, request.chat, plan)
        if written.outbox is None:
            current = seen.current or {}
            if current.get("requestHash") != fingerprint:
                raise AlreadyExistsError("clientMessageId was already used for a different message",
                                         {"field": "clientMessageId"})
            _log.info("account %s: send %s repeated (clientMessageId), same send", request.account_id, message_id)
            return {"messageId": message_id, "status": current.get("status") or MessageStatus.PENDING.value}
        _log.info("account %s: send %s accepted (%s)", request.account_id, message_id, send.kind.value)
        self._publish(send)
        return {"messageId": message_id, "status": MessageStatus.PENDING.value}

    def _publish(self, send: OutboundSend) -> None:
        if self._publisher is None:
            return
        try:
            self._publisher.publish(send)
        except Exception as exc:  # the outbox entry stands; connectorSync hands it out instead
            _log.warning("account %s: send %s not published to the outbox topic (%s); the connector picks it "
                         "up on its next sync", send.account_id, send.message_id, type(exc).__name__)

    def _target(self, request: SendInput, message_id: str, field: str) -> Doc:
        doc = self._store.get_message(request.account_id, message_id)
        if doc is None or doc.get("chat") != request.chat:
            raise NotFoundError(f"{field}: no message {message_id} in this chat", {"field": field})
        return doc

    def _quoted(self, request: SendInput) -> QuotedMessage | None:
        if request.reply_to is None:
            return None
        doc = self._target(request, request.reply_to, "replyTo")
        message = doc.get("message")
        return QuotedMessage(request.reply_to, doc["sender"], message if isinstance(message, dict) else None)

    def _reaction(self, request: SendInput) -> Reaction | None:
        if request.react is None:
            return None
        doc = self._target(request, request.react.message_id, "react.messageId")
        return Reaction(MessageKey.from_dict(doc["key"]), request.react.emoji)

    def expire(self, limit: int = 500) -> int:
        """Fail the sends that waited in the outbox longer than the outbox TTL (cleanup); returns how many."""
        now = self._clock()
        expired = self._store.sends_accepted_before(now - self._outbox_ttl, limit)
        for send in expired:
            update = MessageStatusUpdate(send.account_id, send.message_id, send.chat, MessageStatus.FAILED, now,
                                         reason="expired")
            self._store.transact(send.account_id, send.message_id, send.chat, plan_status(update, now))
            _log.warning("account %s: send %s expired in the outbox (no connector sent it)", send.account_id,
                         send.message_id)
        return len(expired)


def pending_for_sync(store: MessageStore, claimed: Iterable[str], held: Iterable[str],
                     since: datetime | None) -> list[OutboundSend]:
    """The sends connectorSync hands a connector: every pending send of the accounts it just claimed,
    and those of the accounts it holds accepted since ``since`` (all of them when None: its first
    call, or one long after the previous)."""
    claimed_ids = list(dict.fromkeys(claimed))
    held_ids = [a for a in dict.fromkeys(held) if a not in set(claimed_ids)]
    if since is None:
        claimed_ids, held_ids = claimed_ids + held_ids, []
    sends = store.pending_sends(claimed_ids) if claimed_ids else []
    if held_ids:
        wanted = set(held_ids)
        sends.extend(s for s in store.sends_accepted_since(since) if s.account_id in wanted)  # type: ignore[arg-type]
    return sorted(sends, key=lambda s: (s.accepted_at, s.message_id))
