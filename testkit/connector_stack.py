"""The real local stack for the connector's integration tests.

Firestore and Pub/Sub are the gcloud emulators (session fixtures); the functions run in their
gateway as a child process (``keeper functions``) with topics and push subscriptions unique to
the test; the connector runs either in-process (``ConnectorService``) or as a child process
(``python -m connector``), so tests can SIGTERM or kill -9 it.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keeper.procs import ChildProcess, free_port, http_ok, port_open

if TYPE_CHECKING:
    from keeper.gateway import Delivery

REGION = "us-central1"
TOKEN = "integration-connector-token"


def unsigned_id_token(project: str, uid: str) -> str:
    """A Firebase Auth emulator style ID token (unsigned; accepted when the emulator host is set)."""

    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    payload = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "auth_time": now,
               "user_id": uid, "sub": uid, "iat": now, "exp": now + 3600,
               "firebase": {"identities": {}, "sign_in_provider": "custom"}}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."


@dataclass
class Stack:
    project: str
    suffix: str
    home: Path
    functions_port: int
    topics: dict[str, str]
    base_env: dict[str, str]
    children: Callable[..., ChildProcess]
    connectors: list[ChildProcess] = field(default_factory=list)
    functions: ChildProcess | None = None

    def functions_log(self) -> str:
        assert self.functions is not None
        return self.functions.log_path.read_text(errors="replace")

    @property
    def functions_base(self) -> str:
        return f"http://127.0.0.1:{self.functions_port}/{self.project}/{REGION}"

    # --- calls --------------------------------------------------------------------------------

    def call(self, function: str, data: dict[str, Any], uid: str = "alice") -> Any:
        body = json.dumps({"data": data}).encode()
        request = urllib.request.Request(
            f"{self.functions_base}/{function}", data=body, method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": f"Bearer {unsigned_id_token(self.project, uid)}"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.load(response)["result"]
        except urllib.error.HTTPError as exc:  # say what the function answered, not just the status
            raise AssertionError(f"{function} answered {exc.code}: {exc.read()[:500]!r}") from None

    def add_account(self, phone: str, method: str = "code", uid: str = "alice") -> str:
        return str(self.call("addAccount", {"phoneNumber": phone, "method": method}, uid)["accountId"])

    # --- connector ----------------------------------------------------------------------------

    def connector_env(self, connector_id: str, port: int, **extra: str) -> dict[str, str]:
        env = dict(self.base_env)
        env.update({
            "KEEPER_FUNCTIONS_URL": self.functions_base,
            "KEEPER_CONNECTOR_TOKEN": TOKEN,
            "KEEPER_CONNECTOR_ID": connector_id,
            "PORT": str(port),
            "KEEPER_CACHE_DIR": str(self.home / f"cache-{connector_id}"),
            "KEEPER_SYNC_INTERVAL_S": "1",
            "KEEPER_LOG_LEVEL": "INFO",
        })
        env.update(extra)
        return env

    def start_connector(self, connector_id: str, **extra: str) -> tuple[ChildProcess, int]:
        port = free_port()
        env = self.connector_env(connector_id, port, **extra)
        proc = self.children(f"connector-{connector_id}", [sys.executable, "-m", "connector"], env=env,
                             ready=lambda: http_ok(f"http://127.0.0.1:{port}/readyz"), ready_timeout_s=30)
        self.connectors.append(proc)
        return proc, port


def start_stack(children: Callable[..., ChildProcess], project: str, suffix: str, home: Path,
                lease_ttl_s: float = 10.0, delivery: Delivery = "push", **extra_env: str) -> Stack:
    """Start the functions gateway for one test and create its topics and subscriptions.

    The lease TTL is short so expiry-driven tests run quickly, yet long enough that a connectorSync
    slowed by a loaded 2-core machine (seconds) does not make the connector give up its sockets.
    ``delivery="push"`` makes the emulator's push subscriptions (suffixed per test); ``"relay"`` runs
    the gateway as ``keeper functions`` does, creating its pull subscriptions and relaying itself."""
    from keeper.gateway import ensure_local_pubsub

    home.mkdir(parents=True, exist_ok=True)
    topics = {"snapshots": f"snapshots-{suffix}", "connection_events": f"connection-{suffix}",
              "messages": f"messages-{suffix}", "alerts": f"alerts-{suffix}", "outbox": f"outbox-{suffix}"}
    env = dict(os.environ)
    env.update({
        "KEEPER_PROJECT": project, "GOOGLE_CLOUD_PROJECT": project, "GCLOUD_PROJECT": project,
        "KEEPER_HOME": str(home), "KEEPER_KEK_FILE": str(home / "kek.json"),
        "KEEPER_CONNECTOR_TOKEN": TOKEN, "KEEPER_LEASE_TTL_S": str(lease_ttl_s),
        "KEEPER_TOPIC_SNAPSHOTS": topics["snapshots"],
        "KEEPER_TOPIC_CONNECTION_EVENTS": topics["connection_events"],
        "KEEPER_TOPIC_MESSAGES": topics["messages"], "KEEPER_TOPIC_ALERTS": topics["alerts"],
        "KEEPER_TOPIC_OUTBOX": topics["outbox"],
        "FIREBASE_AUTH_EMULATOR_HOST": env.get("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9"),
    })
    env.update(extra_env)
    port = free_port()
    pubsub = ["--no-pubsub"] if delivery == "push" else ["--delivery", "relay"]
    functions = children("functions", [sys.executable, "-m", "keeper.cli", "functions", "--port", str(port),
                                       *pubsub],
                         env=env, ready=lambda: port_open("127.0.0.1", port), ready_timeout_s=60)
    stack = Stack(project, suffix, home, port, topics, env, children, functions=functions)
    if delivery == "push":
        ensure_local_pubsub(project, stack.functions_base, topics=topics, suffix=f"-{suffix}")
    return stack


def kill_hard(proc: ChildProcess) -> None:
    """kill -9 the connector process (no shutdown, no flush)."""
    assert proc.process is not None
    os.kill(proc.process.pid, signal.SIGKILL)
    proc.process.wait(timeout=5)
