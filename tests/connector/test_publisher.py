from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from connector.errors import PublishError
from connector.publisher import OrderedPublisher
from testkit.fake_links import MemoryTransport


async def test_messages_of_one_key_are_published_in_order() -> None:
    transport = MemoryTransport(latency_s=0.001)
    publisher = OrderedPublisher(transport, "events")
    futures = [publisher.submit("a", str(i).encode(), {}) for i in range(20)]
    assert await publisher.drained(2.0)
    assert all(f.result() for f in futures)
    assert [p.data for p in transport.published] == [str(i).encode() for i in range(20)]
    assert {p.ordering_key for p in transport.published} == {"a"}


async def test_newest_only_keeps_one_waiting_snapshot_per_key() -> None:
    transport = MemoryTransport(latency_s=0.02)
    publisher = OrderedPublisher(transport, "snaps", newest_only=True)
    first = publisher.submit("a", b"v1", {})
    await asyncio.sleep(0)  # v1 goes in flight
    second = publisher.submit("a", b"v2", {})
    third = publisher.submit("a", b"v3", {})
    assert publisher.pending() == 2  # one in flight, one waiting
    assert await publisher.drained(2.0)
    assert [p.data for p in transport.published] == [b"v1", b"v3"]
    assert (first.result(), second.result(), third.result()) == (True, False, True)


async def test_an_outage_delays_but_loses_nothing() -> None:
    transport = MemoryTransport()
    transport.down = True
    accepted: list[float] = []
    publisher = OrderedPublisher(transport, "snaps", newest_only=True, retry_base_s=0.01, retry_cap_s=0.05,
                                 on_accepted=lambda item, latency: accepted.append(latency))
    for account in ("a", "b"):
        publisher.submit(account, account.encode() + b"1", {})
    await asyncio.sleep(0.2)
    publisher.submit("a", b"a2", {})  # newer state while the transport is still down
    assert transport.published == []
    assert not await publisher.drained(0.05)
    transport.down = False
    assert await publisher.drained(2.0)
    assert sorted(p.data for p in transport.published) == [b"a2", b"b1"]
    assert publisher.failures > 2
    # Latency counts from the first change that was waiting, so it includes the outage.
    assert min(accepted) >= 0.2


async def test_full_queue_refuses_instead_of_growing() -> None:
    import connector.publisher as module

    transport = MemoryTransport()
    transport.down = True
    publisher = OrderedPublisher(transport, "events", retry_base_s=0.01)
    limit = module.MAX_QUEUED_PER_KEY
    module.MAX_QUEUED_PER_KEY = 3
    try:
        futures = [publisher.submit("a", b"x", {}) for _ in range(4)]
        with pytest.raises(PublishError):
            futures[3].result()
    finally:
        module.MAX_QUEUED_PER_KEY = limit
        await publisher.close()
    assert all(f.cancelled() for f in futures[:3])


async def test_close_cancels_what_was_never_accepted() -> None:
    transport = MemoryTransport()
    transport.down = True
    publisher = OrderedPublisher(transport, "events", retry_base_s=0.01)
    future = publisher.submit("a", b"x", {})
    await asyncio.sleep(0.02)
    await publisher.close()
    assert future.cancelled()
    assert publisher.pending() == 0


@pytest.mark.integration
async def test_pubsub_transport_batches_many_keys_into_one_call_and_keeps_each_key_in_order(
        pubsub_names: Any) -> None:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    from connector.publisher import PubSubTransport

    topic, subscription = pubsub_names.topic("batched"), pubsub_names.subscription("batched")
    subscriber = pubsub_v1.SubscriberClient()
    pubsub_v1.PublisherClient().create_topic(name=topic)
    subscriber.create_subscription(request={"name": subscription, "topic": topic, "enable_message_ordering": True})
    transport = PubSubTransport(pubsub_names.project)
    calls: list[int] = []
    publish_call = transport._publish_call

    def counting(topic_path: str, messages: list[Any]) -> Any:
        calls.append(len(messages))
        return publish_call(topic_path, messages)

    transport._publish_call = counting  # type: ignore[method-assign]
    publisher = OrderedPublisher(transport, topic.rsplit("/", 1)[1])
    for n in range(3):
        for key in range(10):
            publisher.submit(f"acct-{key}", f"{key}:{n}".encode(), {"n": str(n)})
    assert await publisher.drained(20)
    await transport.close()
    assert sum(calls) == 30
    assert len(calls) <= 10  # ten keys share each call (three rounds, one message per key in flight)
    received: dict[str, list[int]] = {}
    for _ in range(20):
        response = subscriber.pull(subscription=subscription, max_messages=100, timeout=10)
        for item in response.received_messages:
            key, n = item.message.data.decode().split(":")
            assert item.message.ordering_key == f"acct-{key}"
            received.setdefault(key, []).append(int(n))
        if response.received_messages:
            subscriber.acknowledge(subscription=subscription,
                                   ack_ids=[item.ack_id for item in response.received_messages])
        if sum(map(len, received.values())) == 30:
            break
    assert received == {str(key): [0, 1, 2] for key in range(10)}


@pytest.mark.integration
async def test_pubsub_transport_fails_every_message_of_a_failed_call_and_the_publisher_retries(
        pubsub_names: Any) -> None:
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    from connector.publisher import PubSubTransport

    topic = pubsub_names.topic("flaky")
    pubsub_v1.PublisherClient().create_topic(name=topic)
    transport = PubSubTransport(pubsub_names.project)
    publish_call = transport._publish_call
    failures: list[int] = []

    def flaky(topic_path: str, messages: list[Any]) -> Any:
        if not failures:
            failures.append(len(messages))
            raise gexc.ServiceUnavailable("emulator restarting")  # type: ignore[no-untyped-call]
        return publish_call(topic_path, messages)

    transport._publish_call = flaky  # type: ignore[method-assign]
    name = topic.rsplit("/", 1)[1]
    results = await asyncio.gather(*(transport.publish(name, b"x", {}, f"acct-{key}") for key in range(3)),
                                   return_exceptions=True)
    assert failures == [3]  # one call carried all three, and all three failed with it
    assert all(isinstance(result, PublishError) and "ServiceUnavailable" in str(result) for result in results)
    publisher = OrderedPublisher(transport, name, retry_base_s=0.01, retry_cap_s=0.05)
    accepted = [publisher.submit(f"acct-{key}", b"y", {}) for key in range(5)]
    assert await publisher.drained(20)
    assert [future.result() for future in accepted] == [True] * 5
    assert publisher.failures == 0 and failures == [3]
    await transport.close()


async def test_a_pubsub_library_that_cannot_load_fails_publishes_with_a_clear_error(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # The library loads on a publish thread while the connector starts; if it cannot, every publish
    # fails as a PublishError (retried above, nothing lost) and the reason is logged once.
    import importlib

    from connector import publisher

    real_import = importlib.import_module

    def no_pubsub(name: str, package: str | None = None) -> object:
        if name.startswith("google.cloud.pubsub"):
            raise ImportError("no module named google.cloud.pubsub_v1")
        return real_import(name, package)

    monkeypatch.setattr(publisher.importlib, "import_module", no_pubsub)
    transport = publisher.PubSubTransport("demo-x", timeout_s=2.0)
    with caplog.at_level(logging.ERROR, logger="connector.publisher"), pytest.raises(PublishError) as raised:
        await transport.publish("t", b"x", {}, "k")
    assert "ImportError" in str(raised.value)
    assert [r.getMessage() for r in caplog.records] == ["Pub/Sub client could not be set up; nothing can be published"]
    await transport.close()
