"""The outbox dispatcher: each send handed over once, in order per account, parked until claimed, retried."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from connector.errors import SendRetryLater
from connector.outbox import Offer, OutboxDispatcher, subscription_id
from shared.events import OutboundSend, SendKind
from testkit.fake_links import eventually

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PEER = "40711111111@s.whatsapp.net"


def send(account: str, n: int, text: str = "secret text") -> OutboundSend:
    return OutboundSend(account, f"3EB0{n:018X}", PEER, SendKind.TEXT, T0 + timedelta(seconds=n), text=text)


class Handler:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.refuse: dict[str, int] = {}  # message id -> times to raise SendRetryLater
        self.gate: asyncio.Event | None = None

    async def __call__(self, item: OutboundSend) -> None:
        self.calls.append(item.message_id)
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse.get(item.message_id, 0) > 0:
            self.refuse[item.message_id] -= 1
            raise SendRetryLater("socket not open")


async def test_a_send_from_both_paths_is_handed_over_once_in_order() -> None:
    handler = Handler()
    dispatcher = OutboxDispatcher(lambda account: account == "a1", handler, retry_base_s=0.01)
    first, second = send("a1", 1), send("a1", 2)
    assert dispatcher.offer(first) is Offer.QUEUED
    assert dispatcher.offer(second) is Offer.QUEUED
    assert dispatcher.offer(first) is Offer.DUPLICATE  # the catch-up brings it again while queued
    await eventually(lambda: len(handler.calls) == 2)
    assert handler.calls == [first.message_id, second.message_id]
    assert dispatcher.offer(first) is Offer.DUPLICATE  # and after it was handed over
    await asyncio.sleep(0.05)
    assert handler.calls == [first.message_id, second.message_id]
    await dispatcher.close()


async def test_sends_for_accounts_not_held_are_parked_until_the_claim() -> None:
    held: set[str] = set()
    handler = Handler()
    now = [0.0]
    dispatcher = OutboxDispatcher(lambda account: account in held, handler, clock=lambda: now[0], park_s=30)
    assert dispatcher.offer(send("a2", 1)) is Offer.PARKED
    assert dispatcher.offer(send("a2", 1)) is Offer.DUPLICATE
    assert dispatcher.offer(send("a3", 2)) is Offer.PARKED
    await asyncio.sleep(0.02)
    assert handler.calls == []
    held.add("a2")
    assert dispatcher.account_claimed("a2") == 1
    await eventually(lambda: handler.calls == [send("a2", 1).message_id])
    now[0] = 31.0  # a3's parked send is too old: it comes again with a3's claim
    held.add("a3")
    assert dispatcher.account_claimed("a3") == 0 and dispatcher.parked() == 0
    await dispatcher.close()


async def test_retry_later_is_retried_and_a_later_send_waits_its_turn() -> None:
    handler = Handler()
    dispatcher = OutboxDispatcher(lambda account: True, handler, retry_base_s=0.01, retry_max_s=0.02)
    first, second = send("a1", 1), send("a1", 2)
    handler.refuse[first.message_id] = 3
    dispatcher.offer(first)
    dispatcher.offer(second)
    await eventually(lambda: second.message_id in handler.calls)
    assert handler.calls == [first.message_id] * 4 + [second.message_id]
    await dispatcher.close()


async def test_a_released_account_drops_its_queue_and_a_failing_handler_gives_up() -> None:
    handler = Handler()
    handler.gate = asyncio.Event()
    held = {"a1"}
    dispatcher = OutboxDispatcher(lambda account: account in held, handler)
    dispatcher.offer(send("a1", 1))
    dispatcher.offer(send("a1", 2))
    await eventually(lambda: handler.calls == [send("a1", 1).message_id])
    held.clear()
    dispatcher.account_released("a1")
    handler.gate.set()
    await asyncio.sleep(0.05)
    assert handler.calls == [send("a1", 1).message_id] and dispatcher.waiting("a1") == []
    # not remembered as sent: held again, the claim's catch-up brings both back
    held.add("a1")
    assert dispatcher.offer(send("a1", 1)) is Offer.QUEUED

    async def broken(item: OutboundSend) -> None:
        raise RuntimeError("bug")

    other = OutboxDispatcher(lambda account: True, broken, retry_base_s=0.001, max_attempts=3)
    other.offer(send("a9", 1))
    await eventually(lambda: other.counts["given_up"] == 1)
    assert other.offer(send("a9", 1)) is Offer.QUEUED  # left to the outbox, not remembered
    await dispatcher.close()
    await other.close()


async def test_sends_wait_for_a_handler_set_later() -> None:
    dispatcher = OutboxDispatcher(lambda account: True)
    dispatcher.offer(send("a1", 1))
    await asyncio.sleep(0.02)
    handler = Handler()
    dispatcher.set_handler(handler)
    await eventually(lambda: handler.calls == [send("a1", 1).message_id])
    await dispatcher.close()


def test_subscription_ids_are_valid_pubsub_names() -> None:
    assert subscription_id("outbox", "host-1:abc") == "outbox-host-1-abc"
