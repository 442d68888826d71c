"""Each injectable fault, observed by a logged-in client over a real socket."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from connector.protocol.binary import Node
from simulator.companion import CompanionClosed, ScriptedCompanion
from simulator.testing import ControlError, running_simulator
from tests.simulator.support import PHONE, pair_by_qr, paired_and_logged_in

pytestmark = pytest.mark.integration


async def test_drop_aborts_the_socket_without_a_stream_error() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await paired_and_logged_in(sim, control)
        answer = await control.fault("drop", phone=PHONE, device=1)
        assert answer["affectedSockets"] == 1
        await companion.wait_closed()
        assert [n.tag for n in companion.inbox if n.tag == "stream:error"] == []
        assert (await control.device(PHONE, 1))["liveSockets"] == 0
        # the device is still linked: it logs in again
        assert (await companion.connect_and_login()).tag == "success"
        await companion.close()


@pytest.mark.parametrize("code", [515, 503, 500])
async def test_stream_error_with_code(code: int) -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await paired_and_logged_in(sim, control)
        await control.fault("stream_error", phone=PHONE, code=code)
        error = await companion.wait_tag("stream:error")
        assert error.attrs == {"code": str(code)}
        await companion.wait_closed()


async def test_stop_pings_leaves_pings_unanswered_until_cleared() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await paired_and_logged_in(sim, control)
        await control.fault("stop_pings", phone=PHONE, device=1)
        with pytest.raises(TimeoutError):
            await companion.iq("w:p", "get", [Node("ping")], timeout=0.5)
        # other iqs are still answered: only keepalive is broken
        count = await companion.iq("encrypt", "get", [Node("count")])
        assert count.attrs["type"] == "result"
        assert await control.clear_faults() == 1
        pong = await companion.iq("w:p", "get", [Node("ping")])
        assert pong.attrs["type"] == "result"
        await companion.close()


async def test_stop_pings_expires_after_its_seconds() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await paired_and_logged_in(sim, control)
        fault = await control.fault("stop_pings", phone=PHONE, seconds=1.5)
        with pytest.raises(TimeoutError):
            await companion.iq("w:p", "get", [Node("ping")], timeout=0.3)
        assert fault["fault"]["expiresAt"] == fault["fault"]["startedAt"] + 1.5
        await asyncio.sleep(1.5)
        pong = await companion.iq("w:p", "get", [Node("ping")])
        assert pong.attrs["type"] == "result"
        await companion.close()


async def test_refuse_for_a_device_closes_its_new_sockets_for_n_seconds() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await pair_by_qr(sim, control)
        await control.fault("refuse", phone=PHONE, device=1, seconds=2)
        with pytest.raises((CompanionClosed, ConnectionError)):
            await companion.connect_and_login(timeout=2)
        assert (await control.device(PHONE, 1))["loginCount"] == 0
        async with asyncio.timeout(10):
            while await control.request("GET", "/v1/faults") != {"faults": []}:
                await asyncio.sleep(0.1)
        assert (await companion.connect_and_login()).tag == "success"
        await companion.close()


async def test_refuse_everyone_rejects_the_websocket_upgrade() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.fault("refuse", seconds=30)
        companion = ScriptedCompanion(sim.ws_url, sim.root_public_key)
        with pytest.raises(websockets.InvalidStatus) as info:
            await companion.connect_and_register()
        assert info.value.response.status_code == 503
        await control.clear_faults()
        assert len(await companion.connect_and_register()) == 6
        await companion.close()


@pytest.mark.parametrize("variant", ["garbage", "bad_node"])
async def test_malformed_frame_breaks_the_clients_stream(variant: str) -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await paired_and_logged_in(sim, control)
        answer = await control.fault("malformed_frame", phone=PHONE, variant=variant)
        assert answer["affectedSockets"] == 1
        # the scripted companion, like a real client, cannot go on after an undecodable frame
        await companion.wait_closed()
        # it ended because the frame did not decrypt / decode, not because the server hung up
        assert companion.stream_error is not None
        await companion.close()


async def test_faults_aimed_elsewhere_leave_the_socket_alone() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        await control.create_phone("+40700000002")
        companion = await paired_and_logged_in(sim, control)
        answer = await control.fault("drop", phone="+40700000002")
        assert answer["affectedSockets"] == 0
        answer = await control.fault("drop", phone=PHONE, device=2)
        assert answer["affectedSockets"] == 0
        pong = await companion.iq("w:p", "get", [Node("ping")])
        assert pong.attrs["type"] == "result"
        await companion.close()


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "explode"},
        {"kind": "stream_error", "code": 404},
        {"kind": "refuse"},
        {"kind": "drop", "seconds": 3},
        {"kind": "drop", "device": 1},
        {"kind": "stop_pings", "seconds": -1},
    ],
)
async def test_bad_fault_requests_are_400(body: dict[str, object]) -> None:
    async with running_simulator() as sim, sim.control() as control:
        with pytest.raises(ControlError) as info:
            await control.request("POST", "/v1/faults", body)
        assert info.value.status == 400
        assert info.value.body["error"]["kind"] == "InvalidRequestError"
