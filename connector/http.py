"""The connector's HTTP surface on ``$PORT``: ``/healthz``, ``/readyz`` and ``/metrics``.

It listens on ``KEEPER_HTTP_HOST`` (loopback unless configured; the image sets ``0.0.0.0`` for Cloud Run).

- ``/healthz``: 200 while the event loop answers (Cloud Run liveness).
- ``/readyz``: 200 once the first connectorSync succeeded and until shutdown starts, else 503.
- ``/metrics``: Prometheus text exposition of :class:`~connector.metrics.Registry`.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from connector.metrics import Registry

CONTENT_TYPE_METRICS = "text/plain; version=0.0.4; charset=utf-8"


class HealthServer:
    def __init__(self, registry: Registry, ready: Callable[[], bool], port: int, host: str = "127.0.0.1") -> None:
        self._registry = registry
        self._ready = ready
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        # A scrape in flight must not hold the shutdown: handlers get half a second to finish.
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:  # let tests ask for any free port and learn which one
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        if self._ready():
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready\n")

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._registry.render().encode(), headers={"Content-Type": CONTENT_TYPE_METRICS})
