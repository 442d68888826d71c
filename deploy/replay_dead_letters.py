"""Replay dead-lettered Pub/Sub messages to the topic they failed on (runbook: docs/DEPLOY.md, "Dead letters").

Pub/Sub forwards a message that failed every allowed delivery to the dead-letter topic, with its data and
attributes and a few ``CloudPubSubDeadLetter*`` attributes naming the source subscription. This pulls the
inspect subscription, finds each message's source topic through its source subscription, publishes the
message there again (same data and attributes, ``accountId`` as ordering key, the dead-letter attributes
dropped) and acknowledges it only once the publish is accepted. Messages it does not replay (other
sources, ``--dry-run``) are handed back at once for the next reader. Message data is never printed.

    python deploy/replay_dead_letters.py --project=P [--subscription=keeper-dead-letter-inspect]
        [--source=SUBSCRIPTION] [--dry-run] [--max=1000]

Replaying is safe for keeper's topics: the vault refuses older snapshots and the functions drop
connection events from an older lease generation.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

DEFAULT_SUBSCRIPTION: Final = "keeper-dead-letter-inspect"
SOURCE_ATTRIBUTE: Final = "CloudPubSubDeadLetterSourceSubscription"
SOURCE_PROJECT_ATTRIBUTE: Final = "CloudPubSubDeadLetterSourceSubscriptionProject"
DEAD_LETTER_PREFIX: Final = "CloudPubSubDeadLetter"
ORDERING_ATTRIBUTE: Final = "accountId"
PULL_BATCH: Final = 100
CALL_TIMEOUT_S: Final = 30.0
#: A pull waits this long for messages; this many in a row that bring nothing new end the run.
PULL_WAIT_S: Final = 3.0
IDLE_PULLS: Final = 2


@dataclass
class Outcome:
    replayed: int = 0
    skipped: int = 0
    unknown_source: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


def _subscription_path(project: str, name: str) -> str:
    return name if name.startswith("projects/") else f"projects/{project}/subscriptions/{name}"


def replay_attributes(attributes: Mapping[str, str]) -> dict[str, str]:
    """The attributes the message had when first published (Pub/Sub's dead-letter ones dropped)."""
    return {k: v for k, v in attributes.items() if not k.startswith(DEAD_LETTER_PREFIX)}


def source_subscription(project: str, attributes: Mapping[str, str]) -> str | None:
    name = attributes.get(SOURCE_ATTRIBUTE)
    if not name:
        return None
    return _subscription_path(attributes.get(SOURCE_PROJECT_ATTRIBUTE) or project, name)


class Replayer:
    """One run over the inspect subscription with a subscriber and a publisher client."""

    def __init__(self, project: str, subscriber: Any, publisher: Any, *, dry_run: bool = False,
                 only_source: str | None = None) -> None:
        self._project = project
        self._subscriber = subscriber
        self._publisher = publisher
        self._dry_run = dry_run
        self._only_source = _subscription_path(project, only_source) if only_source else None
        self._topics: dict[str, str | None] = {}

    def _topic_of(self, subscription: str) -> str | None:
        if subscription not in self._topics:
            try:
                found = self._subscriber.get_subscription(request={"subscription": subscription},
                                                          timeout=CALL_TIMEOUT_S)
                self._topics[subscription] = str(found.topic) or None
            except Exception as exc:  # NotFound, PermissionDenied: report it, keep the message
                print(f"cannot read {subscription}: {type(exc).__name__}", file=sys.stderr)
                self._topics[subscription] = None
        return self._topics[subscription]

    def run(self, inspect_subscription: str, limit: int) -> Outcome:
        path = _subscription_path(self._project, inspect_subscription)
        outcome = Outcome()
        seen: set[str] = set()  # messages handed back come round again: each is handled once
        idle_pulls = 0
        while len(seen) < limit and idle_pulls < IDLE_PULLS:
            response = self._subscriber.pull(
                request={"subscription": path, "max_messages": min(PULL_BATCH, limit - len(seen))},
                timeout=PULL_WAIT_S)
            release: list[str] = []
            fresh = 0
            for item in response.received_messages:
                if item.message.message_id in seen:
                    release.append(item.ack_id)
                    continue
                fresh += 1
                seen.add(item.message.message_id)
                if self._handle(item, outcome):
                    self._subscriber.acknowledge(request={"subscription": path, "ack_ids": [item.ack_id]},
                                                 timeout=CALL_TIMEOUT_S)
                else:
                    release.append(item.ack_id)
            self._release(path, release)
            idle_pulls = 0 if fresh else idle_pulls + 1
        return outcome

    def _handle(self, item: Any, outcome: Outcome) -> bool:
        """Replay one message; True when it may be acknowledged."""
        message = item.message
        attributes = dict(message.attributes)
        source = source_subscription(self._project, attributes)
        topic = self._topic_of(source) if source else None
        label = f"{message.message_id} account={attributes.get(ORDERING_ATTRIBUTE, '-')} " \
                f"type={attributes.get('type', '-')} from={source or '-'}"
        if source is None or topic is None:
            outcome.unknown_source += 1
            print(f"kept {label}: source topic unknown")
            return False
        if self._only_source is not None and source != self._only_source:
            outcome.skipped += 1
            return False
        if self._dry_run:
            outcome.skipped += 1
            print(f"would replay {label} to {topic}")
            return False
        ordering_key = attributes.get(ORDERING_ATTRIBUTE, "")
        future = self._publisher.publish(topic, bytes(message.data), ordering_key=ordering_key,
                                         **replay_attributes(attributes))
        future.result(timeout=CALL_TIMEOUT_S)
        outcome.replayed += 1
        outcome.by_source[source] = outcome.by_source.get(source, 0) + 1
        print(f"replayed {label} to {topic}")
        return True

    def _release(self, path: str, ack_ids: list[str]) -> None:
        """Hand messages back now instead of when their ack deadline runs out."""
        if ack_ids:
            self._subscriber.modify_ack_deadline(
                request={"subscription": path, "ack_ids": ack_ids, "ack_deadline_seconds": 0},
                timeout=CALL_TIMEOUT_S)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--subscription", default=DEFAULT_SUBSCRIPTION, help="the dead-letter inspect subscription")
    parser.add_argument("--source", help="replay only messages that failed on this subscription")
    parser.add_argument("--dry-run", action="store_true", help="list what would be replayed; change nothing")
    parser.add_argument("--max", type=int, default=1000, help="stop after this many messages")
    args = parser.parse_args(argv)

    pubsub_v1: Any = importlib.import_module("google.cloud.pubsub_v1")  # typed loosely: no stubs
    subscriber = pubsub_v1.SubscriberClient()
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    try:
        outcome = Replayer(args.project, subscriber, publisher, dry_run=args.dry_run,
                           only_source=args.source).run(args.subscription, args.max)
    finally:
        subscriber.close()
    print(f"replayed {outcome.replayed}, left {outcome.skipped}, source unknown {outcome.unknown_source}")
    return 1 if outcome.unknown_source else 0


if __name__ == "__main__":
    sys.exit(main())
