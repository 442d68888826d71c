"""Pairing that goes wrong ends in a status with a reason, and the account can pair again.

Real parts: the emulators, the functions gateway, the simulator and a connector process. The
simulator's phones play the user: typing a wrong code, owning no account for the number, scanning a
QR meant for another number.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.testing import ControlClient, SimulatorHandle, simulator_process
from testkit.connector_stack import Stack, start_stack
from tests.connector.test_simulator_integration import account, until, wa_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def stack(children: Any, project_id: str, firestore_client: Any, pubsub_emulator: str, tmp_path: Path) -> Stack:
    return start_stack(children, project_id, uuid.uuid4().hex[:10], tmp_path / "home")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorHandle]:
    with simulator_process(log_path=tmp_path / "simulator.log", state_dir=tmp_path / "sim") as handle:
        yield handle


@pytest.fixture
async def control(sim: SimulatorHandle) -> AsyncIterator[ControlClient]:
    client = sim.control()
    yield client
    await client.close()


def _pairing(firestore_client: Any, account_id: str, key: str) -> Any:
    return (account(firestore_client, account_id).get("pairing") or {}).get(key)


async def _failed_with(firestore_client: Any, account_id: str, reason: str) -> dict[str, Any]:
    def failed() -> dict[str, Any] | None:
        doc = account(firestore_client, account_id)
        return doc if doc.get("status") in ("pairing_failed", "pairing_expired") else None
    doc = await until(failed, 60, f"pairing failed ({reason})")
    # the socket closing after the failure (stopped, lease_not_served) does not hide the reason
    await asyncio.sleep(3)
    doc = account(firestore_client, account_id)
    assert doc.get("status") == "pairing_failed", doc
    assert doc.get("statusReason") == reason, doc
    return doc


async def test_a_wrong_code_fails_with_its_reason_and_reconnect_pairs_again_by_code(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    phone = "+40700000041"
    await control.create_phone(phone)
    stack.start_connector("c-wrong-code", **wa_env(sim))
    account_id = await asyncio.to_thread(stack.add_account, phone, "code")
    first = await until(lambda: _pairing(firestore_client, account_id, "code"), 60, "pairing code")
    wrong = "ABCD1234" if first != "ABCD1234" else "WXYZ5678"
    await control.link_code(phone, wrong)
    await _failed_with(firestore_client, account_id, "wrong_code")
    assert await control.devices(phone) == []

    answer = await asyncio.to_thread(stack.call, "reconnectAccount", {"accountId": account_id})
    assert answer["status"] == "pairing"
    second = await until(lambda: _pairing(firestore_client, account_id, "code"), 60, "a new pairing code")
    assert second != first
    assert _pairing(firestore_client, account_id, "qr") is None  # still by code, the account's method
    await control.link_code(phone, second)
    await until(lambda: account(firestore_client, account_id).get("status") == "connected", 60, "connected")
    assert len(await control.devices(phone)) == 1


async def test_an_unknown_number_fails_with_its_reason(
        stack: Stack, sim: SimulatorHandle, firestore_client: Any) -> None:
    stack.start_connector("c-unknown", **wa_env(sim))
    account_id = await asyncio.to_thread(stack.add_account, "+40700000042", "code")  # no such phone
    await _failed_with(firestore_client, account_id, "unknown_number")


async def test_a_qr_scanned_by_another_phone_is_refused_and_unlinked(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    mine, other = "+40700000043", "+40700000044"
    await control.create_phone(mine)
    await control.create_phone(other)
    stack.start_connector("c-wrong-phone", **wa_env(sim))
    account_id = await asyncio.to_thread(stack.add_account, mine, "qr")
    qr = await until(lambda: _pairing(firestore_client, account_id, "qr"), 60, "QR published")
    await control.scan(other, qr)
    await _failed_with(firestore_client, account_id, "wrong_phone")

    async def unlinked() -> bool:
        return await control.devices(other) == []
    await until(unlinked, 30, "the other phone's device unlinked")
    assert account(firestore_client, account_id).get("linkedJid") is None
