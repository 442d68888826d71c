"""The local functions gateway: every function from one process, at Firebase emulator URLs.

``http://127.0.0.1:<port>/<project>/<region>/<function>`` reaches ``<function>`` from
``functions/main.py``, so the Firebase JS SDK's ``connectFunctionsEmulator`` and the connector use
the same URLs they would use against the Firebase emulator. Each function gets its own
functions-framework app (``create_app``), exactly as it runs when deployed; the gateway only
routes by path and hands the rest of the path to the function (Pub/Sub push endpoints end in
``/projects/P/topics/T``, which functions-framework reads to build the CloudEvent).

:func:`ensure_local_pubsub` creates the topics and the subscriptions that deliver to the
Pub/Sub-triggered functions on the emulator; it is idempotent and repoints existing
subscriptions at the current gateway address. Two deliveries:

- ``relay`` (what ``keeper functions`` runs): pull subscriptions that :class:`keeper.relay.PubSubRelay`
  drains into the functions as Eventarc-style CloudEvents, many messages at once, ordered per key;
- ``push``: the emulator's own push to ``.../<function>/projects/P/topics/T``. Simple, but the
  emulator keeps at most two pushes in flight per subscription, so it persists only a few
  snapshots per second.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from keeper.relay import Route

_log = logging.getLogger(__name__)

_SIGNATURE_ENV = "FUNCTION_SIGNATURE_TYPE"

REPO_ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS_SOURCE = REPO_ROOT / "functions" / "main.py"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def function_names() -> tuple[str, ...]:
    from functions import main

    return (*main.CALLABLES, *main.HTTP_FUNCTIONS, *main.PUBSUB_FUNCTIONS)


class FunctionsGateway:
    """A WSGI app routing ``/<project>/<region>/<function>[/...]`` to per-function apps."""

    def __init__(self, project: str, region: str, source: Path = FUNCTIONS_SOURCE,
                 names: Iterable[str] | None = None) -> None:
        import functions_framework

        from functions import main

        self.project = project
        self.region = region
        self.apps: dict[str, WsgiApp] = {}
        # create_app records each function's signature type in os.environ (FUNCTION_SIGNATURE_TYPE) and
        # falls back to that variable for functions no decorator registered (the callables): left set
        # to "cloudevent" after a Pub/Sub function, it would turn the next gateway built in this
        # process, or in a child inheriting the environment, into CloudEvent parsers for every
        # callable. So each type is given explicitly and the variable is put back as it was.
        before = os.environ.get(_SIGNATURE_ENV)
        try:
            for name in names if names is not None else function_names():
                kind = "cloudevent" if name in main.PUBSUB_FUNCTIONS else "http"
                app = functions_framework.create_app(  # type: ignore[no-untyped-call]
                    target=name, source=str(source), signature_type=kind)
                self.apps[name] = app
        finally:
            if before is None:
                os.environ.pop(_SIGNATURE_ENV, None)
            else:
                os.environ[_SIGNATURE_ENV] = before

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        parts = path.lstrip("/").split("/", 3)
        if path == "/" or parts == [""]:
            return self._reply(start_response, "200 OK", {
                "project": self.project, "region": self.region, "functions": sorted(self.apps)})
        if len(parts) < 3 or parts[0] != self.project or parts[1] != self.region or parts[2] not in self.apps:
            return self._reply(start_response, "404 Not Found", {"error": {
                "status": "NOT_FOUND",
                "message": f"no function at {path[:200]}; functions are served at "
                           f"/{self.project}/{self.region}/<function>"}})
        name = parts[2]
        rest = "/" + parts[3] if len(parts) > 3 else "/"
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + f"/{parts[0]}/{parts[1]}/{name}"
        environ["PATH_INFO"] = rest
        return self.apps[name](environ, start_response)

    @staticmethod
    def _reply(start_response: Callable[..., Any], status: str, body: Mapping[str, Any]) -> list[bytes]:
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


class GatewayServer:
    """A threaded WSGI server for the gateway; ``serve_forever`` in the foreground or ``start``."""

    def __init__(self, gateway: FunctionsGateway, host: str, port: int) -> None:
        from werkzeug.serving import make_server

        self.gateway = gateway
        self._server = make_server(host, port, gateway, threaded=True)
        self.port = int(self._server.server_port)
        self._thread: threading.Thread | None = None

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="functions-gateway",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)


Delivery = Literal["push", "relay"]
#: Pub/Sub-triggered function -> the role of the topic it listens to.
TRIGGERS = {"persistSnapshot": "snapshots", "recordConnectionEvent": "connection_events",
            "recordMessageEvent": "messages"}


@dataclass(frozen=True)
class LocalPubSub:
    """What :func:`ensure_local_pubsub` set up: topic ids, and per trigger its subscription and endpoint."""

    topics: tuple[str, ...]
    delivery: Delivery
    routes: tuple[Route, ...]

    @property
    def push(self) -> Mapping[str, str]:
        """Subscription path -> function endpoint it delivers to."""
        return {route.subscription: route.endpoint for route in self.routes}


def ensure_local_pubsub(project: str, functions_base: str, *, topics: Mapping[str, str] | None = None,
                        suffix: str = "", delivery: Delivery = "push") -> LocalPubSub:
    """Create the topics and subscriptions of the local stack on the Pub/Sub emulator.

    ``topics`` maps a role (``snapshots``, ``connection_events``, ``messages``, ``alerts``,
    ``outbox``) to a topic id; defaults come from the functions' configuration. The ``outbox`` topic
    gets no subscription here: each connector makes its own (``connector/outbox.py``). ``suffix`` is appended to
    subscription ids (tests use it to keep runs apart). With ``delivery="relay"`` the subscriptions
    are pull subscriptions (``<function>-relay<suffix>``) for a :class:`~keeper.relay.PubSubRelay`
    over the returned routes, and the push subscriptions of an earlier push set-up are deleted so
    that nothing is delivered twice; with ``"push"`` it is the other way round. Ordering is on
    either way. Needs ``PUBSUB_EMULATOR_HOST``.
    """
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    from functions.config import FunctionsConfig

    config = FunctionsConfig.from_env()
    names = {"snapshots": config.topic_snapshots, "connection_events": config.topic_connection_events,
             "messages": config.topic_messages, "alerts": config.topic_alerts, "outbox": config.topic_outbox,
             **(topics or {})}
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    for topic in names.values():
        with contextlib.suppress(gexc.AlreadyExists):
            publisher.create_topic(name=publisher.topic_path(project, topic))
    routes: list[Route] = []
    base = functions_base.rstrip("/")
    with subscriber:
        for function, role in TRIGGERS.items():
            topic_path = publisher.topic_path(project, names[role])
            kinds = {"push": subscriber.subscription_path(project, f"{function}-push{suffix}"),
                     "relay": subscriber.subscription_path(project, f"{function}-relay{suffix}")}
            sub_path = kinds[delivery]
            if delivery == "push":
                endpoint = f"{base}/{function}/projects/{project}/topics/{names[role]}"
                push_config = pubsub_v1.types.PushConfig(push_endpoint=endpoint)
            else:
                endpoint = f"{base}/{function}"
                push_config = pubsub_v1.types.PushConfig()
            try:
                subscriber.create_subscription(request={
                    "name": sub_path, "topic": topic_path, "push_config": push_config,
                    "ack_deadline_seconds": 60, "enable_message_ordering": True,
                })
            except gexc.AlreadyExists:
                subscriber.modify_push_config(request={"subscription": sub_path, "push_config": push_config})
            other = kinds["relay" if delivery == "push" else "push"]
            with contextlib.suppress(gexc.NotFound):
                subscriber.delete_subscription(request={"subscription": other})
            routes.append(Route(function=function, topic=topic_path, subscription=sub_path, endpoint=endpoint))
            _log.info("%s subscription %s -> %s", delivery, sub_path, endpoint)
    return LocalPubSub(tuple(names.values()), delivery, tuple(routes))
