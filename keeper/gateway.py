"""The local functions gateway: every function from one process, at Firebase emulator URLs.

``http://127.0.0.1:<port>/<project>/<region>/<function>`` reaches ``<function>`` from
``functions/main.py``, so the Firebase JS SDK's ``connectFunctionsEmulator`` and the connector use
the same URLs they would use against the Firebase emulator. Each function gets its own
functions-framework app (``create_app``), exactly as it runs when deployed; the gateway only
routes by path and hands the rest of the path to the function (Pub/Sub push endpoints end in
``/projects/P/topics/T``, which functions-framework reads to build the CloudEvent).

:func:`ensure_local_pubsub` creates the topics and the push subscriptions that deliver to the
Pub/Sub-triggered functions on the emulator; it is idempotent and repoints existing
subscriptions at the current gateway address.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

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

        self.project = project
        self.region = region
        self.apps: dict[str, WsgiApp] = {}
        for name in names if names is not None else function_names():
            app = functions_framework.create_app(target=name, source=str(source))  # type: ignore[no-untyped-call]
            self.apps[name] = app

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


@dataclass(frozen=True)
class LocalPubSub:
    """What :func:`ensure_local_pubsub` set up: topic ids and subscription -> push endpoint."""

    topics: tuple[str, ...]
    push: Mapping[str, str]


def ensure_local_pubsub(project: str, functions_base: str, *, topics: Mapping[str, str] | None = None,
                        suffix: str = "") -> LocalPubSub:
    """Create the topics and push subscriptions of the local stack on the Pub/Sub emulator.

    ``topics`` maps a role (``snapshots``, ``connection_events``, ``messages``, ``alerts``) to a
    topic id; defaults come from the functions' configuration. ``suffix`` is appended to
    subscription ids (tests use it to keep runs apart). Needs ``PUBSUB_EMULATOR_HOST``.
    """
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    from functions.config import FunctionsConfig
    from shared.events import TOPIC_MESSAGES

    config = FunctionsConfig.from_env()
    names = {"snapshots": config.topic_snapshots, "connection_events": config.topic_connection_events,
             "messages": TOPIC_MESSAGES, "alerts": config.topic_alerts, **(topics or {})}
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    for topic in names.values():
        with contextlib.suppress(gexc.AlreadyExists):
            publisher.create_topic(name=publisher.topic_path(project, topic))
    routes = {"persistSnapshot": names["snapshots"], "recordConnectionEvent": names["connection_events"]}
    push: dict[str, str] = {}
    base = functions_base.rstrip("/")
    with subscriber:
        for function, topic in routes.items():
            sub_path = subscriber.subscription_path(project, f"{function}-push{suffix}")
            endpoint = f"{base}/{function}/projects/{project}/topics/{topic}"
            push_config = pubsub_v1.types.PushConfig(push_endpoint=endpoint)
            try:
                subscriber.create_subscription(request={
                    "name": sub_path, "topic": publisher.topic_path(project, topic),
                    "push_config": push_config, "ack_deadline_seconds": 60,
                    "enable_message_ordering": True,
                })
            except gexc.AlreadyExists:
                subscriber.modify_push_config(request={"subscription": sub_path, "push_config": push_config})
            push[sub_path] = endpoint
            _log.info("push subscription %s -> %s", sub_path, endpoint)
    return LocalPubSub(tuple(names.values()), push)
