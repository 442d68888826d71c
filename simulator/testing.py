"""Helpers for tests that need a WhatsApp to talk to.

In-process (fast, same event loop as the test)::

    async with running_simulator() as sim:
        control = sim.control()                        # ControlClient over HTTP
        await control.create_phone("+40700000001")
        # point the client at sim.ws_url and trust sim.root_public_key
        ...
        await control.close()

As a child process (a real separate server, e.g. to restart it or to measure it)::

    with simulator_process(log_path=tmp_path / "sim.log", state_dir=tmp_path / "sim") as sim:
        ...  # same handle; sim.server is None, sim.process is the ChildProcess

``SimulatorHandle`` carries ``ws_url`` (``ws://127.0.0.1:P/ws/chat``), ``control_url``
(``http://127.0.0.1:P``), ``root_public_key`` (32 bytes) and ``root_public_key_b64``.
``ControlClient`` wraps every control endpoint and raises ``ControlError`` (with ``status`` and the
JSON ``body``) for a non-2xx answer.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from keeper.procs import ChildProcess, free_port, http_ok
from simulator.server import HANDSHAKE_TIMEOUT_S, WS_PATH, SimulatorServer
from simulator.store import JsonFileStateStore, MemoryStateStore, StateStore

REPO_ROOT = Path(__file__).resolve().parent.parent


class ControlError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"control API answered {status}: {body}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class SimulatorHandle:
    ws_url: str
    control_url: str
    root_public_key: bytes
    server: SimulatorServer | None = None
    process: ChildProcess | None = None

    @property
    def root_public_key_b64(self) -> str:
        return base64.b64encode(self.root_public_key).decode("ascii")

    def control(self) -> ControlClient:
        return ControlClient(self.control_url)


class ControlClient:
    """Async client of the control API (one aiohttp session; ``close()`` it)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        async with self._session.request(method, self.base_url + path, json=body) as response:
            data = await response.json(content_type=None)
            if response.status >= 300:
                raise ControlError(response.status, data)
            return data

    @staticmethod
    def _p(phone: str) -> str:
        return quote(phone, safe="")

    async def healthz(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/healthz"))

    async def root_key(self) -> bytes:
        data = await self.request("GET", "/v1/root-key")
        return base64.b64decode(data["publicKey"])

    async def create_phone(self, phone: str, **extra: str) -> dict[str, Any]:
        return dict(await self.request("POST", "/v1/phones", {"phone": phone, **extra}))

    async def scan(self, phone: str, qr: str) -> dict[str, Any]:
        return dict(await self.request("POST", f"/v1/phones/{self._p(phone)}/scan", {"qr": qr}))

    async def link_code(self, phone: str, code: str) -> dict[str, Any]:
        return dict(await self.request("POST", f"/v1/phones/{self._p(phone)}/link-code", {"code": code}))

    async def devices(self, phone: str) -> list[dict[str, Any]]:
        return list((await self.request("GET", f"/v1/phones/{self._p(phone)}/devices"))["devices"])

    async def device(self, phone: str, device_id: int) -> dict[str, Any]:
        for device in await self.devices(phone):
            if device["device"] == device_id:
                return device
        raise ControlError(404, {"error": {"message": f"device {device_id} not linked"}})

    async def unlink(self, phone: str, device_id: int) -> dict[str, Any]:
        return dict(await self.request("DELETE", f"/v1/phones/{self._p(phone)}/devices/{device_id}"))

    async def consume_pre_keys(self, phone: str, device_id: int, count: int) -> dict[str, Any]:
        path = f"/v1/phones/{self._p(phone)}/devices/{device_id}/consume-prekeys"
        return dict(await self.request("POST", path, {"count": count}))

    async def send_message(self, phone: str, sender: str, **fields: Any) -> dict[str, Any]:
        body = {"from": sender, **fields}
        return dict(await self.request("POST", f"/v1/phones/{self._p(phone)}/messages", body))

    async def pending_messages(self, phone: str, device_id: int) -> list[dict[str, Any]]:
        path = f"/v1/phones/{self._p(phone)}/devices/{device_id}/messages"
        return list((await self.request("GET", path))["messages"])

    async def fault(self, kind: str, **fields: Any) -> dict[str, Any]:
        return dict(await self.request("POST", "/v1/faults", {"kind": kind, **fields}))

    async def clear_faults(self) -> int:
        return int((await self.request("DELETE", "/v1/faults"))["cleared"])


@asynccontextmanager
async def running_simulator(
    *,
    state_dir: Path | None = None,
    host: str = "127.0.0.1",
    store: StateStore | None = None,
    handshake_timeout_s: float = HANDSHAKE_TIMEOUT_S,
) -> AsyncIterator[SimulatorHandle]:
    """Run a simulator inside the current event loop on a free port."""
    if store is None:
        store = MemoryStateStore() if state_dir is None else JsonFileStateStore(state_dir)
    server = SimulatorServer(store, handshake_timeout_s=handshake_timeout_s)
    runner = web.AppRunner(server.app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, 0, backlog=2048)
    await site.start()
    try:
        address = runner.addresses[0]
        port = int(address[1])
        yield SimulatorHandle(
            ws_url=f"ws://{host}:{port}{WS_PATH}",
            control_url=f"http://{host}:{port}",
            root_public_key=server.root_public_key,
            server=server,
        )
    finally:
        await runner.cleanup()


@contextmanager
def simulator_process(
    *, log_path: Path, state_dir: Path | None = None, port: int | None = None, ready_timeout_s: float = 30.0
) -> Iterator[SimulatorHandle]:
    """Run ``python -m simulator`` as a child process on a free port; stop it on exit."""
    port = port or free_port()
    argv = [sys.executable, "-m", "simulator", "--port", str(port)]
    if state_dir is not None:
        argv += ["--state-dir", str(state_dir)]
    base = f"http://127.0.0.1:{port}"
    child = ChildProcess(
        "simulator",
        argv,
        log_path=log_path,
        cwd=REPO_ROOT,
        ready=lambda: http_ok(base + "/healthz"),
        ready_timeout_s=ready_timeout_s,
    )
    child.start()
    try:
        with urllib.request.urlopen(base + "/v1/root-key", timeout=5) as response:  # noqa: S310 - loopback
            root = base64.b64decode(json.load(response)["publicKey"])
        yield SimulatorHandle(
            ws_url=f"ws://127.0.0.1:{port}{WS_PATH}", control_url=base, root_public_key=root, process=child
        )
    finally:
        child.stop()
