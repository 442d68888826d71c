"""Shared steps of the simulator tests."""

from __future__ import annotations

from simulator.companion import ScriptedCompanion
from simulator.testing import ControlClient, SimulatorHandle

PHONE = "+40700000001"


async def pair_by_qr(sim: SimulatorHandle, control: ControlClient, phone: str = PHONE) -> ScriptedCompanion:
    """Register a scripted companion, scan its QR on ``phone``, and finish pairing (through the 515)."""
    companion = ScriptedCompanion(sim.ws_url, sim.root_public_key)
    refs = await companion.connect_and_register()
    answer = await control.scan(phone, companion.qr(refs[0]))
    stream_error = await companion.complete_pairing()
    assert stream_error.attrs == {"code": "515"}
    await companion.wait_closed()
    assert answer["device"] == f"{companion.creds.user}:{companion.creds.device_id}@s.whatsapp.net"
    return companion


async def paired_and_logged_in(
    sim: SimulatorHandle, control: ControlClient, phone: str = PHONE
) -> ScriptedCompanion:
    companion = await pair_by_qr(sim, control, phone)
    success = await companion.connect_and_login()
    assert success.tag == "success"
    return companion
