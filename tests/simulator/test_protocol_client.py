"""keeper's own protocol client (``connector.protocol.client``) against the simulator over real sockets.

The two were written apart and meet only on the wire: registration, QR and code pairing, the 515
restart, login and its pre-key upload, and the close reasons the connector acts on (440, 401, 5xx).
The driver here is a minimal test loop; the product's driver is ``connector.engine``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import TypeVar

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from connector.protocol.client import Client, ClientConfig
from connector.protocol.close import ClosePolicy, CloseReason
from connector.protocol.events import Closed, Event, Opened, Paired, PairingCodeShown, PreKeysUploaded, QrCodeShown
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from simulator.testing import ControlClient, SimulatorHandle, running_simulator
from tests.simulator.support import PHONE

pytestmark = pytest.mark.integration

E = TypeVar("E", bound=Event)


class Run:
    """One connection of a ``Client``: pumps bytes, time and events until the test has what it waits for."""

    def __init__(self, sim: SimulatorHandle, store: MemoryAuthStore, **config: object) -> None:
        self.client = Client(store, ClientConfig(root_public_key=sim.root_public_key, **config), os.urandom)  # type: ignore[arg-type]
        self.url = sim.ws_url
        self.seen: list[Event] = []
        self.ws: websockets.ClientConnection | None = None

    async def start(self) -> Run:
        self.ws = await websockets.connect(self.url, max_size=None, ping_interval=None, compression=None)
        self.client.start(time.time())
        await self.flush()
        return self

    async def flush(self) -> None:
        assert self.ws is not None
        for data in self.client.data_to_send():
            try:
                await self.ws.send(data)
            except ConnectionClosed:
                return

    async def wait(self, kind: type[E], match: Callable[[E], bool] = lambda e: True, timeout: float = 20.0) -> E:
        assert self.ws is not None
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.seen):
                if isinstance(event, kind) and match(event):
                    return self.seen.pop(index)  # type: ignore[return-value]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {kind.__name__}; seen {self.seen}")
            next_deadline = self.client.next_deadline()
            wait_s = remaining if next_deadline is None else max(0.0, min(remaining, next_deadline - time.time()))
            try:
                async with asyncio.timeout(wait_s):
                    data = await self.ws.recv()
                self.client.receive_data(data if isinstance(data, bytes) else data.encode(), time.time())
            except TimeoutError:
                pass
            except ConnectionClosed:
                self.client.connection_lost()
            self.client.tick(time.time())
            await self.flush()
            self.seen += self.client.events()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def test_qr_pairing_restart_and_login() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        run = await Run(sim, store).start()
        shown = await run.wait(QrCodeShown)
        await control.scan(PHONE, shown.qr)
        paired = await run.wait(Paired)
        assert paired.jid == "40700000001:1@s.whatsapp.net"
        closed = await run.wait(Closed)
        assert closed.info.reason is CloseReason.RESTART_REQUIRED
        await run.close()

        run = await Run(sim, store).start()
        opened = await run.wait(Opened)
        assert opened.jid == "40700000001:1@s.whatsapp.net"
        uploaded = await run.wait(PreKeysUploaded)
        assert uploaded.server_count_before == 0
        device = await control.device(PHONE, 1)
        assert device["preKeyCount"] == uploaded.count
        assert (device["liveSockets"], device["loginCount"]) == (1, 1)
        await run.close()


async def test_code_pairing_restart_and_login() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = MemoryAuthStore(AuthState.generate(os.urandom))
        run = await Run(sim, store, pairing_phone_number="40700000001").start()
        shown = await run.wait(PairingCodeShown)
        await control.link_code(PHONE, shown.code)
        await run.wait(Paired)
        assert (await run.wait(Closed)).info.reason is CloseReason.RESTART_REQUIRED
        await run.close()
        run = await Run(sim, store).start()
        await run.wait(Opened)
        await run.close()


async def paired_store(sim: SimulatorHandle, control: ControlClient) -> MemoryAuthStore:
    store = MemoryAuthStore(AuthState.generate(os.urandom))
    run = await Run(sim, store).start()
    shown = await run.wait(QrCodeShown)
    await control.scan(PHONE, shown.qr)
    await run.wait(Closed)
    await run.close()
    return store


async def test_close_reasons_the_connector_acts_on() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = await paired_store(sim, control)

        first = await Run(sim, store).start()
        await first.wait(Opened)
        second = await Run(sim, store).start()
        await second.wait(Opened)
        assert (await first.wait(Closed)).info.reason is CloseReason.REPLACED
        await first.close()

        await control.fault("stream_error", phone=PHONE, code=503)
        assert (await second.wait(Closed)).info.reason is CloseReason.SERVICE_UNAVAILABLE
        await second.close()

        third = await Run(sim, store).start()
        await third.wait(Opened)
        await control.unlink(PHONE, 1)
        assert (await third.wait(Closed)).info.reason is CloseReason.DEVICE_REMOVED
        await third.close()

        fourth = await Run(sim, store).start()
        closed = await fourth.wait(Closed)
        assert closed.info.reason is CloseReason.LOGGED_OUT
        assert closed.info.policy not in (ClosePolicy.RESTART_NOW, ClosePolicy.BACKOFF)
        await fourth.close()
