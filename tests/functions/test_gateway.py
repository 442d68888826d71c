"""The local gateway's routing, in process (no server, no emulators)."""

from __future__ import annotations

import os

import pytest
from werkzeug.test import Client

from keeper.gateway import FunctionsGateway


def test_routes_by_project_region_and_function() -> None:
    gateway = FunctionsGateway("demo-p", "us-central1", names=["listAccounts", "connectorSync"])
    client = Client(gateway)
    index = client.get("/")
    assert index.status_code == 200
    assert index.json == {"project": "demo-p", "region": "us-central1",
                          "functions": ["connectorSync", "listAccounts"]}
    reply = client.post("/demo-p/us-central1/listAccounts", json={"data": None})
    body = reply.json
    assert body is not None and (reply.status_code, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    sync = client.post("/demo-p/us-central1/connectorSync", json={})
    assert sync.status_code == 401
    for path in ("/demo-p/us-central1/getMetrics", "/other/us-central1/listAccounts", "/demo-p/eu/listAccounts",
                 "/demo-p"):
        missing = client.post(path, json={"data": None})
        assert missing.status_code == 404, path
        assert missing.json is not None and missing.json["error"]["status"] == "NOT_FOUND"


def test_a_pubsub_function_built_first_leaves_callables_callable(monkeypatch: pytest.MonkeyPatch) -> None:
    """functions-framework records signature types in the environment; a gateway built after one whose
    last function was Pub/Sub-triggered (or a child process inheriting that environment) must still
    answer callables as callables, not as CloudEvent endpoints."""
    monkeypatch.delenv("FUNCTION_SIGNATURE_TYPE", raising=False)
    FunctionsGateway("demo-p", "us-central1", names=["persistSnapshot"])
    assert "FUNCTION_SIGNATURE_TYPE" not in os.environ
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "cloudevent")  # as an older process might leave it
    client = Client(FunctionsGateway("demo-p", "us-central1", names=["listAccounts", "persistSnapshot"]))
    reply = client.post("/demo-p/us-central1/listAccounts", json={"data": None})
    assert reply.status_code == 401 and reply.json is not None
    assert reply.json["error"]["status"] == "UNAUTHENTICATED"
    assert os.environ["FUNCTION_SIGNATURE_TYPE"] == "cloudevent"


SECRET = "sekrit-TOKEN-0f9e"


def test_every_endpoint_answers_errors_in_json_and_never_echoes_headers() -> None:
    """Issue 16 item 12: persistSnapshot used to answer Werkzeug's HTML page with every request header in
    it, bearer token included. Every function answers {"error": {"status", "message"}} and echoes nothing."""
    from keeper.gateway import function_names

    client = Client(FunctionsGateway("demo-p", "us-central1", names=list(function_names())))
    bodies = [(b"{}", "application/json"), (b"nope", "application/json"), (b"", "text/plain"),
              (b'{"message": {}}', "application/json"), (b"\xff" * 10, "application/octet-stream")]
    for name in function_names():
        for data, content_type in bodies:
            headers = {"Content-Type": content_type, "X-Leak": SECRET}
            if name in ("connectorSync", "healthCheck", "cleanup", "persistSnapshot", "recordConnectionEvent"):
                headers["Authorization"] = f"Bearer {SECRET}"
            reply = client.post(f"/demo-p/us-central1/{name}", data=data, headers=headers)
            text = reply.get_data(as_text=True)
            assert SECRET not in text, (name, data)
            assert 400 <= reply.status_code < 500, (name, data, reply.status_code, text[:200])
            assert reply.content_type.startswith("application/json"), (name, data, text[:200])
            body = reply.json
            assert body is not None and set(body["error"]) >= {"status", "message"}, (name, data)


def test_a_post_with_no_body_and_no_length_is_answered_at_once() -> None:
    """Issue 16 item 11: without Content-Length (and not chunked) a request has no body (RFC 9112 6.3);
    the gateway used to wait for one until the client gave up (90 s)."""
    import socket
    import time

    from keeper.gateway import GatewayServer

    server = GatewayServer(FunctionsGateway("demo-p", "us-central1",
                                            names=["listAccounts", "connectorSync", "persistSnapshot"]),
                           "127.0.0.1", 0)
    server.start()
    try:
        for name in ("listAccounts", "connectorSync", "persistSnapshot"):
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(f"POST /demo-p/us-central1/{name} HTTP/1.1\r\nHost: x\r\n"
                             "Content-Type: application/json\r\n\r\n".encode())
                status = sock.recv(64)  # the connection stays open: only an answer ends this
            assert status.startswith(b"HTTP/1.1 4"), (name, status)
            assert time.monotonic() - started < 5, name
    finally:
        server.stop()
