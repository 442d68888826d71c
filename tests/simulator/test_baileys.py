"""Real Baileys clients from npm pair with the simulator, by QR and by code, and log in.

Baileys 6.17.16 speaks token dictionary 2, Baileys 7.0.0-rc14 dictionary 3: each pairing must end with
stream error 515 on the registration socket (never 428: the close must not overtake it), then a login
on a new socket that reaches ``connection: open`` and answers pings. The simulator plays the phone
through its control API, as a user would with a real phone. Ten pairings of each kind run at once
in one Node process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from simulator.testing import ControlClient, running_simulator
from tests.simulator.baileys import BaileysDriver, baileys_driver

pytestmark = pytest.mark.integration

RUNS = 10
# Baileys pings every KEEP_ALIVE_MS and gives up (408) after KEEP_ALIVE_MS + 5 s without a frame: its own
# event loop, busy generating 20 clients' pre-keys on a loaded machine, must not look like a dead server.
KEEP_ALIVE_MS = 4000
PAIRING_TIMEOUT_S = 60.0


async def pair_and_log_in(
    driver: BaileysDriver, control: ControlClient, client: str, *, baileys: int, method: str, phone: str
) -> list[dict[str, Any]]:
    """One client from start to ``open``; returns what it reported, in order."""
    await control.create_phone("+" + phone)
    await driver.start(client, baileys=baileys, method=method, phone=phone, keep_alive_ms=KEEP_ALIVE_MS)
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(PAIRING_TIMEOUT_S):
        while True:
            event = await driver.next_event(client, PAIRING_TIMEOUT_S)
            seen.append(event)
            if event["event"] == "qr" and method == "qr":
                await control.scan("+" + phone, event["qr"])
            elif event["event"] == "code":
                await control.link_code("+" + phone, event["code"])
            elif event["event"] in ("open", "stopped", "error"):
                return seen


def milestones(seen: list[dict[str, Any]]) -> list[str]:
    """The events that tell how a pairing went (``paired`` aside; QR refreshes count once)."""
    names: list[str] = []
    for event in seen:
        name = event["event"] if event["event"] != "close" else f"close {event['code']} on socket {event['socket']}"
        if name == "paired" or (names and names[-1] == name):
            continue
        names.append(name)
    return names


@pytest.mark.parametrize("baileys", [6, 7])
async def test_baileys_pairs_by_qr_and_by_code_every_time_then_stays_logged_in(baileys: int) -> None:
    async with running_simulator() as sim, sim.control() as control, baileys_driver(
        sim.ws_url, sim.root_public_key
    ) as driver:
        clients = {
            f"{method}{run}": (method, f"4071{baileys}{index:06d}")
            for index, (method, run) in enumerate((m, r) for m in ("qr", "code") for r in range(RUNS))
        }
        outcomes = await asyncio.gather(*(
            pair_and_log_in(driver, control, client, baileys=baileys, method=method, phone=phone)
            for client, (method, phone) in clients.items()
        ))

        for (client, (method, phone)), seen in zip(clients.items(), outcomes, strict=True):
            assert milestones(seen) == [method, "close 515 on socket 1", "open"], (client, seen)
            assert any(e["event"] == "paired" for e in seen), (client, seen)
            assert seen[-1]["jid"] == f"{phone}:1@s.whatsapp.net"
            assert seen[-1]["socket"] == 2

        # Logged in, they stay up through keepalive pings and answer one more on demand.
        await asyncio.sleep(1.5 * KEEP_ALIVE_MS / 1000)
        for client in clients:
            await driver.command(cmd="ping", id=client)
        for client, (_, phone) in clients.items():
            event = await driver.next_event(client, 15)
            assert event["event"] == "pong", (client, event, driver.pending_events(client))
            assert driver.pending_events(client) == []  # no close, no error
            [device] = await control.devices("+" + phone)
            assert device["liveSockets"] == 1
            assert device["loginCount"] == 1
        assert driver.driver_errors == []
