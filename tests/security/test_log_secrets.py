"""No key material in the logs of an end-to-end run.

The real stack runs as child processes with their logs kept: the functions gateway (callables,
connectorSync, Pub/Sub push persistence) on the Firestore and Pub/Sub emulators, the WhatsApp
simulator, and the connector with the real protocol engine (at DEBUG). One account is paired with a
pairing code and one by QR; they connect, the first receives a message, is saved, and survives a
graceful connector restart (restore through connectorSync). Then every log line of every process is
searched for every secret the run produced: the accounts' private keys, ADV secrets and Signal keys
(from the stored states), the KEK and the vault's sealing key, the connectors' cache keys, and the
message's ciphertext.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from keeper.procs import ChildProcess, free_port, http_ok
from shared.vault.config import VaultConfig
from shared.vault.kek import LocalFileKek, sealing_private_key
from testkit.connector_stack import Stack, start_stack
from tests.security.secrets_scan import Secret, encodings, scan, secrets_in_state

PHONE = "+40700000001"
QR_PHONE = "+40700000002"
CONTACT = "+40711111111"
STEP_TIMEOUT_S = 60.0
POLL_S = 0.25


def _eventually(check: Callable[[], Any], what: str, timeout_s: float = STEP_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def _control(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _account(stack: Stack, account_id: str) -> dict[str, Any]:
    return dict(stack.call("getAccount", {"accountId": account_id}))


def _status_is(stack: Stack, account_id: str, status: str) -> Callable[[], bool]:
    return lambda: _account(stack, account_id)["status"] == status


def _device(sim_base: str) -> dict[str, Any]:
    (device,) = _control(sim_base, "GET", f"/v1/phones/{quote(PHONE)}/devices")["devices"]
    return dict(device)


def _start_simulator(children: Any, state_dir: Path) -> tuple[ChildProcess, str, str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = children("simulator", [sys.executable, "-m", "simulator", "--port", str(port), "--state-dir",
                                  str(state_dir)], ready=lambda: http_ok(base + "/healthz"), ready_timeout_s=30)
    root = _control(base, "GET", "/v1/root-key")["publicKey"]
    return proc, base, str(root)


@pytest.mark.integration
@pytest.mark.slow
def test_no_key_material_in_the_logs_of_an_end_to_end_run(
    children: Any, project_id: str, firestore_client: Any, pubsub_emulator: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    stack = start_stack(children, project_id, uuid.uuid4().hex[:10], home)
    simulator, sim_base, root_key = _start_simulator(children, tmp_path / "simulator")
    _control(sim_base, "POST", "/v1/phones", {"phone": PHONE})
    engine = {"KEEPER_WA_URL": sim_base.replace("http://", "ws://") + "/ws/chat", "KEEPER_WA_ROOT_KEY": root_key,
              "KEEPER_LOG_LEVEL": "DEBUG"}  # the widest logs the connector writes

    # Pair one account with a code and one by QR, as a user would: both reach the frontend through the
    # functions (the QR text carries the ADV secret, so its path must not log it either).
    _control(sim_base, "POST", "/v1/phones", {"phone": QR_PHONE})
    account_id = stack.add_account(PHONE, "code")
    qr_account_id = stack.add_account(QR_PHONE, "qr")
    first, _ = stack.start_connector("c-first", **engine)
    code = _eventually(lambda: (_account(stack, account_id).get("pairing") or {}).get("code"), "a pairing code")
    _control(sim_base, "POST", f"/v1/phones/{quote(PHONE)}/link-code", {"code": code})
    qr = _eventually(lambda: (_account(stack, qr_account_id).get("pairing") or {}).get("qr"), "a QR")
    _control(sim_base, "POST", f"/v1/phones/{quote(QR_PHONE)}/scan", {"qr": qr})
    for pending in (account_id, qr_account_id):
        _eventually(_status_is(stack, pending, "connected"), f"{pending} to connect")

    # A contact's message (its ciphertext is secret too): the connector acknowledges it to WhatsApp only
    # once Pub/Sub has it, so an empty pending list means the whole message path ran.
    ciphertext = secrets.token_bytes(48)
    _eventually(lambda: _device(sim_base)["liveSockets"] == 1, "a live socket to deliver the message to")
    sent = _control(sim_base, "POST", f"/v1/phones/{quote(PHONE)}/messages",
                    {"from": CONTACT, "ciphertext": base64.b64encode(ciphertext).decode()})
    assert sent["sentTo"] == [1]
    _eventually(lambda: _control(sim_base, "GET", f"/v1/phones/{quote(PHONE)}/devices/1/messages")["messages"] == [],
                "the message to be acknowledged")
    _eventually(lambda: _account(stack, account_id).get("lastSavedAt"), "a saved session")
    logins = _device(sim_base)["loginCount"]

    # Graceful restart: the second connector restores the account through connectorSync and logs in.
    first.stop()
    second, _ = stack.start_connector("c-second", **engine)
    _eventually(lambda: _device(sim_base)["loginCount"] > logins and _device(sim_base)["liveSockets"] == 1,
                "the restored account to log in again")
    second.stop()
    simulator.stop()

    vault = VaultConfig.from_env({"KEEPER_PROJECT": project_id, "KEEPER_KEK_PROVIDER": "local",
                                  "KEEPER_KEK_FILE": str(home / "kek.json")}).vault(firestore_client)
    secrets_found = [*_state_secrets(vault, account_id), *_state_secrets(vault, qr_account_id),
                     *_service_secrets(home)]
    secrets_found.append(Secret("message ciphertext", ciphertext))
    log_dir = first.log_path.parent
    logs = {path.name: path.read_text(errors="replace") for path in sorted(log_dir.glob("*.log"))}

    # The scan is only as good as what it read: every process logged, and the run really happened.
    assert {"functions.log", "simulator.log", "connector-c-first.log", "connector-c-second.log"} <= set(logs)
    assert "session restored" in logs["connector-c-second.log"]
    assert account_id in logs["connector-c-first.log"] and account_id in logs["functions.log"]
    assert len(secrets_found) >= 80, [s.name for s in secrets_found]
    assert any(s.name.startswith("connector cache key") for s in secrets_found)

    findings = scan(logs, secrets_found)
    assert not findings, "key material in the logs:\n" + "\n".join(
        f"  {f.secret} as {f.encoding} in {f.source}:{f.line_number}" for f in findings[:20])


def _state_secrets(vault: Any, account_id: str) -> list[Secret]:
    found = [Secret(f"{account_id}{s.name}", s.value)
             for s in secrets_in_state(vault.restore(account_id).state.to_json())]
    names = {s.name for s in found}
    assert {f"{account_id}/creds/{key}" for key in ("noiseKey/private", "signedIdentityKey/private",
                                                     "advSecretKey")} <= names
    return found


def _service_secrets(home: Path) -> list[Secret]:
    kek = LocalFileKek(home / "kek.json")
    version = kek.current_version()
    sealing = sealing_private_key(kek.key(version)).private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    found = [Secret(f"KEK v{version}", kek.key(version)), Secret("vault sealing key", sealing)]
    for key_file in home.glob("cache-*/cache.key"):
        found.append(Secret(f"connector cache key {key_file.parent.name}", key_file.read_bytes()))
    return found


def test_the_scanner_finds_every_encoding(tmp_path: Path) -> None:
    secret = Secret("probe", bytes(range(100, 132)))
    for encoding, text in encodings(secret.value).items():
        line = f'{{"severity": "INFO", "message": "oops {text}"}}'
        found = scan({"x.log": "clean line\n" + line}, [secret])
        if encoding == "int-list":
            assert found, encoding
        else:
            assert [(f.encoding, f.line_number) for f in found if f.encoding == encoding] == [(encoding, 2)]
    assert scan({"x.log": "nothing here"}, [secret]) == []


def test_secrets_in_state_picks_private_parts_only() -> None:
    private, public = b"\x01" * 32, b"\x02" * 32
    adv = base64.b64encode(b"\x03" * 32).decode()
    state = {"creds": {"noiseKey": {"private": private, "public": public}, "advSecretKey": adv,
                       "registrationId": 7},
             "keys": {"pre-key": {"1": {"private": private, "public": public}}}}
    found = {s.name: s.value for s in secrets_in_state(state)}
    assert found == {"/creds/noiseKey/private": private, "/creds/advSecretKey": b"\x03" * 32,
                     "/keys/pre-key/1/private": private}
