"""The WhatsApp Web version the engine announces: validated configuration, optionally fetched at start."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from connector.config import ConnectorConfig
from connector.errors import ConnectorConfigError
from connector.protocol.payload import DEFAULT_WA_VERSION
from connector.wa_version import announced_version, parse_version, version_from_service_worker

BASE = {"KEEPER_FUNCTIONS_URL": "http://x"}


def test_the_version_is_configuration_and_validated() -> None:
    """Issue 16 item 14: it was hard-coded; when WhatsApp stops accepting it, setting it is the fix."""
    assert ConnectorConfig.from_env(BASE).wa_version == DEFAULT_WA_VERSION
    assert ConnectorConfig.from_env({**BASE, "KEEPER_WA_VERSION": "2.3000.1040000001"}).wa_version == (
        2, 3000, 1040000001)
    for bad in ("2.3000", "2.3000.x", "2.3000.-1", "v2.3000.1", "2.3000.1.4", "0.0.0", "2.3000.99999999999"):
        with pytest.raises(ConnectorConfigError, match="KEEPER_WA_VERSION"):
            ConnectorConfig.from_env({**BASE, "KEEPER_WA_VERSION": bad})
    assert ConnectorConfig.from_env({**BASE, "KEEPER_WA_VERSION_FETCH": "1"}).wa_version_fetch
    assert not ConnectorConfig.from_env(BASE).wa_version_fetch
    assert parse_version("2.3000.1") == (2, 3000, 1)


def test_the_current_revision_is_read_from_the_service_worker_script() -> None:
    script = 'self.__swData=JSON.parse(/*BTDS*/"{\\"dynamic_data\\":{\\"SiteData\\":{\\"client_revision\\":1031234567,'
    assert version_from_service_worker(script) == (2, 3000, 1031234567)
    assert version_from_service_worker('{"client_revision": 1040000001}') == (2, 3000, 1040000001)
    assert version_from_service_worker("no revision here") is None


async def _with_service_worker(body: str | None, configured: str) -> tuple[int, int, int]:
    """``announced_version`` against a loopback stand-in of web.whatsapp.com/sw.js (None: answers 503)."""
    async def sw(_request: web.Request) -> web.Response:
        if body is None:
            return web.Response(status=503)
        return web.Response(text=body, content_type="application/javascript")

    app = web.Application()
    app.router.add_get("/sw.js", sw)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        config = ConnectorConfig.from_env({**BASE, "KEEPER_WA_VERSION": configured, "KEEPER_WA_VERSION_FETCH": "1",
                                           "KEEPER_WA_VERSION_URL": f"http://127.0.0.1:{port}/sw.js"})
        return await announced_version(config)
    finally:
        await runner.cleanup()


def test_the_fetch_at_start_takes_the_current_version_or_keeps_the_configured_one() -> None:
    assert asyncio.run(_with_service_worker('{"client_revision":1040000001}', "2.3000.1")) == (2, 3000, 1040000001)
    assert asyncio.run(_with_service_worker(None, "2.3000.7")) == (2, 3000, 7)
    assert asyncio.run(_with_service_worker("garbage", "2.3000.7")) == (2, 3000, 7)
    unfetched = ConnectorConfig.from_env({**BASE, "KEEPER_WA_VERSION": "2.3000.9"})
    assert asyncio.run(announced_version(unfetched)) == (2, 3000, 9)
