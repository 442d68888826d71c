"""The local gateway's routing, in process (no server, no emulators)."""

from __future__ import annotations

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
