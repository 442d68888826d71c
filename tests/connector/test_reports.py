"""Connection reports: updates of one window go out as one ordered ``connection.updates`` message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from connector.publisher import OrderedPublisher
from connector.reports import ConnectionReports
from shared.events import ConnectionState, ConnectionUpdate, ConnectionUpdates, parse_event
from testkit.fake_links import MemoryTransport, eventually

TOPIC = "connection-events"


def update(account_id: str, state: ConnectionState = ConnectionState.OPEN,
           connector_id: str = "c-1") -> ConnectionUpdate:
    return ConnectionUpdate(account_id, connector_id, 1, datetime.now(UTC), state)


def batches(transport: MemoryTransport) -> list[ConnectionUpdates]:
    found = []
    for message in transport.on(TOPIC):
        assert message.ordering_key == "c-1"
        assert message.attributes == {"type": "connection.updates", "connectorId": "c-1"}
        event = parse_event(message.data)
        assert isinstance(event, ConnectionUpdates)
        found.append(event)
    return found


async def test_updates_of_one_window_share_one_message_in_order() -> None:
    transport = MemoryTransport()
    reports = ConnectionReports(OrderedPublisher(transport, TOPIC), "c-1", window_s=0.1)
    reports.add(update("a1", ConnectionState.CONNECTING))
    reports.add(update("a2", ConnectionState.CONNECTING))
    reports.add(update("a1"))
    assert transport.published == [] and reports.waiting() == 3  # nothing goes before the window ends
    await eventually(lambda: len(transport.published) == 1)
    [batch] = batches(transport)
    assert [(u.account_id, u.state) for u in batch.updates] == [
        ("a1", ConnectionState.CONNECTING), ("a2", ConnectionState.CONNECTING), ("a1", ConnectionState.OPEN)]
    reports.add(update("a3"))  # a later update opens a new window
    await eventually(lambda: len(transport.published) == 2)
    assert [u.account_id for u in batches(transport)[1].updates] == ["a3"]


async def test_a_full_batch_goes_at_once_and_flush_sends_the_rest() -> None:
    transport = MemoryTransport()
    reports = ConnectionReports(OrderedPublisher(transport, TOPIC), "c-1", window_s=60, max_updates=3)
    for i in range(7):
        reports.add(update(f"a{i}"))
    await eventually(lambda: len(transport.published) == 2)
    assert reports.waiting() == 1
    accepted = reports.flush()
    assert accepted is not None and await asyncio.wait_for(accepted, 5) is True
    assert [[u.account_id for u in b.updates] for b in batches(transport)] == [
        ["a0", "a1", "a2"], ["a3", "a4", "a5"], ["a6"]]
    assert reports.flush() is None


async def test_batches_wait_out_an_outage_and_arrive_in_order() -> None:
    transport = MemoryTransport()
    transport.down = True
    reports = ConnectionReports(OrderedPublisher(transport, TOPIC), "c-1", window_s=0.01)
    reports.add(update("a1", ConnectionState.CONNECTING))
    await asyncio.sleep(0.05)
    reports.add(update("a1"))
    await asyncio.sleep(0.3)
    assert transport.published == [] and transport.attempts > 1
    transport.down = False
    await eventually(lambda: len(transport.published) == 2, timeout_s=10)
    assert [b.updates[0].state for b in batches(transport)] == [ConnectionState.CONNECTING, ConnectionState.OPEN]


async def test_another_connectors_update_is_refused() -> None:
    reports = ConnectionReports(OrderedPublisher(MemoryTransport(), TOPIC), "c-1")
    with pytest.raises(ValueError):
        reports.add(update("a1", connector_id="c-2"))
    assert reports.waiting() == 0
