"""Bad bytes on the wire: the simulator closes the offending socket and keeps serving the others."""

from __future__ import annotations

import asyncio
import os

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from connector.protocol.frames import WA_INTRO_HEADER, encode_frame
from connector.protocol.noise import NoiseHandshake
from simulator.companion import ScriptedCompanion
from simulator.testing import running_simulator

pytestmark = pytest.mark.integration


async def closed_within(ws: websockets.ClientConnection, seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await ws.recv()
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False
    return False


async def test_a_silent_socket_is_closed_after_the_handshake_timeout() -> None:
    async with running_simulator(handshake_timeout_s=0.3) as sim:
        async with websockets.connect(sim.ws_url) as ws:
            assert await closed_within(ws, 3)
        async with sim.control() as control:
            assert (await control.healthz())["connections"] == 0


@pytest.mark.parametrize(
    "first_message",
    [
        b"XX\x06\x03" + encode_frame(b"hello"),  # not the WA intro header
        encode_frame(b"\xff\xff\xff", intro=WA_INTRO_HEADER),  # not a HandshakeMessage
        encode_frame(b"\x12\x02\x0a\x00", intro=WA_INTRO_HEADER),  # clientHello without a 32-byte key
    ],
)
async def test_a_broken_handshake_closes_the_socket(first_message: bytes) -> None:
    async with running_simulator() as sim:
        async with websockets.connect(sim.ws_url) as ws:
            await ws.send(first_message)
            assert await closed_within(ws, 3)
        # the server is unharmed
        companion = ScriptedCompanion(sim.ws_url, sim.root_public_key)
        assert len(await companion.connect_and_register()) == 6
        await companion.close()


@pytest.mark.parametrize("version", [0, 1, 4, 255])
async def test_an_unknown_dictionary_version_is_closed_before_the_handshake(version: int) -> None:
    async with running_simulator() as sim:
        hello = ScriptedCompanion(sim.ws_url, sim.root_public_key)
        async with websockets.connect(sim.ws_url) as ws:
            intro = b"WA\x06" + bytes([version])
            await ws.send(encode_frame(NoiseHandshake("initiator", intro, hello.creds.noise, os.urandom)
                                       .write_client_hello(), intro=intro))
            assert await closed_within(ws, 3)  # no server hello: closed as soon as the intro is read
        for known in (2, 3):  # the server is unharmed and speaks both known versions
            companion = ScriptedCompanion(sim.ws_url, sim.root_public_key, dict_version=known)
            assert len(await companion.connect_and_register()) == 6
            await companion.close()


async def test_text_messages_are_not_the_protocol() -> None:
    async with running_simulator() as sim, websockets.connect(sim.ws_url) as ws:
        await ws.send("hello")
        assert await closed_within(ws, 3)
