"""Drives real Baileys clients (``simulator/interop/baileys_driver.mjs``) from a test: one Node process,
many clients, one event queue per client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "simulator" / "interop" / "baileys_driver.mjs"
READY_TIMEOUT_S = 30.0


class BaileysDriver:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self.ready = asyncio.Event()
        self.driver_errors: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            event = json.loads(line)
            client = event.get("id")
            if client is None:
                if event["event"] == "ready":
                    self.ready.set()
                else:
                    self.driver_errors.append(event.get("message", str(event)))
                continue
            self.queue(client).put_nowait(event)

    def queue(self, client: str) -> asyncio.Queue[dict[str, Any]]:
        return self._queues.setdefault(client, asyncio.Queue())

    async def command(self, **command: Any) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(command) + "\n").encode())
        await self._proc.stdin.drain()

    async def start(self, client: str, *, baileys: int, method: str, phone: str, keep_alive_ms: int = 0) -> None:
        self.queue(client)
        await self.command(cmd="start", id=client, baileys=baileys, method=method, phone=phone,
                           keepAliveMs=keep_alive_ms)

    async def next_event(self, client: str, timeout: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            return await self.queue(client).get()

    def pending_events(self, client: str) -> list[dict[str, Any]]:
        queue, events = self.queue(client), []
        while not queue.empty():
            events.append(queue.get_nowait())
        return events

    async def exit(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.command(cmd="exit")
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        await self._reader


@contextlib.asynccontextmanager
async def baileys_driver(ws_url: str, root_public_key: bytes) -> AsyncIterator[BaileysDriver]:
    """Start the driver for a simulator; the root package.json's node_modules must be installed."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "baileys7").is_dir():
        raise RuntimeError("Node and the npm packages are needed: make npm")
    proc = await asyncio.create_subprocess_exec(
        node, str(DRIVER), ws_url, root_public_key.hex(), cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    driver = BaileysDriver(proc)
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await driver.ready.wait()
        yield driver
    finally:
        await driver.exit()
