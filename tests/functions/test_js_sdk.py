"""The callables through the real Firebase JS SDK (``connectFunctionsEmulator``), signed in on the
Firebase Auth emulator: the frontend's exact path to addAccount and listAccounts."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from typing import Any

import pytest
import requests

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


def _settle_emulator(host: str, project: str, timeout_s: float = 60.0) -> None:
    """Wait until the emulator resets the database again: for a while after a JS SDK client with listeners
    went away, its reset answers 499, which would fail the next test's fixture."""
    import urllib.error

    from tests.conftest import clear_firestore

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            clear_firestore(host, project)
            return
        except urllib.error.HTTPError as exc:
            if exc.code != 499 or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _sign_up(auth_port: int, email: str, password: str) -> str:
    """A user on the Auth emulator; returns its uid."""
    response = requests.post(
        f"http://127.0.0.1:{auth_port}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=demo-api-key",
        json={"email": email, "password": password, "returnSecureToken": True}, timeout=15)
    response.raise_for_status()
    return str(response.json()["localId"])


def test_the_frontend_contract_example_listens_to_a_chat_and_sends_into_it(
        functions_gateway: Gateway, firestore_client: Any, firestore_emulator: str) -> None:
    # tests/js/chat.mjs is the example of docs/ARCHITECTURE.md ("Frontend contract"): Firestore listeners on a
    # chat's messages and summary (rules enforced by the emulator), sendMessage through httpsCallable.
    from datetime import UTC, datetime

    from shared.events import MessageKey, MessageReceived, MessageStatus, MessageStatusUpdate
    from tests.functions.test_messages_integration import linked_account, post_event

    node = shutil.which("node")
    assert node is not None, "node is not on PATH: install Node.js 20+"
    gw = functions_gateway
    chat = "40711111111@s.whatsapp.net"
    log_dir = REPO_ROOT / ".keeper" / "test-logs" / time.strftime("%Y%m%d-%H%M%S")
    auth = emulators.auth(gw.auth_port, project=gw.project, log_dir=log_dir)
    auth.start()
    try:
        uid = _sign_up(gw.auth_port, "dana@example.com", "secret12")
        linked_account(firestore_client, "acc-web", owner=uid)
        linked_account(firestore_client, "acc-other", owner="someone-else", phone="+40700000009")
        hello = MessageReceived("acc-web", MessageKey(chat, False, "3EB0WEB1"), {"conversation": "hi dana"}, chat,
                                chat, int(datetime.now(UTC).timestamp()) - 5, "text", "hi dana", "Bob")
        assert post_event(gw, hello.to_json(), hello.attributes()).status_code == 200
        process = subprocess.Popen(
            [node, str(REPO_ROOT / "tests" / "js" / "chat.mjs"), gw.project, f"127.0.0.1:{gw.auth_port}",
             firestore_emulator, "127.0.0.1", str(gw.port), REGION, "dana@example.com", "secret12", "acc-web", chat,
             "acc-other"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout is not None and process.stderr is not None
            line = process.stdout.readline()
            assert line, process.stderr.read()[-3000:]
            pending = json.loads(line)
            assert pending["step"] == "pending", pending
            assert [m["id"] for m in pending["messages"]] == ["3EB0WEB1", pending["messageId"]]
            sent = MessageStatusUpdate("acc-web", pending["messageId"], chat, MessageStatus.SENT, datetime.now(UTC))
            assert post_event(gw, sent.to_json(), sent.attributes()).status_code == 200
            line = process.stdout.readline()
            assert line, process.stderr.read()[-3000:]
            done = json.loads(line)
            process.wait(NODE_TIMEOUT_S)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
    finally:
        auth.stop()
        _settle_emulator(firestore_emulator, gw.project)
    assert done["step"] == "done"
    assert done["repeatedId"] == done["messageId"]  # the same clientMessageId is the same send
    assert done["denied"] == "permission-denied"
    assert done["badTo"]["code"] == "functions/invalid-argument" and done["badTo"]["details"] == {"field": "to"}
    texts = [(m["fromMe"], m["text"], m["status"]) for m in done["messages"]]
    assert texts == [(False, "hi dana", None), (True, "hello from the web", "sent")]
    assert done["summary"]["unreadCount"] == 0 and done["summary"]["lastMessage"]["id"] == done["messageId"]
