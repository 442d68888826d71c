"""deploy/replay_dead_letters.py on the Pub/Sub emulator: dead letters go back to their source topic."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PubSubNames
from tests.deploy.bundle_support import load_deploy_script

pytestmark = pytest.mark.integration

replay = load_deploy_script("replay_dead_letters")
PULL_WAIT_S = 2.0


class Setup:
    """A source topic with its (trigger) subscription, another source, a dead-letter topic and a reader
    on each source topic that sees what gets replayed."""

    def __init__(self, names: PubSubNames) -> None:
        pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")
        self.names = names
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.snapshots, self.messages = names.topic("snapshots"), names.topic("messages")
        self.trigger = names.subscription("trigger")
        self.consumer = names.subscription("consumer")
        self.dead_letter = names.topic("dead")
        self.inspect = names.subscription("inspect")
        self.replayed_snapshots = names.subscription("replayed-snapshots")
        self.replayed_messages = names.subscription("replayed-messages")
        for topic in (self.snapshots, self.messages, self.dead_letter):
            self.publisher.create_topic(request={"name": topic})
        for name, topic in ((self.trigger, self.snapshots), (self.consumer, self.messages),
                            (self.inspect, self.dead_letter), (self.replayed_snapshots, self.snapshots),
                            (self.replayed_messages, self.messages)):
            self.subscriber.create_subscription(
                request={"name": name, "topic": topic, "enable_message_ordering": True, "ack_deadline_seconds": 10})

    def dead_letter_from(self, source: str | None, data: bytes, **attributes: str) -> None:
        if source is not None:
            attributes |= {replay.SOURCE_ATTRIBUTE: source.rsplit("/", 1)[1],
                           replay.SOURCE_PROJECT_ATTRIBUTE: self.names.project,
                           "CloudPubSubDeadLetterSourceDeliveryCount": "20"}
        self.publisher.publish(self.dead_letter, data, **attributes).result(timeout=10)

    def drain(self, subscription: str, expected: int) -> list[Any]:
        """Pull (acknowledging) until ``expected`` messages arrived, then once more: nothing else may come."""
        got: list[Any] = []
        for _ in range(10):
            response = self.subscriber.pull(request={"subscription": subscription, "max_messages": 50},
                                            timeout=PULL_WAIT_S)
            if response.received_messages:
                got += [r.message for r in response.received_messages]
                self.subscriber.acknowledge(request={"subscription": subscription,
                                                     "ack_ids": [r.ack_id for r in response.received_messages]})
            elif len(got) >= expected:
                break
        return got


@pytest.fixture
def setup(pubsub_names: PubSubNames) -> Iterator[Setup]:
    made = Setup(pubsub_names)
    yield made
    made.subscriber.close()


def run(setup: Setup, *extra: str) -> int:
    code: int = replay.main(["--project", setup.names.project, "--subscription", setup.inspect, "--max", "50",
                             *extra])
    return code


def test_dry_run_lists_and_changes_nothing_then_replay_restores_source_and_attributes(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.dead_letter_from(setup.trigger, b"sealed-a1", accountId="a1", generation="3", type="snapshot")
    setup.dead_letter_from(setup.trigger, b"sealed-a2", accountId="a2", generation="1", type="snapshot")
    setup.dead_letter_from(setup.consumer, b"message text", accountId="a1", type="message.received")

    assert run(setup, "--dry-run") == 0
    out = capsys.readouterr().out
    assert out.count("would replay") == 3 and "message text" not in out and "sealed" not in out

    assert run(setup, "--source", setup.trigger.rsplit("/", 1)[1]) == 0
    replayed = sorted(setup.drain(setup.replayed_snapshots, 2), key=lambda m: m.attributes["accountId"])
    assert [bytes(m.data) for m in replayed] == [b"sealed-a1", b"sealed-a2"]
    assert [dict(m.attributes) for m in replayed] == [
        {"accountId": "a1", "generation": "3", "type": "snapshot"},
        {"accountId": "a2", "generation": "1", "type": "snapshot"},
    ]
    assert [m.ordering_key for m in replayed] == ["a1", "a2"]
    assert setup.drain(setup.replayed_messages, 0) == []  # the other source was left alone

    assert run(setup) == 0
    (message,) = setup.drain(setup.replayed_messages, 1)
    assert bytes(message.data) == b"message text" and dict(message.attributes)["type"] == "message.received"
    assert setup.drain(setup.inspect, 0) == []  # everything replayed was acknowledged
    assert "message text" not in capsys.readouterr().out


def test_message_without_a_known_source_is_kept_and_reported(setup: Setup,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    setup.dead_letter_from(None, b"x", accountId="a9")
    setup.dead_letter_from(setup.names.subscription("deleted-since"), b"y", accountId="a8")
    assert run(setup) == 1
    assert capsys.readouterr().out.count("source topic unknown") == 2
    assert len(setup.drain(setup.inspect, 2)) == 2  # still there for a human
