"""Input schemas, the callable guard's error mapping, and the Pub/Sub envelope reader (no I/O)."""

from __future__ import annotations

import base64
import logging
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functions.errors import (
    FunctionsError,
    InvalidArgumentError,
    MalformedMessageError,
    NotFoundError,
    ResourceExhaustedError,
    StaleMessageError,
    to_https_error,
)
from functions.http import PubSubMessage, handle_pubsub, pubsub_message
from functions.validation import parse_account_ref, parse_add_account, parse_empty, parse_sync_request
from shared.connector_sync import PairingMethod


def test_add_account_accepts_e164_and_both_methods() -> None:
    parsed = parse_add_account({"phoneNumber": "+40700000001", "method": "qr"})
    assert (parsed.phone_number, parsed.method) == ("+40700000001", PairingMethod.QR)


@pytest.mark.parametrize(("data", "field"), [
    (None, "phoneNumber"), ({}, "phoneNumber"), ({"phoneNumber": "+40700000001"}, "method"),
    ({"phoneNumber": "+0700000001", "method": "code"}, "phoneNumber"),
    ({"phoneNumber": "+40 700 000 001", "method": "code"}, "phoneNumber"),
    ({"phoneNumber": "+4070000000123456", "method": "code"}, "phoneNumber"),
    ({"phoneNumber": ["+40700000001"], "method": "code"}, "phoneNumber"),
    ({"phoneNumber": "+40700000001", "method": True}, "method"),
    ({"phoneNumber": "+40700000001", "method": "code", "owner": "x"}, "owner"),
    ("+40700000001", "data"),
])
def test_add_account_refusals_name_the_field(data: Any, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse_add_account(data)
    assert caught.value.details == {"field": field}


def test_account_ref_and_empty() -> None:
    assert parse_account_ref({"accountId": "acc_1-x"}) == "acc_1-x"
    bad: Any
    for bad in ({"accountId": "a/b"}, {"accountId": ""}, {"accountId": 7}, {"accountId": "a" * 200}, []):
        with pytest.raises(InvalidArgumentError):
            parse_account_ref(bad)
    parse_empty(None)
    parse_empty({})
    with pytest.raises(InvalidArgumentError):
        parse_empty({"x": 1})


def _sync_body(**changes: Any) -> dict[str, Any]:
    return {"connectorId": "c-1", "capacity": 10, "publicKey": base64.b64encode(b"k" * 32).decode(),
            "held": [{"accountId": "a1", "generation": 3}], **changes}


def test_sync_request_schema() -> None:
    parsed = parse_sync_request(_sync_body())
    assert parsed.held[0].generation == 3 and parsed.release == ()
    for bad in (_sync_body(capacity=-1), _sync_body(capacity=True), _sync_body(publicKey="AAAA"),
                _sync_body(held=[{"accountId": "a1", "generation": 1}] * 2), _sync_body(held={}),
                _sync_body(held=[{"accountId": "a1"}]), _sync_body(extra=1), _sync_body(connectorId="")):
        with pytest.raises(InvalidArgumentError):
            parse_sync_request(bad)
    with pytest.raises(ResourceExhaustedError):
        parse_sync_request(_sync_body(held=[{"accountId": f"a{i}", "generation": 1} for i in range(5001)]))


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=12), c, max_size=4),
                    max_leaves=10))
def test_parsers_raise_only_functions_errors(data: Any) -> None:
    for parse in (parse_add_account, parse_account_ref, parse_empty, parse_sync_request):
        try:
            parse(data)
        except FunctionsError as exc:
            assert to_https_error(exc).code.value != "internal"


def test_error_mapping_hides_unknown_errors() -> None:
    assert to_https_error(NotFoundError("no such account")).code.value == "not-found"
    hidden = to_https_error(RuntimeError("database password is hunter2"))
    assert (hidden.code.value, hidden.message) == ("internal", "INTERNAL")


def test_transient_storage_errors_ask_the_caller_to_retry() -> None:
    from google.api_core import exceptions as gexc

    for exc in (gexc.ServiceUnavailable("emulator down"), gexc.Aborted("lock timeout"),
                gexc.DeadlineExceeded("slow")):
        mapped = to_https_error(exc)
        assert mapped.code.value == "unavailable" and "emulator" not in mapped.message
    assert to_https_error(gexc.PermissionDenied("iam")).code.value == "internal"


def _envelope(data: bytes, **attributes: str) -> dict[str, Any]:
    return {"message": {"data": base64.b64encode(data).decode(), "attributes": attributes, "messageId": "m1"},
            "subscription": "projects/p/subscriptions/s"}


def test_pubsub_message_reads_the_envelope() -> None:
    message = pubsub_message(_envelope(b"payload", accountId="a1"))
    assert message == PubSubMessage("m1", b"payload", {"accountId": "a1"})
    assert "payload" not in repr(message)
    for bad in (None, {}, {"message": "x"}, {"message": {"data": "***"}},
                {"message": {"data": "", "attributes": {"a": 1}}}):
        with pytest.raises(MalformedMessageError):
            pubsub_message(bad)


def test_rejected_messages_are_acknowledged_and_others_retried(caplog: pytest.LogCaptureFixture) -> None:
    def stale(_: PubSubMessage) -> None:
        raise StaleMessageError("account a1: generation 1 is older than 2")

    with caplog.at_level(logging.WARNING):
        handle_pubsub("persistSnapshot", _envelope(b"x"), stale)  # returns: acknowledged
        handle_pubsub("persistSnapshot", {"garbage": True}, stale)
    assert "generation 1 is older" in caplog.text

    def transient(_: PubSubMessage) -> None:
        raise ConnectionError("firestore unavailable")

    with pytest.raises(ConnectionError):
        handle_pubsub("persistSnapshot", _envelope(b"x"), transient)


HOSTILE_BODIES = {
    "nested": b'{"data": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "long_integer": b'{"data": {"accountId": ' + b"7" * 5000 + b"}}",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_bodies_the_json_decoder_chokes_on_are_invalid_argument(name: str) -> None:
    """Deep nesting raises RecursionError and 5000-digit integers ValueError inside json.loads."""
    from werkzeug.test import Client

    from functions.http import decode_json
    from keeper.gateway import FunctionsGateway

    body = HOSTILE_BODIES[name]
    with pytest.raises(InvalidArgumentError):
        decode_json(body)
    client = Client(FunctionsGateway("demo-p", "us-central1", names=["listAccounts"]))
    reply = client.post("/demo-p/us-central1/listAccounts", data=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400
    assert reply.json is not None and reply.json["error"]["status"] == "INVALID_ARGUMENT"
    assert reply.json["error"]["message"]


def test_json_request_of_plain_endpoints_refuses_hostile_bodies() -> None:
    import flask

    from functions.http import json_request

    app = flask.Flask(__name__)
    for body in HOSTILE_BODIES.values():
        with app.test_request_context("/", method="POST", data=body), pytest.raises(InvalidArgumentError):
            json_request(flask.request, 1 << 20)
    with app.test_request_context("/", method="POST", data=b'{"capacity": 1}'):
        assert json_request(flask.request, 1 << 20) == {"capacity": 1}
