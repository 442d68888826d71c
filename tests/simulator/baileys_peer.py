"""Baileys 7 clients for tests: one Node process per client (``baileys_peer.mjs``), driven over
stdin/stdout JSON lines.

``BaileysClient.paired(sim, control, phone, auth_dir)`` starts a client, scans its QR on ``phone``
and waits until it is logged in after the 515; then ``send``, ``read``, ``group_create`` and the
event waits (``next_event``) drive and observe it. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.testing import REPO_ROOT, ControlClient, SimulatorHandle

DRIVER = Path(__file__).with_name("baileys_peer.mjs")
EVENT_TIMEOUT_S = 20.0
Event = dict[str, Any]


class BaileysClient:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[Event] = []  # every event seen, in order
        self._unread: asyncio.Queue[Event] = asyncio.Queue()
        self._refs = itertools.count(1)
        self._reader = asyncio.create_task(self._read())
        self.jid = ""
        self.lid = ""

    @classmethod
    async def start(cls, sim: SimulatorHandle, auth_dir: Path) -> BaileysClient:
        process = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            sim.ws_url,
            sim.root_public_key.hex(),
            str(auth_dir),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
        )
        return cls(process)

    @classmethod
    async def paired(
        cls, sim: SimulatorHandle, control: ControlClient, phone: str, auth_dir: Path
    ) -> BaileysClient:
        client = await cls.start(sim, auth_dir)
        try:
            qr = await client.next_event(lambda e: e["event"] == "qr")
            await control.scan(phone, qr["qr"])
            await client.next_event(lambda e: e["event"] == "close" and e["code"] == 515)
            opened = await client.next_event(lambda e: e["event"] == "open")
        except BaseException:
            await client.stop()
            raise
        client.jid, client.lid = opened["id"], opened.get("lid") or ""
        return client

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # not an event (a library writing to stdout)
            self.events.append(event)
            await self._unread.put(event)

    async def next_event(self, match: Callable[[Event], bool], timeout: float = EVENT_TIMEOUT_S) -> Event:
        """The next event (after those already returned) that ``match`` accepts; others are skipped."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self._unread.get()
                if match(event):
                    return event

    async def wait_for(self, match: Callable[[Event], bool], timeout: float = EVENT_TIMEOUT_S) -> Event:
        """An event ``match`` accepts, among those seen so far or still to come."""
        for event in self.events:
            if match(event):
                return event
        return await self.next_event(match, timeout)

    async def command(self, op: str, **fields: Any) -> Event:
        ref = next(self._refs)
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps({"op": op, "ref": ref, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        answer = await self.wait_for(lambda e: e.get("ref") == ref)
        if answer["event"] == "error":
            raise AssertionError(f"baileys {op} failed: {answer['message']}")
        return answer

    async def send(self, to: str, text: str) -> str:
        """Send a text; returns the message id."""
        return str((await self.command("send", to=to, text=text))["key"]["id"])

    async def received(self, text: str, timeout: float = EVENT_TIMEOUT_S) -> Event:
        return await self.wait_for(
            lambda e: e["event"] == "message" and e["text"] == text and not e["key"]["fromMe"], timeout
        )

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                assert self.process.stdin is not None
                self.process.stdin.write(b'{"op": "quit"}\n')
                await self.process.stdin.drain()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        if self.process.stdin is not None:
            self.process.stdin.close()
