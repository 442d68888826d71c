"""The control API's phones, errors and health; persistence across a real restart of the process."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from simulator.testing import ControlError, running_simulator, simulator_process
from tests.simulator.support import PHONE, pair_by_qr

pytestmark = pytest.mark.integration


async def test_create_list_and_get_phones() -> None:
    async with running_simulator() as sim, sim.control() as control:
        created = await control.create_phone(PHONE, pushName="Ana")
        assert created["phone"] == PHONE
        assert created["jid"] == "40700000001@s.whatsapp.net"
        assert created["lid"].endswith("@lid")
        assert len(base64.b64decode(created["identityKey"])) == 32
        assert created["devices"] == []
        listed = await control.request("GET", "/v1/phones")
        assert [p["phone"] for p in listed["phones"]] == [PHONE]
        # the path accepts the number with or without "+"
        assert (await control.request("GET", "/v1/phones/40700000001"))["pushName"] == "Ana"


async def test_errors_have_one_shape_and_the_right_status() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        cases = [
            ("POST", "/v1/phones", {"phone": PHONE}, 409, "ConflictError"),
            ("POST", "/v1/phones", {"phone": "12"}, 400, "InvalidRequestError"),
            ("POST", "/v1/phones", {}, 400, "InvalidRequestError"),
            ("GET", "/v1/phones/+40799999999/devices", None, 404, "NotFoundError"),
            ("DELETE", f"/v1/phones/{PHONE}/devices/7", None, 404, "NotFoundError"),
            ("POST", f"/v1/phones/{PHONE}/scan", {"qr": "not,a,qr"}, 400, "InvalidRequestError"),
            ("POST", f"/v1/phones/{PHONE}/link-code", {"code": "short"}, 400, "InvalidRequestError"),
        ]
        for method, path, body, status, kind in cases:
            with pytest.raises(ControlError) as info:
                await control.request(method, path, body)
            assert (info.value.status, info.value.body["error"]["kind"]) == (status, kind), path


async def test_scan_of_an_unknown_ref_is_404() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        key = base64.b64encode(bytes(32)).decode()
        with pytest.raises(ControlError) as info:
            await control.scan(PHONE, f"2@nope,{key},{key},{key}")
        assert info.value.status == 404


async def test_root_key_and_healthz() -> None:
    async with running_simulator() as sim, sim.control() as control:
        assert await control.root_key() == sim.root_public_key
        health = await control.healthz()
        assert health["ok"] is True
        assert health["sockets"] == 0


async def test_state_survives_a_restart_of_the_process(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with simulator_process(log_path=tmp_path / "first.log", state_dir=state_dir) as sim:
        async with sim.control() as control:
            await control.create_phone(PHONE)
            companion = await pair_by_qr(sim, control)
            assert (await companion.connect_and_login()).tag == "success"
            await companion.close()
        root = sim.root_public_key
    assert (state_dir / "state.json").stat().st_mode & 0o777 == 0o600
    with simulator_process(log_path=tmp_path / "second.log", state_dir=state_dir) as sim:
        assert sim.root_public_key == root
        companion.ws_url = sim.ws_url
        async with sim.control() as control:
            assert (await companion.connect_and_login()).tag == "success"
            device = await control.device(PHONE, 1)
            assert device["loginCount"] == 2
            assert device["liveSockets"] == 1
        await companion.close()
