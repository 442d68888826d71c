"""The real emulators answer the real Google client libraries (the ground every integration test stands on)."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.integration


def test_firestore_write_then_read(firestore_client: Any) -> None:
    ref = firestore_client.collection("probe").document("doc-1")
    ref.set({"n": 1, "blob": b"\x00\x01"})
    snap = ref.get()
    assert snap.exists
    assert snap.to_dict() == {"n": 1, "blob": b"\x00\x01"}


def test_firestore_is_cleared_between_tests(firestore_client: Any) -> None:
    # test_firestore_write_then_read wrote probe/doc-1; each test starts from an empty database.
    assert not firestore_client.collection("probe").document("doc-1").get().exists


def test_pubsub_publish_then_pull(pubsub_names: Any) -> None:
    from google.cloud import pubsub_v1

    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True)
    )
    subscriber = pubsub_v1.SubscriberClient()
    topic, subscription = pubsub_names.topic(), pubsub_names.subscription()
    publisher.create_topic(name=topic)
    subscriber.create_subscription(
        request={"name": subscription, "topic": topic, "enable_message_ordering": True}
    )

    for i in range(3):
        publisher.publish(topic, f"m{i}".encode(), ordering_key="acct-1", kind="probe").result(timeout=10)

    received: list[bytes] = []
    for _ in range(20):  # bounded: the emulator may hand messages out over several pulls
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=5)
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
            received.extend(m.message.data for m in response.received_messages)
            assert all(m.message.attributes["kind"] == "probe" for m in response.received_messages)
        if len(received) >= 3:
            break
    assert received == [b"m0", b"m1", b"m2"]
