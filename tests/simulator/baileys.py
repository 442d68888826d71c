"""Drives real Baileys clients (``simulator/interop/baileys_driver.mjs``) from a test: one Node process,
many clients, each a ``BaileysClient`` that keeps every event it was told, in order.

``baileys_driver(sim)`` starts the process; ``driver.start(...)`` a client (in-memory auth, or a folder
that outlives a stop); ``driver.paired(control, name, phone, auth_dir)`` one that has scanned its QR on
``phone`` and is logged in after the 515. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from simulator.testing import REPO_ROOT, ControlClient, SimulatorHandle

DRIVER = REPO_ROOT / "simulator" / "interop" / "baileys_driver.mjs"
READY_TIMEOUT_S = 30.0
EVENT_TIMEOUT_S = 20.0
Event = dict[str, Any]


class BaileysClient:
    """One client in the driver: its events (``events``: all of them; ``next_event``: those not yet taken)."""

    def __init__(self, driver: BaileysDriver, name: str) -> None:
        self.driver = driver
        self.name = name
        self.events: list[Event] = []
        self._unread: asyncio.Queue[Event] = asyncio.Queue()
        self.jid = ""
        self.lid = ""

    def told(self, event: Event) -> None:
        self.events.append(event)
        self._unread.put_nowait(event)

    async def next_event(
        self, match: Callable[[Event], bool] = lambda _: True, timeout: float = EVENT_TIMEOUT_S
    ) -> Event:
        """The next event (after those already taken) that ``match`` accepts; others are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._unread.get()
                if match(event):
                    return event

    def pending_events(self) -> list[Event]:
        """The events not taken yet, taking them."""
        events = []
        while not self._unread.empty():
            events.append(self._unread.get_nowait())
        return events

    async def wait_for(self, match: Callable[[Event], bool], timeout: float = EVENT_TIMEOUT_S) -> Event:
        """An event ``match`` accepts, among those seen so far or still to come."""
        for event in self.events:
            if match(event):
                return event
        return await self.next_event(match, timeout)

    async def tell(self, cmd: str, **fields: Any) -> int:
        """Send a command without waiting; returns its ref."""
        ref = next(self.driver.refs)
        await self.driver.command(cmd=cmd, id=self.name, ref=ref, **fields)
        return ref

    async def command(self, cmd: str, timeout: float = EVENT_TIMEOUT_S, **fields: Any) -> Event:
        """Send a command and wait for its answer; an error answer raises."""
        ref = await self.tell(cmd, **fields)
        answer = await self.wait_for(lambda e: e.get("ref") == ref, timeout)
        if answer["event"] == "error":
            raise AssertionError(f"baileys {self.name} {cmd} failed: {answer['message']}")
        return answer

    async def send(self, to: str, text: str) -> str:
        """Send a text; returns the message id."""
        return str((await self.command("send", to=to, text=text))["key"]["id"])

    async def received(self, text: str, timeout: float = EVENT_TIMEOUT_S) -> Event:
        return await self.wait_for(
            lambda e: e["event"] == "message" and e["text"] == text and not e["key"]["fromMe"], timeout
        )

    async def stop(self) -> None:
        """End the client (no logout); its auth folder, if any, stays for a new start."""
        if any(e["event"] == "stopped" for e in self.events) or self.driver.exited:
            return
        with contextlib.suppress(ConnectionError):
            await self.driver.command(cmd="stop", id=self.name)
        await self.wait_for(lambda e: e["event"] == "stopped")


class BaileysDriver:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        self._clients: dict[str, BaileysClient] = {}
        self.refs = itertools.count(1)
        self.ready = asyncio.Event()
        self.exited = False
        self.driver_errors: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                self.driver_errors.append(f"not an event: {line[:80]!r}")
                continue
            name = event.get("id")
            if name is None:
                if event["event"] == "ready":
                    self.ready.set()
                else:
                    self.driver_errors.append(event.get("message", str(event)))
            elif name in self._clients:
                self._clients[name].told(event)
            else:
                self.driver_errors.append(f"event for no client: {event}")

    def client(self, name: str) -> BaileysClient:
        return self._clients[name]

    async def command(self, **command: Any) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(command) + "\n").encode())
        await self._proc.stdin.drain()

    async def start(
        self, name: str, *, baileys: int = 7, method: str = "qr", phone: str = "", keep_alive_ms: int = 0,
        auth_dir: Path | None = None,
    ) -> BaileysClient:
        """A new client ``name`` (a stopped one's name may be used again: it starts afresh)."""
        client = self._clients[name] = BaileysClient(self, name)
        await self.command(cmd="start", id=name, baileys=baileys, method=method, phone=phone,
                           keepAliveMs=keep_alive_ms, **({"authDir": str(auth_dir)} if auth_dir else {}))
        return client

    async def paired(self, control: ControlClient, name: str, phone: str, auth_dir: Path) -> BaileysClient:
        """A Baileys 7 client that scanned its QR on ``phone`` and is logged in after the 515."""
        client = await self.start(name, auth_dir=auth_dir)
        try:
            qr = await client.next_event(lambda e: e["event"] == "qr")
            await control.scan(phone, qr["qr"])
            await client.next_event(lambda e: e["event"] == "close" and e["code"] == 515)
            opened = await client.next_event(lambda e: e["event"] in ("open", "stopped", "error"))
            assert opened["event"] == "open", client.events
        except BaseException:
            await client.stop()
            raise
        client.jid, client.lid = opened["jid"], opened.get("lid") or ""
        return client

    async def exit(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.command(cmd="exit")
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()
        self.exited = True
        await self._reader


@contextlib.asynccontextmanager
async def baileys_driver(sim: SimulatorHandle) -> AsyncIterator[BaileysDriver]:
    """Start the driver for a simulator; the root package.json's node_modules must be installed."""
    node = shutil.which("node")
    if node is None or not (REPO_ROOT / "node_modules" / "baileys7").is_dir():
        raise RuntimeError("Node and the npm packages are needed: make npm")
    proc = await asyncio.create_subprocess_exec(
        node, str(DRIVER), sim.ws_url, sim.root_public_key.hex(), cwd=REPO_ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    driver = BaileysDriver(proc)
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            await driver.ready.wait()
        yield driver
    finally:
        await driver.exit()
