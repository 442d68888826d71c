"""The functions over HTTP: callables with emulator ID tokens, connectorSync, scheduler endpoints,
and persistence through real Pub/Sub push deliveries, all against the emulators."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.cloud import pubsub_v1  # type: ignore[attr-defined]
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import sealing
from shared.events import PairingCode, SnapshotAttributes
from shared.snapshot import Snapshot, snapshot_aad
from testkit.auth_states import registered_state
from tests.functions.conftest import CONNECTOR_TOKEN, SCHEDULER_TOKEN, Gateway

pytestmark = pytest.mark.integration

POLL_TIMEOUT_S = 30.0
CALLABLES = ("addAccount", "listAccounts", "getAccount", "reconnectAccount", "removeAccount", "getMetrics")


def _wait_for(what: str, probe: Callable[[], Any], timeout_s: float = POLL_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _error(response: requests.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["status"]


def _connector_body(connector_id: str, key: X25519PrivateKey, held: dict[str, int] | None = None) -> dict[str, Any]:
    return {"connectorId": connector_id, "capacity": 100,
            "publicKey": base64.b64encode(sealing.public_key_bytes(key)).decode(),
            "held": [{"accountId": a, "generation": g} for a, g in (held or {}).items()]}


def test_add_list_get_are_scoped_to_the_owner(functions_gateway: Gateway, firestore_client: Any) -> None:
    gw = functions_gateway
    added = gw.call("addAccount", {"phoneNumber": "+40700000001", "method": "code"}, "alice")
    assert added.status_code == 200, added.text
    account_id = added.json()["result"]["accountId"]
    doc = firestore_client.collection("accounts").document(account_id).get().to_dict()
    assert (doc["ownerUid"], doc["status"], doc["phoneNumber"]) == ("alice", "pairing", "+40700000001")
    mine = gw.call("listAccounts", None, "alice").json()["result"]["accounts"]
    assert [a["accountId"] for a in mine] == [account_id]
    assert gw.call("listAccounts", {}, "bob").json()["result"]["accounts"] == []
    assert _error(gw.call("getAccount", {"accountId": account_id}, "bob")) == (403, "PERMISSION_DENIED")
    got = gw.call("getAccount", {"accountId": account_id}, "root", admin=True)
    assert got.json()["result"]["status"] == "pairing"
    assert _error(gw.call("addAccount", {"phoneNumber": "+40700000001", "method": "qr"}, "alice")) == (
        409, "ALREADY_EXISTS")
    bobs = gw.call("addAccount", {"phoneNumber": "+40700000001", "method": "qr"}, "bob")
    assert bobs.status_code == 200, "another user's number is neither held nor revealed"
    gw.call("removeAccount", {"accountId": bobs.json()["result"]["accountId"]}, "bob")
    removed = gw.call("removeAccount", {"accountId": account_id}, "alice").json()["result"]
    assert removed == {"accountId": account_id, "status": "removed"}
    assert gw.call("removeAccount", {"accountId": account_id}, "alice").json()["result"] == removed


BAD_INPUTS = [
    ("addAccount", {"phoneNumber": "+40700000001", "method": "code"}, "no-auth", (401, "UNAUTHENTICATED")),
    ("addAccount", {"phoneNumber": "+40700000001", "method": "code"}, "bad-auth", (401, "UNAUTHENTICATED")),
    ("addAccount", {"method": "code"}, "alice", (400, "INVALID_ARGUMENT")),
    ("addAccount", {"phoneNumber": "0700 000 001", "method": "code"}, "alice", (400, "INVALID_ARGUMENT")),
    ("addAccount", {"phoneNumber": 40700000001, "method": "code"}, "alice", (400, "INVALID_ARGUMENT")),
    ("addAccount", {"phoneNumber": "+40700000001", "method": "sms"}, "alice", (400, "INVALID_ARGUMENT")),
    ("addAccount", {"phoneNumber": "+40700000001", "method": "code", "x": 1}, "alice", (400, "INVALID_ARGUMENT")),
    ("addAccount", ["+40700000001"], "alice", (400, "INVALID_ARGUMENT")),
    ("addAccount", {"phoneNumber": "+4" + "0" * 20000, "method": "code"}, "alice", (429, "RESOURCE_EXHAUSTED")),
    ("getAccount", {"accountId": "acc_does_not_exist"}, "alice", (404, "NOT_FOUND")),
    ("getAccount", {"accountId": "../../etc"}, "alice", (400, "INVALID_ARGUMENT")),
    ("getAccount", {"accountId": True}, "alice", (400, "INVALID_ARGUMENT")),
    ("getAccount", {}, "alice", (400, "INVALID_ARGUMENT")),
    ("reconnectAccount", {"accountId": "acc_does_not_exist"}, "alice", (404, "NOT_FOUND")),
    ("listAccounts", {"all": True}, "alice", (400, "INVALID_ARGUMENT")),
    ("getMetrics", "everything", "alice", (400, "INVALID_ARGUMENT")),
]


@pytest.mark.parametrize(("function", "data", "who", "expected"), BAD_INPUTS)
def test_bad_input_gets_the_matching_error(functions_gateway: Gateway, function: str, data: Any, who: str,
                                           expected: tuple[int, str]) -> None:
    if who == "no-auth":
        response = functions_gateway.call(function, data, None)
    elif who == "bad-auth":
        response = functions_gateway.call(function, data, token="Bearer not.a.token")
    else:
        response = functions_gateway.call(function, data, who)
    assert _error(response) == expected
    assert response.json()["error"]["message"]


@pytest.mark.parametrize("body", [b"", b"{", b'{"data": 1, "extra": 2}', b'"just a string"', b"\xff\xfe"])
def test_malformed_bodies_are_invalid_argument(functions_gateway: Gateway, body: bytes) -> None:
    response = requests.post(functions_gateway.url("listAccounts"), data=body, timeout=10,
                             headers={"Content-Type": "application/json"})
    assert _error(response) == (400, "INVALID_ARGUMENT")


def test_get_and_wrong_content_type_are_refused(functions_gateway: Gateway) -> None:
    assert requests.get(functions_gateway.url("listAccounts"), timeout=10).status_code == 400
    response = requests.post(functions_gateway.url("listAccounts"), data="data=1", timeout=10,
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert _error(response) == (400, "INVALID_ARGUMENT")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
callable_inputs = st.one_of(
    json_values,
    st.fixed_dictionaries({"phoneNumber": json_values | st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
                           "method": json_values | st.sampled_from(["code", "qr"])}),
    st.fixed_dictionaries({"accountId": json_values | st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True)}),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(function=st.sampled_from(CALLABLES), data=callable_inputs, admin=st.booleans())
def test_no_callable_input_ever_gets_a_server_error(functions_gateway: Gateway, function: str, data: Any,
                                                    admin: bool) -> None:
    response = functions_gateway.call(function, data, "fuzzer", admin=admin)
    assert response.status_code < 500, response.text
    body = response.json()
    assert ("result" in body) != ("error" in body)
    if "error" in body:
        assert body["error"]["status"] != "INTERNAL"


def test_connector_sync_needs_the_connector_token(functions_gateway: Gateway) -> None:
    body = _connector_body("c-1", X25519PrivateKey.generate())
    assert _error(functions_gateway.sync(body, token="wrong")) == (401, "UNAUTHENTICATED")
    response = requests.post(functions_gateway.url("connectorSync"), json=body, timeout=10)
    assert _error(response) == (401, "UNAUTHENTICATED")
    bad = {**body, "publicKey": "AAAA"}
    assert _error(functions_gateway.sync(bad)) == (400, "INVALID_ARGUMENT")


def test_scheduled_endpoints_need_the_scheduler_token(functions_gateway: Gateway, firestore_client: Any) -> None:
    for name in ("healthCheck", "cleanup"):
        assert requests.post(functions_gateway.url(name), timeout=10).status_code == 401
        response = requests.post(functions_gateway.url(name), timeout=30,
                                 headers={"Authorization": f"Bearer {SCHEDULER_TOKEN}"})
        assert response.status_code == 200, response.text
    summary = firestore_client.collection("health").document("summary").get()
    assert summary.exists and summary.to_dict()["sessions"] == 0


def test_scheduled_jobs_run_from_the_cli(functions_gateway: Gateway, firestore_client: Any) -> None:
    completed = subprocess.run([sys.executable, "-m", "keeper.cli", "functions", "--run", "cleanup"],
                               env=functions_gateway.env, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert json.loads(completed.stdout) == {"history": 0, "orphanSessions": 0, "pairingExpired": 0, "pruned": 0,
                                            "purged": 0, "messages": 0, "sendsExpired": 0}


def _publish(gw: Gateway, role: str, data: bytes, attributes: dict[str, str]) -> None:
    publisher = pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
    topic = publisher.topic_path(gw.project, gw.topics[role])
    publisher.publish(topic, data, ordering_key=attributes["accountId"], **attributes).result(timeout=30)


def test_snapshots_published_on_pubsub_land_in_the_vault(functions_gateway: Gateway, firestore_client: Any) -> None:
    gw = functions_gateway
    account_id = gw.call("addAccount", {"phoneNumber": "+40700000042", "method": "qr"}, "alice").json()[
        "result"]["accountId"]
    key = X25519PrivateKey.generate()
    response = gw.sync(_connector_body("c-http", key)).json()
    [claim] = [c for c in response["claimed"] if c["accountId"] == account_id]
    generation = claim["generation"]
    vault_key = base64.b64decode(response["vaultPublicKey"])

    # A pairing code event on the connection-events topic shows up on the account.
    event = PairingCode(account_id, "ABCD1234", _soon(), "c-http", generation)
    _publish(gw, "connection_events", event.to_json(), event.attributes())
    _wait_for("the pairing code", lambda: (firestore_client.collection("accounts").document(account_id).get()
                                           .to_dict().get("pairing") or {}).get("code") == "ABCD1234")

    def publish_state(seed: int) -> None:
        snapshot = Snapshot(account_id=account_id, generation=generation, produced_at=_soon(),
                            connector_id="c-http", state=registered_state(seed))
        sealed = sealing.seal(snapshot.to_bytes(), vault_key, response["vaultKeyId"], snapshot_aad(account_id))
        _publish(gw, "snapshots", sealed, SnapshotAttributes(account_id, generation, "c-http").to_attributes())

    head_ref = firestore_client.collection("whatsapp_sessions").document(account_id)
    publish_state(1)
    head = _wait_for("version 1", lambda: (head_ref.get().to_dict() or {}).get("latestVersion") == 1)
    assert head
    publish_state(1)  # a duplicate: changes nothing
    publish_state(2)  # then a real change
    _wait_for("version 2", lambda: (head_ref.get().to_dict() or {}).get("latestVersion") == 2)
    versions = [d.id for d in head_ref.collection("versions").stream()]
    assert len(versions) == 2, versions
    stored = json.dumps(head_ref.get().to_dict(), default=str)
    assert "noiseKey" not in stored and "private" not in stored
    account = _wait_for("lastSavedAt", lambda: firestore_client.collection("accounts").document(account_id)
                        .get().to_dict().get("lastVersion") == 2)
    assert account

    # The next owner gets version 2 back, sealed to its own key, under a new generation.
    requests.post(gw.url("connectorSync"), timeout=10, headers={"Authorization": f"Bearer {CONNECTOR_TOKEN}"},
                  json={**_connector_body("c-http", key), "release": [{"accountId": account_id,
                                                                       "generation": generation}]})
    firestore_client.collection("accounts").document(account_id).update({"status": "connected"})
    other = X25519PrivateKey.generate()
    claims = gw.sync(_connector_body("c-next", other)).json()["claimed"]
    [restored] = [c for c in claims if c["accountId"] == account_id]
    assert (restored["mode"], restored["version"], restored["generation"]) == ("restore", 2, generation + 1)
    opened = Snapshot.from_bytes(sealing.open_sealed(base64.b64decode(restored["sealedState"]), other, b""))
    assert opened.state == registered_state(2)


def _soon() -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) + timedelta(minutes=2)


def test_oversized_chunked_body_is_refused_without_reading_it_all(functions_gateway: Gateway) -> None:
    def body() -> Any:
        yield b'{"data": {"phoneNumber": "'
        for _ in range(64):
            yield b"9" * 4096
        yield b'", "method": "code"}}'

    response = requests.post(functions_gateway.url("addAccount"), data=body(), timeout=15,
                             headers={"Content-Type": "application/json"})
    assert _error(response) == (429, "RESOURCE_EXHAUSTED")


def test_small_chunked_body_is_served(functions_gateway: Gateway) -> None:
    from tests.functions.conftest import emulator_id_token

    def body() -> Any:
        yield b'{"data": '
        yield b"null}"

    token = emulator_id_token(functions_gateway.project, "chunky")
    response = requests.post(functions_gateway.url("listAccounts"), data=body(), timeout=15,
                             headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"result": {"accounts": []}}


def test_logged_out_event_raises_an_alert_on_the_alerts_topic(functions_gateway: Gateway,
                                                             firestore_client: Any) -> None:
    from datetime import UTC, datetime

    from shared.events import AlertRaised, ConnectionState, ConnectionUpdate, parse_event

    gw = functions_gateway
    subscriber = pubsub_v1.SubscriberClient()
    alerts_sub = subscriber.subscription_path(gw.project, f"alerts-watch-{gw.topics['alerts']}")
    subscriber.create_subscription(request={
        "name": alerts_sub, "topic": subscriber.topic_path(gw.project, gw.topics["alerts"])})
    account_id = gw.call("addAccount", {"phoneNumber": "+40733333333", "method": "code"}, "dave").json()[
        "result"]["accountId"]
    [claim] = [c for c in gw.sync(_connector_body("c-alerts", X25519PrivateKey.generate())).json()["claimed"]
               if c["accountId"] == account_id]
    event = ConnectionUpdate(account_id, "c-alerts", claim["generation"], datetime.now(UTC),
                             ConnectionState.NEEDS_PAIRING, "logged_out", 401)
    _publish(gw, "connection_events", event.to_json(), event.attributes())
    doc = firestore_client.collection("accounts").document(account_id)
    _wait_for("needs_pairing", lambda: doc.get().to_dict()["status"] == "needs_pairing")

    def pulled() -> list[Any]:
        response = subscriber.pull(request={"subscription": alerts_sub, "max_messages": 10}, timeout=10)
        return [m.message for m in response.received_messages]

    [message] = _wait_for("the alert message", pulled)
    alert = parse_event(message.data)
    assert isinstance(alert, AlertRaised)
    assert (alert.account_id, alert.kind) == (account_id, "logged_out")
    assert message.attributes["kind"] == "logged_out"
    alert_doc = firestore_client.collection("alerts").document(alert.alert_id).get().to_dict()
    assert alert_doc["open"] is True and alert_doc["accountId"] == account_id
    subscriber.delete_subscription(request={"subscription": alerts_sub})


def test_admin_metrics_show_connectors_and_accounts(functions_gateway: Gateway, firestore_client: Any) -> None:
    gw = functions_gateway
    gw.call("addAccount", {"phoneNumber": "+40744444444", "method": "qr"}, "erin")
    assert gw.sync(_connector_body("c-metrics", X25519PrivateKey.generate())).status_code == 200
    admin = gw.call("getMetrics", None, "root", admin=True).json()["result"]
    assert admin["accountsByStatus"] == {"pairing": 1}
    assert [(c["connectorId"], c["held"], c["live"]) for c in admin["connectors"]] == [("c-metrics", 1, True)]
    user = gw.call("getMetrics", {}, "frank").json()["result"]
    assert user["accounts"] == 0 and "connectors" not in user


def test_a_double_click_on_add_leaves_one_account(functions_gateway: Gateway, firestore_client: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from google.cloud.firestore_v1.base_query import FieldFilter

    data = {"phoneNumber": "+40755555555", "method": "qr"}
    for _ in range(3):  # a few rounds: the requests interleave differently each time
        firestore_client.recursive_delete(firestore_client.collection("accounts"))
        with ThreadPoolExecutor(max_workers=4) as pool:
            replies = list(pool.map(lambda _: functions_gateway.call("addAccount", data, "gina"), range(4)))
        assert sorted(r.status_code for r in replies) == [200, 409, 409, 409], [r.text for r in replies]
        stored = firestore_client.collection("accounts").where(
            filter=FieldFilter("phoneNumber", "==", "+40755555555")).get()
        assert len(stored) == 1
