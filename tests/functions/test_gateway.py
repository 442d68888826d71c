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
