"""Fixtures for the functions' integration tests: one functions gateway for the whole run.

The gateway is ``keeper functions`` as a child process on a free port, on the session's Firestore
and Pub/Sub emulators, with its own topics (unique names) and push subscriptions, a shared
connector / scheduler token, and ``FIREBASE_AUTH_EMULATOR_HOST`` set so unsigned emulator ID tokens
verify. The Auth emulator itself is started only by the test that drives the Firebase JS SDK, on
the port the gateway was told about.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from keeper.procs import ChildProcess, free_port, http_ok

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-central1"
CONNECTOR_TOKEN = "test-connector-token"
SCHEDULER_TOKEN = "test-scheduler-token"
HTTP_TIMEOUT_S = 15.0


def emulator_id_token(project: str, uid: str, *, admin: bool = False) -> str:
    """An unsigned ID token as the Firebase Auth emulator issues them (accepted only in emulator mode)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": uid, "user_id": uid,
        "iat": now, "exp": now + 3600, "auth_time": now,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
    }
    if admin:
        payload["admin"] = True

    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@dataclass(frozen=True)
class Gateway:
    base: str
    port: int
    project: str
    auth_port: int
    topics: dict[str, str]
    process: ChildProcess
    env: dict[str, str]

    def url(self, function: str) -> str:
        return f"{self.base}/{function}"

    def call(self, function: str, data: Any, uid: str | None = "alice", *, admin: bool = False,
             token: str | None = None) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = token
        elif uid is not None:
            headers["Authorization"] = f"Bearer {emulator_id_token(self.project, uid, admin=admin)}"
        return requests.post(self.url(function), data=json.dumps({"data": data}), headers=headers,
                             timeout=HTTP_TIMEOUT_S)

    def sync(self, body: Any, token: str = CONNECTOR_TOKEN) -> requests.Response:
        return requests.post(self.url("connectorSync"), json=body, timeout=HTTP_TIMEOUT_S,
                             headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="session")
def functions_gateway(firestore_emulator: str, pubsub_emulator: str, project_id: str,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    from keeper.gateway import ensure_local_pubsub

    home = tmp_path_factory.mktemp("functions-home")
    port, auth_port = free_port(), free_port()
    suffix = uuid.uuid4().hex[:8]
    topics = {"snapshots": f"session-snapshots-{suffix}", "connection_events": f"connection-events-{suffix}",
              "messages": f"messages-{suffix}", "alerts": f"alerts-{suffix}", "outbox": f"outbox-{suffix}"}
    env = {
        **os.environ,
        "FIRESTORE_EMULATOR_HOST": firestore_emulator, "PUBSUB_EMULATOR_HOST": pubsub_emulator,
        "FIREBASE_AUTH_EMULATOR_HOST": f"127.0.0.1:{auth_port}",
        "KEEPER_PROJECT": project_id, "GOOGLE_CLOUD_PROJECT": project_id, "GCLOUD_PROJECT": project_id,
        "KEEPER_REGION": REGION, "KEEPER_HOME": str(home), "KEEPER_KEK_FILE": str(home / "kek.json"),
        "KEEPER_CONNECTOR_TOKEN": CONNECTOR_TOKEN, "KEEPER_SCHEDULER_TOKEN": SCHEDULER_TOKEN,
        "KEEPER_TOPIC_SNAPSHOTS": topics["snapshots"],
        "KEEPER_TOPIC_CONNECTION_EVENTS": topics["connection_events"],
        "KEEPER_TOPIC_ALERTS": topics["alerts"],
        "KEEPER_TOPIC_MESSAGES": topics["messages"], "KEEPER_TOPIC_OUTBOX": topics["outbox"],
    }
    base = f"http://127.0.0.1:{port}/{project_id}/{REGION}"
    log_dir = REPO_ROOT / ".keeper" / "test-logs" / time.strftime("%Y%m%d-%H%M%S")
    process = ChildProcess("functions-gateway",
                           [sys.executable, "-m", "keeper.cli", "functions", "--port", str(port), "--no-pubsub",
                            "--no-schedules"],  # tests call healthCheck and cleanup themselves
                           log_path=log_dir / f"functions-gateway-{suffix}.log", env=env, cwd=REPO_ROOT,
                           ready=lambda: http_ok(f"http://127.0.0.1:{port}/"), ready_timeout_s=60.0)
    process.start()
    try:
        ensure_local_pubsub(project_id, base, topics=topics, suffix=f"-{suffix}")
        yield Gateway(base, port, project_id, auth_port, topics, process, env)
    finally:
        process.stop()
        if os.environ.get("KEEPER_SHOW_GATEWAY_LOG"):
            print(process.log_tail(80))
