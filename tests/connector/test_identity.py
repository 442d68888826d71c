"""Identity tokens from the metadata server (connector/identity.py) and their use by connectorSync calls."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from connector.config import ConnectorConfig
from connector.errors import SyncRejected, SyncUnavailable
from connector.identity import REFRESH_MARGIN_S, MetadataIdentityTokens, token_expiry
from connector.sync import HttpSyncClient
from keeper.procs import free_port
from shared.connector_sync import SyncRequest

NOW = 1_800_000_000.0


def jwt(exp: float | None) -> str:
    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    claims: dict[str, Any] = {"aud": "keeper-internal", "email": "keeper-connector@p.iam.gserviceaccount.com"}
    if exp is not None:
        claims["exp"] = int(exp)
    return f"{b64({'alg': 'RS256', 'typ': 'JWT'})}.{b64(claims)}.c2ln"


@dataclass
class FakeMetadata:
    """The metadata server's identity endpoint, and a connectorSync that records what it was sent."""

    status: int = 200
    exp: float | None = NOW + 3600
    requests: list[dict[str, str]] = field(default_factory=list)
    sync_headers: list[str | None] = field(default_factory=list)
    issued: int = 0

    async def identity(self, request: web.Request) -> web.Response:
        self.requests.append({"flavor": request.headers.get("Metadata-Flavor", ""), **request.query})
        if self.status != 200:
            return web.Response(status=self.status, text="nope")
        self.issued += 1
        return web.Response(text=jwt(self.exp))

    async def connector_sync(self, request: web.Request) -> web.Response:
        self.sync_headers.append(request.headers.get("Authorization"))
        return web.json_response({"error": {"status": "INVALID_ARGUMENT", "message": "test"}}, status=400)


@pytest.fixture
async def metadata() -> AsyncIterator[tuple[FakeMetadata, str]]:
    fake = FakeMetadata()
    app = web.Application()
    app.router.add_get("/computeMetadata/v1/instance/service-accounts/default/identity", fake.identity)
    app.router.add_post("/connectorSync", fake.connector_sync)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def test_token_is_fetched_for_the_audience_and_reused_until_near_expiry(
    metadata: tuple[FakeMetadata, str],
) -> None:
    fake, host = metadata
    clock = Clock()
    tokens = MetadataIdentityTokens("keeper internal/x", host=host, clock=clock)
    try:
        first = await tokens.token()
        assert token_expiry(first) == NOW + 3600
        assert fake.requests == [{"flavor": "Google", "audience": "keeper internal/x", "format": "full"}]
        clock.now += 3600 - REFRESH_MARGIN_S - 1
        assert await tokens.token() == first
        assert fake.issued == 1
        clock.now += 2
        await tokens.token()
        assert fake.issued == 2
    finally:
        await tokens.close()


async def test_a_token_without_exp_is_kept_for_a_short_while(metadata: tuple[FakeMetadata, str]) -> None:
    fake, host = metadata
    fake.exp = None
    clock = Clock()
    tokens = MetadataIdentityTokens("aud", host=host, clock=clock)
    try:
        await tokens.token()
        await tokens.token()
        assert fake.issued == 1
        clock.now += 600
        await tokens.token()
        assert fake.issued == 2
    finally:
        await tokens.close()


async def test_metadata_errors_are_retryable(metadata: tuple[FakeMetadata, str]) -> None:
    fake, host = metadata
    fake.status = 404
    tokens = MetadataIdentityTokens("aud", host=host)
    with pytest.raises(SyncUnavailable, match="404"):
        await tokens.token()
    await tokens.close()
    unreachable = MetadataIdentityTokens("aud", host=f"127.0.0.1:{free_port()}")
    with pytest.raises(SyncUnavailable, match="unreachable"):
        await unreachable.token()
    await unreachable.close()


async def test_sync_calls_carry_the_identity_token(metadata: tuple[FakeMetadata, str]) -> None:
    fake, host = metadata
    tokens = MetadataIdentityTokens("aud", host=host)
    client = HttpSyncClient(f"http://{host}", token="local-token", token_source=tokens)
    request = SyncRequest(connector_id="c-1", capacity=1, public_key=b"\x01" * 32, held=[], release=[])
    try:
        for _ in range(2):
            with pytest.raises(SyncRejected):
                await client.sync(request)
    finally:
        await client.close()
    assert fake.sync_headers == [f"Bearer {jwt(NOW + 3600)}"] * 2
    assert fake.issued == 1


def test_token_expiry_reads_exp_only_from_a_jwt() -> None:
    assert token_expiry(jwt(NOW)) == NOW
    assert token_expiry("not-a-jwt") is None
    assert token_expiry("a.%%%.c") is None


def test_config_reads_the_audience() -> None:
    base = {"KEEPER_FUNCTIONS_URL": "https://r-p.cloudfunctions.net"}
    assert ConnectorConfig.from_env(base).audience is None
    assert ConnectorConfig.from_env({**base, "KEEPER_CONNECTOR_AUDIENCE": "keeper-internal"}).audience == \
        "keeper-internal"
