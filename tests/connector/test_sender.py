"""The connector's send path (connector/sender.py) over a real supervisor and publisher, the link faked:
a send starts on the live socket, its statuses are published as message.status, and a send with no
socket or whose socket is lost before the server's ack is retried later."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from connector.errors import SendRetryLater
from connector.protocol.binary import Jid
from connector.protocol.send_status import SendStatus, Status
from connector.protocol.wamessage import decode_message
from connector.publisher import OrderedPublisher
from connector.sender import Sender, send_request
from connector.slots import AccountSlot
from connector.states import AccountState
from connector.supervisor import AccountSupervisor
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from shared.events import MessageKey, OutboundSend, QuotedMessage, Reaction, SendKind
from testkit.fake_links import FakeLinkFactory, MemoryTransport, close_event, eventually, opened

BOB = "4915550002@s.whatsapp.net"
ACCEPTED = datetime(2026, 12, 4, tzinfo=UTC)


def _send(message_id: str = "3EB0A1", **changes: object) -> OutboundSend:
    fields: dict[str, object] = {"account_id": "a1", "message_id": message_id, "chat": BOB,
                                 "kind": SendKind.TEXT, "accepted_at": ACCEPTED, "text": "hello"}
    fields.update(changes)
    return OutboundSend(**fields)  # type: ignore[arg-type]


class _Stack:
    def __init__(self) -> None:
        self.transport = MemoryTransport()
        self.publisher = OrderedPublisher(self.transport, "messages")
        self.accounts: dict[str, AccountSlot] = {}
        self.sender = Sender(self.accounts, self.publisher, outcome_timeout_s=5.0)
        self.factory = FakeLinkFactory(lambda session: session.push(opened()))
        self.hooks = _Hooks(self.sender)
        store = MemoryAuthStore(AuthState.generate())
        self.supervisor = AccountSupervisor("a1", store, self.factory, self.hooks)  # type: ignore[arg-type]
        self.accounts["a1"] = AccountSlot("a1", 1, store, self.supervisor)

    def statuses(self) -> list[dict[str, object]]:
        return [json.loads(p.data) for p in self.transport.on("messages")]


class _Hooks:
    """The supervisor's hooks: the send ones go to the sender, the rest is not under test."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def send_status(self, account_id: str, status: SendStatus) -> None:
        self._sender.send_status(account_id, status)

    def socket_ended(self, account_id: str) -> None:
        self._sender.socket_ended(account_id)

    async def persist_now(self, account_id: str) -> bool:
        return True

    def __getattr__(self, name: str) -> object:
        return lambda *args, **kwargs: None


async def test_a_send_is_settled_by_its_server_ack_and_later_receipts_are_published() -> None:
    stack = _Stack()
    stack.supervisor.start()
    await eventually(lambda: stack.supervisor.state is AccountState.OPEN)
    handled = asyncio.create_task(stack.sender.handle(_send()))
    await eventually(lambda: bool(stack.factory.sessions[0].sends))
    [request] = stack.factory.sessions[0].sends
    assert (request.message_id, request.to, decode_message(request.message).text) == ("3EB0A1", Jid.parse(BOB),
                                                                                      "hello")
    assert not handled.done()  # settled by the server's ack, not by the start
    stack.factory.sessions[0].push(SendStatus("3EB0A1", Status.SENT, 1780000000))
    await asyncio.wait_for(handled, 5)
    stack.factory.sessions[0].push(SendStatus("3EB0A1", Status.DELIVERED, 1780000001, device=BOB))
    stack.factory.sessions[0].push(SendStatus("3EB0A1", Status.READ, 1780000002, device=BOB))
    await eventually(lambda: len(stack.statuses()) == 3)
    assert [(s["type"], s["messageId"], s["chat"], s["status"]) for s in stack.statuses()] == [
        ("message.status", "3EB0A1", BOB, "sent"), ("message.status", "3EB0A1", BOB, "delivered"),
        ("message.status", "3EB0A1", BOB, "read")]
    await stack.supervisor.stop("test")


async def test_a_failed_send_is_published_with_its_reason_and_settled() -> None:
    stack = _Stack()
    stack.supervisor.start()
    await eventually(lambda: stack.supervisor.state is AccountState.OPEN)
    handled = asyncio.create_task(stack.sender.handle(_send("3EB0F1")))
    await eventually(lambda: bool(stack.factory.sessions[0].sends))
    stack.factory.sessions[0].push(SendStatus("3EB0F1", Status.FAILED, reason="server_error_479"))
    await asyncio.wait_for(handled, 5)
    [status] = stack.statuses()
    assert (status["status"], status["reason"]) == ("failed", "server_error_479")
    await stack.supervisor.stop("test")


async def test_no_socket_or_a_socket_lost_before_the_ack_means_retry_later() -> None:
    stack = _Stack()
    with pytest.raises(SendRetryLater):
        await stack.sender.handle(_send("3EB0N1"))  # not connected yet
    stack.supervisor.start()
    await eventually(lambda: stack.supervisor.state is AccountState.OPEN)
    handled = asyncio.create_task(stack.sender.handle(_send("3EB0N2")))
    await eventually(lambda: bool(stack.factory.sessions[0].sends))
    stack.factory.sessions[0].push(close_event("connection_lost"))
    with pytest.raises(SendRetryLater):
        await asyncio.wait_for(handled, 5)
    assert stack.statuses() == []
    with pytest.raises(SendRetryLater):
        await stack.sender.handle(_send("3EB0N3", account_id="other"))  # not held here
    await stack.supervisor.stop("test")


def test_requests_for_a_reply_and_a_reaction() -> None:
    reply = send_request(_send(reply_to=QuotedMessage("3EB0Q", BOB, {"conversation": "the question"})), 5)
    decoded = decode_message(reply.message)
    quote = decoded.content.quote
    assert decoded.text == "hello" and quote is not None and (quote.message_id, quote.participant) == ("3EB0Q", BOB)
    assert quote.content is not None and quote.content.text == "the question"
    react = send_request(_send(kind=SendKind.REACTION, text=None,
                               react=Reaction(MessageKey(BOB, False, "3EB0Q"), "👍")), 1234)
    reaction = decode_message(react.message).content.reaction
    assert reaction is not None and (reaction.target.id, reaction.emoji) == ("3EB0Q", "👍")
