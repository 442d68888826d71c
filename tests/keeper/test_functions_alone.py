"""`keeper functions` run alone, as the README's table says: it finds the emulators from the stack's ports
alone, and runs the schedules (healthCheck, cleanup) on their local intervals."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from keeper.config import LOCAL_CONNECTOR_TOKEN
from keeper.procs import free_port, port_open
from tests.support.stack import REPO_ROOT, wait_for

pytestmark = pytest.mark.integration


def test_functions_alone_reach_the_emulators_and_run_the_schedules(
        children: Any, firestore_emulator: str, pubsub_emulator: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST",
                        "KEEPER_CONNECTOR_TOKEN", "KEEPER_SCHEDULER_TOKEN", "GOOGLE_CLOUD_PROJECT")}
    env.update({
        "KEEPER_HOME": str(tmp_path), "KEEPER_PROJECT": "demo-keeper-alone", "KEEPER_FUNCTIONS_PORT": str(port),
        "KEEPER_FIRESTORE_PORT": firestore_emulator.rsplit(":", 1)[1],
        "KEEPER_PUBSUB_PORT": pubsub_emulator.rsplit(":", 1)[1],
        "KEEPER_HEALTH_CHECK_INTERVAL_S": "1", "KEEPER_CLEANUP_INTERVAL_S": "1",
    })
    functions = children("functions", [sys.executable, "-m", "keeper.cli", "functions"], env=env, cwd=REPO_ROOT,
                         ready=lambda: port_open("127.0.0.1", port), ready_timeout_s=120)

    def ran_both() -> bool:
        log = functions.log_tail(400)
        return "schedule healthCheck: " in log and "schedule cleanup: " in log
    assert wait_for(ran_both, 60), functions.log_tail()

    # the connector's local token is accepted without being configured (what `keeper up` passes)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/demo-keeper-alone/us-central1/connectorSync", method="POST",
        data=json.dumps({"connectorId": "c-alone", "capacity": 1, "held": [], "release": [],
                         "publicKey": ""}).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {LOCAL_CONNECTOR_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status != 401, functions.log_tail()
    log = functions.log_tail(400)
    assert "DefaultCredentialsError" not in log
    assert "schedule healthCheck failed" not in log
    assert '"POST /' not in log  # no line per request
