"""A real third-party client (pyaileys, a Python port of Baileys) pairs over QR and logs in.

pyaileys knows nothing of keeper: it trusts the simulator only because its root key constant is set to
the simulator's root key, exactly as it would trust WhatsApp's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pyaileys.crypto.noise as pyaileys_noise
import pytest
from pyaileys import WhatsAppClient
from pyaileys.socket_config import SocketConfig

from simulator.testing import running_simulator
from tests.simulator.support import PHONE

pytestmark = pytest.mark.integration


async def next_update(updates: asyncio.Queue[Any], match: Any, timeout: float = 15.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            update = await updates.get()
            if match(update):
                return update


async def test_pyaileys_pairs_by_qr_logs_in_and_is_logged_out_by_unlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_simulator() as sim, sim.control() as control:
        monkeypatch.setattr(pyaileys_noise, "WA_CERT_PUBLIC_KEY", sim.root_public_key)
        await control.create_phone(PHONE)
        config = SocketConfig(ws_url=sim.ws_url, auto_reconnect=False)
        client, auth_state = await WhatsAppClient.from_auth_folder(str(tmp_path / "auth"), socket=config)
        updates: asyncio.Queue[Any] = asyncio.Queue()

        async def on_update(update: Any) -> None:
            await updates.put(update)

        async def on_creds(creds: Any) -> None:
            await auth_state.save_creds()

        client.socket.events.on("connection.update", on_update)
        client.socket.events.on("creds.update", on_creds)
        try:
            await client.connect()
            with_qr = await next_update(updates, lambda u: u.qr)
            answer = await control.scan(PHONE, with_qr.qr)
            assert answer["device"] == "40700000001:1@s.whatsapp.net"
            await next_update(updates, lambda u: u.is_new_login)
            await next_update(updates, lambda u: u.connection == "open")  # after the 515 restart
            assert auth_state.creds.me is not None
            assert auth_state.creds.me.id.startswith("40700000001:1@")

            # pyaileys then asks the pre-key count and uploads its pre-keys
            async with asyncio.timeout(10):
                while (device := await control.device(PHONE, 1))["preKeyCount"] == 0:
                    await asyncio.sleep(0.05)
            assert device["liveSockets"] == 1
            assert device["loginCount"] == 1
            assert device["platform"] == "Mac OS (chrome)"

            await control.unlink(PHONE, 1)
            closed = await next_update(updates, lambda u: u.connection == "close")
            assert "401" in str(closed.last_disconnect)
        finally:
            await client.disconnect()
