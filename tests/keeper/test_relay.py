"""The local Pub/Sub relay: the CloudEvent it builds, its backoff, and delivery through functions-framework."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from keeper.relay import PUBSUB_EVENT_TYPE, Delivery, PubSubRelay, RetryPolicy, Route, cloud_event

ROUTE = Route(function="persistSnapshot", topic="projects/p/topics/snapshots",
              subscription="projects/p/subscriptions/persistSnapshot-relay",
              endpoint="http://127.0.0.1:1/p/us-central1/persistSnapshot")
SENT = Delivery(message_id="42", data=b"\x00sealed\xff", attributes={"accountId": "a1", "generation": "3"},
                publish_time=datetime(2026, 11, 25, 12, 0, 1, 250000, tzinfo=UTC), ordering_key="a1")

# A CloudEvent function as functions-framework loads it from source: what it received goes to a file.
FUNCTION_SOURCE = '''
import base64, json, os
import functions_framework

@functions_framework.cloud_event
def record(event):
    message = event.get_data()["message"]
    data = base64.b64decode(message["data"]).decode("latin-1")
    line = {"id": event["id"], "type": event["type"], "source": event["source"], "key": message.get("orderingKey"),
            "data": data, "attributes": message["attributes"], "subscription": event.get_data()["subscription"],
            "event_data": event.get_data()}
    with open(os.environ["RELAY_TEST_OUT"], "a") as out:
        out.write(json.dumps(line) + "\\n")
    marker = os.environ["RELAY_TEST_OUT"] + "." + data
    if data.endswith("-fail-once") and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first delivery fails")
'''


def test_cloud_event_is_eventarc_shaped() -> None:
    headers, body = cloud_event(ROUTE, SENT)
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-type"] == PUBSUB_EVENT_TYPE
    assert headers["ce-source"] == "//pubsub.googleapis.com/projects/p/topics/snapshots"
    assert headers["ce-id"] == "42"
    assert headers["ce-time"] == "2026-11-25T12:00:01.250000Z"
    payload = json.loads(body)
    assert payload["subscription"] == ROUTE.subscription
    message = payload["message"]
    assert base64.b64decode(message["data"]) == SENT.data
    assert message["attributes"] == {"accountId": "a1", "generation": "3"}
    assert (message["messageId"], message["orderingKey"]) == ("42", "a1")
    assert message["publishTime"] == "2026-11-25T12:00:01.250000Z"


def test_cloud_event_without_ordering_key_omits_it() -> None:
    _, body = cloud_event(ROUTE, Delivery("7", b"", {}, SENT.publish_time))
    assert "orderingKey" not in json.loads(body)["message"]


def test_functions_framework_reads_the_event_the_way_the_functions_do(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The relay's request parses as a CloudEvent, and functions/http.py finds the message in it."""
    import functions_framework

    from functions.http import pubsub_message

    out = tmp_path / "received.jsonl"
    monkeypatch.setenv("RELAY_TEST_OUT", str(out))
    source = tmp_path / "recorder.py"
    source.write_text(FUNCTION_SOURCE)
    app = functions_framework.create_app(target="record", source=str(source))  # type: ignore[no-untyped-call]
    headers, body = cloud_event(ROUTE, SENT)
    reply = Client(app).post("/", data=body, headers=headers)
    assert reply.status_code == 200
    (line,) = [json.loads(text) for text in out.read_text().splitlines()]
    assert (line["id"], line["type"], line["key"]) == ("42", PUBSUB_EVENT_TYPE, "a1")
    message = pubsub_message(line["event_data"])
    assert (message.message_id, message.data, dict(message.attributes)) == ("42", SENT.data, SENT.attributes)


@pytest.mark.parametrize("attempt, low, high", [(1, 0.25, 0.5), (2, 0.5, 1.0), (3, 1.0, 2.0), (9, 5.0, 10.0)])
def test_backoff_doubles_up_to_the_cap(attempt: int, low: float, high: float) -> None:
    policy = RetryPolicy(base_s=0.5, cap_s=10.0)
    assert policy.delay_s(attempt, rand=lambda: 0.0) == low
    assert policy.delay_s(attempt, rand=lambda: 1.0) == high


# --- through the Pub/Sub emulator ------------------------------------------------------------------


@pytest.fixture
def function_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    import functions_framework
    from werkzeug.serving import make_server

    out = tmp_path / "received.jsonl"
    monkeypatch.setenv("RELAY_TEST_OUT", str(out))
    source = tmp_path / "recorder.py"
    source.write_text(FUNCTION_SOURCE)
    app = functions_framework.create_app(target="record", source=str(source))  # type: ignore[no-untyped-call]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", out
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _wait_for(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.integration
def test_relay_delivers_in_order_per_key_and_redelivers_failures(pubsub_names: Any,
                                                                  function_server: tuple[str, Path]) -> None:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    endpoint, out = function_server
    topic, subscription = pubsub_names.topic("relay"), pubsub_names.subscription("relay")
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    subscriber = pubsub_v1.SubscriberClient()
    publisher.create_topic(name=topic)
    subscriber.create_subscription(request={"name": subscription, "topic": topic, "ack_deadline_seconds": 60,
                                            "enable_message_ordering": True})
    sent: dict[str, list[str]] = {}
    for key in ("a1", "a2", "a3"):
        for i in range(4):
            data = f"{key}-{i}" + ("-fail-once" if (key, i) == ("a2", 1) else "")
            publisher.publish(topic, data.encode(), ordering_key=key, accountId=key).result(timeout=10)
            sent.setdefault(key, []).append(data)
    relay = PubSubRelay([Route("record", topic, subscription, endpoint)], max_in_flight=4,
                        retry=RetryPolicy(base_s=0.1, cap_s=0.2), report_every_s=0)
    relay.start()
    try:
        def lines() -> list[dict[str, Any]]:
            return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

        assert _wait_for(lambda: len(lines()) >= 13, 30), lines()
        time.sleep(0.5)  # nothing more may arrive: every success was acknowledged
        received = lines()
    finally:
        relay.stop()
    assert len(received) == 13  # 12 messages, one of them twice
    for key, datas in sent.items():
        seen = [line["data"] for line in received if line["key"] == key]
        expected = [*datas[:2], datas[1], *datas[2:]] if key == "a2" else datas
        assert seen == expected, key  # the failed one came again before anything after it
    first = received[0]
    assert first["type"] == PUBSUB_EVENT_TYPE
    assert first["source"] == f"//pubsub.googleapis.com/{topic}"
    assert first["subscription"] == subscription
    assert first["attributes"]["accountId"] == first["key"]
    assert (relay.stats.delivered, relay.stats.failed) == (12, 1)


@pytest.mark.integration
def test_ensure_local_pubsub_switches_between_push_and_relay(pubsub_names: Any, project_id: str) -> None:
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1  # type: ignore[attr-defined,unused-ignore]

    from keeper.gateway import ensure_local_pubsub

    suffix = f"-{pubsub_names.suffix}"
    topics = {"snapshots": f"snap{suffix}", "connection_events": f"conn{suffix}", "messages": f"msg{suffix}",
              "alerts": f"alerts{suffix}"}
    base = "http://127.0.0.1:5001/p/us-central1"
    subscriber = pubsub_v1.SubscriberClient()

    pushed = ensure_local_pubsub(project_id, base, topics=topics, suffix=suffix)
    assert pushed.delivery == "push"
    persist = next(route for route in pushed.routes if route.function == "persistSnapshot")
    assert persist.endpoint == f"{base}/persistSnapshot/projects/{project_id}/topics/snap{suffix}"
    assert subscriber.get_subscription(subscription=persist.subscription).push_config.push_endpoint == persist.endpoint

    relayed = ensure_local_pubsub(project_id, base, topics=topics, suffix=suffix, delivery="relay")
    assert {route.function: route.endpoint for route in relayed.routes} == {
        "persistSnapshot": f"{base}/persistSnapshot", "recordConnectionEvent": f"{base}/recordConnectionEvent",
        "recordMessageEvent": f"{base}/recordMessageEvent"}
    for route in relayed.routes:
        subscription = subscriber.get_subscription(subscription=route.subscription)
        assert subscription.push_config.push_endpoint == ""  # a pull subscription, for the relay
        assert subscription.enable_message_ordering
        role = {"persistSnapshot": "snapshots", "recordConnectionEvent": "connection_events",
                "recordMessageEvent": "messages"}[route.function]
        assert route.topic == f"projects/{project_id}/topics/{topics[role]}"
    with pytest.raises(gexc.NotFound):  # the push subscription is gone: nothing is delivered twice
        subscriber.get_subscription(subscription=persist.subscription)
    # idempotent
    assert ensure_local_pubsub(project_id, base, topics=topics, suffix=suffix, delivery="relay") == relayed
