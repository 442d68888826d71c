"""Handshake, QR pairing, code pairing and login over real websockets against an in-process simulator."""

from __future__ import annotations

import pytest

from connector.protocol.errors import CertificateError
from simulator.companion import ScriptedCompanion
from simulator.testing import ControlError, running_simulator
from tests.simulator.support import PHONE, pair_by_qr

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("dict_version", [2, 3])
async def test_qr_pairing_then_login(dict_version: int) -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = ScriptedCompanion(sim.ws_url, sim.root_public_key, dict_version=dict_version)
        refs = await companion.connect_and_register()
        assert len(refs) == 6
        assert len(set(refs)) == 6
        assert await control.devices(PHONE) == []

        answer = await control.scan(PHONE, companion.qr(refs[2]))
        assert answer["device"] == "40700000001:1@s.whatsapp.net"
        stream_error = await companion.complete_pairing()
        assert stream_error.attrs == {"code": "515"}
        await companion.wait_closed()
        assert companion.close_code == 1000  # a closing handshake, not a cut connection
        assert companion.creds.user == "40700000001"
        assert companion.creds.device_id == 1

        success = await companion.connect_and_login()
        assert success.tag == "success"
        assert success.attrs["lid"].endswith(":1@lid")
        assert int(success.attrs["t"]) > 0
        [device] = await control.devices(PHONE)
        assert device["device"] == 1
        assert device["liveSockets"] == 1
        assert device["loginCount"] == 1
        assert device["platform"] == "keeper-test (chrome)"
        await companion.close()


@pytest.mark.parametrize("dict_version", [2, 3])
async def test_code_pairing_then_login(dict_version: int) -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = ScriptedCompanion(sim.ws_url, sim.root_public_key, dict_version=dict_version)
        await companion.connect_and_register()
        code = await companion.request_pairing_code(PHONE)
        assert len(code) == 9 and code[4] == "-"

        await control.link_code(PHONE, code)
        finish = await companion.finish_code_pairing()
        assert finish.attrs["type"] == "result"
        stream_error = await companion.complete_pairing()
        assert stream_error.attrs == {"code": "515"}
        await companion.wait_closed()
        assert companion.close_code == 1000

        success = await companion.connect_and_login()
        assert success.tag == "success"
        [device] = await control.devices(PHONE)
        assert device["loginCount"] == 1


async def test_wrong_code_fails_at_companion_finish_and_links_nothing() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = ScriptedCompanion(sim.ws_url, sim.root_public_key)
        await companion.connect_and_register()
        code = await companion.request_pairing_code(PHONE)
        wrong = "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "YYYY-YYYY"
        await control.link_code(PHONE, wrong)
        finish = await companion.finish_code_pairing()
        assert finish.attrs["type"] == "error"
        assert await control.devices(PHONE) == []


async def test_link_code_without_waiting_companion_is_404() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        with pytest.raises(ControlError) as info:
            await control.link_code(PHONE, "ABCD-EFGH")
        assert info.value.status == 404


async def test_qr_from_another_socket_is_refused() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        first = ScriptedCompanion(sim.ws_url, sim.root_public_key)
        second = ScriptedCompanion(sim.ws_url, sim.root_public_key)
        refs = await first.connect_and_register()
        await second.connect_and_register()
        forged = second.qr(refs[0])  # second's keys with first's ref
        with pytest.raises(ControlError) as info:
            await control.scan(PHONE, forged)
        assert info.value.status == 422
        await first.close()
        await second.close()


async def test_client_rejects_a_simulator_it_was_not_told_to_trust() -> None:
    async with running_simulator() as sim:
        companion = ScriptedCompanion(sim.ws_url, bytes(32 * [7]))
        with pytest.raises(CertificateError):
            await companion.connect_and_register()
        await companion.close()


async def test_login_with_wrong_noise_key_fails_401() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        companion = await pair_by_qr(sim, control)
        impostor = ScriptedCompanion(sim.ws_url, sim.root_public_key)
        impostor.creds.user, impostor.creds.device_id = companion.creds.user, companion.creds.device_id
        failure = await impostor.connect_and_login()
        assert failure.tag == "failure"
        assert failure.attrs["reason"] == "401"
        await impostor.wait_closed()
