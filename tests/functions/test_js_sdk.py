"""The callables through the real Firebase JS SDK (``connectFunctionsEmulator``), signed in on the
Firebase Auth emulator: the frontend's exact path to addAccount and listAccounts."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest

from keeper import emulators
from tests.functions.conftest import REGION, REPO_ROOT, Gateway

pytestmark = pytest.mark.integration

NODE_TIMEOUT_S = 90.0


def test_add_and_list_accounts_through_the_firebase_js_sdk(functions_gateway: Gateway,
                                                           firestore_client: Any) -> None:
    node = shutil.which("node")
    assert node is not None, "node is not on PATH: install Node.js 20+"
    assert (REPO_ROOT / "node_modules" / "firebase").is_dir(), "run `make npm` (npm ci) first"
    gw = functions_gateway
    log_dir = REPO_ROOT / ".keeper" / "test-logs" / time.strftime("%Y%m%d-%H%M%S")
    auth = emulators.auth(gw.auth_port, project=gw.project, log_dir=log_dir)
    auth.start()
    try:
        completed = subprocess.run(
            [node, str(REPO_ROOT / "tests" / "js" / "callables.mjs"), gw.project, f"127.0.0.1:{gw.auth_port}",
             "127.0.0.1", str(gw.port), REGION, "+40711111111"],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=NODE_TIMEOUT_S, check=False)
    finally:
        auth.stop()
    assert completed.returncode == 0, completed.stderr[-3000:]
    out = json.loads(completed.stdout.strip().splitlines()[-1])
    account_id = out["added"]["accountId"]
    assert [a["accountId"] for a in out["listed"]["accounts"]] == [account_id]
    assert out["listed"]["accounts"][0]["status"] == "pairing"
    assert out["badError"]["code"] == "functions/invalid-argument"
    assert "E.164" in out["badError"]["message"]
    assert out["unauthError"]["code"] == "functions/unauthenticated"
    doc = firestore_client.collection("accounts").document(account_id).get().to_dict()
    assert doc["ownerUid"] == out["uid"]
