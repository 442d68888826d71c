from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from aiohttp import web

from connector.errors import SyncRejected, SyncUnavailable
from connector.sync import HttpSyncClient, parse_response
from shared.connector_sync import HeldLease, RenewedLease, SyncRequest
from shared.events import parse_time

KEY = base64.b64encode(bytes(32)).decode()


def answer(**extra: Any) -> dict[str, Any]:
    return {"leaseTtlS": 30, "vaultPublicKey": KEY, "vaultKeyId": "k1", **extra}


def test_parse_full_answer() -> None:
    sealed = base64.b64encode(b"sealed").decode()
    response = parse_response(answer(
        renewed=[{"accountId": "a1", "generation": 3, "leaseExpiresAt": "2026-01-01T00:00:00Z"}],
        lost=[{"accountId": "a9", "reason": "lease_expired"}],
        claimed=[{"accountId": "a3", "generation": 7, "leaseExpiresAt": "2026-01-01T00:00:30Z", "mode": "restore",
                  "sealedState": sealed, "version": 4, "fellBack": True, "pairing": None},
                 {"accountId": "p1", "generation": 1, "mode": "pair", "sealedState": None,
                  "pairing": {"method": "code", "phoneNumber": "+40700000001"}}],
        commands=[{"accountId": "a1", "action": "reconnect"}, {"accountId": "a1", "action": "future"}],
    ))
    assert response.lease_ttl_s == 30 and response.vault_public_key == bytes(32)
    assert response.renewed == [RenewedLease("a1", 3, parse_time("2026-01-01T00:00:00Z"))]
    assert response.lost[0].reason == "lease_expired"
    restore, pair = response.claimed
    assert restore.sealed_state == b"sealed" and restore.fell_back and restore.version == 4
    assert pair.pairing is not None and pair.pairing.method == "code" and pair.sealed_state is None
    assert [c.action for c in response.commands] == ["reconnect"]  # unknown actions are ignored


def test_parse_unwraps_callable_envelope() -> None:
    assert parse_response({"result": answer()}).vault_key_id == "k1"


@pytest.mark.parametrize("body", [
    {"vaultPublicKey": KEY},
    answer(claimed=[{"accountId": "a", "generation": "7", "mode": "restore"}]),
    answer(claimed=[{"accountId": "a", "generation": 7, "mode": "steal"}]),
    answer(vaultPublicKey="not base64!"),
    answer(renewed={"a": 1}),
])
def test_parse_rejects_contract_breaks(body: dict[str, Any]) -> None:
    with pytest.raises(SyncRejected):
        parse_response(body)


async def test_http_client_posts_contract_and_maps_errors() -> None:
    seen: list[dict[str, Any]] = []
    statuses = [200, 503, 400]

    async def handler(request: web.Request) -> web.Response:
        seen.append({"auth": request.headers.get("Authorization"), "body": await request.json()})
        status = statuses.pop(0)
        if status == 200:
            return web.json_response(answer())
        return web.json_response({"error": {"status": "X", "message": "no"}}, status=status)

    app = web.Application()
    app.router.add_post("/p/r/connectorSync", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = HttpSyncClient(f"http://127.0.0.1:{port}/p/r/", "tok")
    request = SyncRequest("c-1", 10, bytes(32), held=[HeldLease("a", 2)], release=[HeldLease("b", 1)])
    try:
        assert (await client.sync(request)).vault_key_id == "k1"
        with pytest.raises(SyncUnavailable):
            await client.sync(request)
        with pytest.raises(SyncRejected):
            await client.sync(request)
    finally:
        await client.close()
        await runner.cleanup()
    assert seen[0]["auth"] == "Bearer tok"
    assert seen[0]["body"] == {"connectorId": "c-1", "capacity": 10, "publicKey": KEY,
                               "held": [{"accountId": "a", "generation": 2}],
                               "release": [{"accountId": "b", "generation": 1}]}
    unreachable = HttpSyncClient(f"http://127.0.0.1:{port}", None, timeout_s=1)
    with pytest.raises(SyncUnavailable):
        await unreachable.sync(request)
    await unreachable.close()
    assert json.dumps(seen)  # the server saw plain JSON
