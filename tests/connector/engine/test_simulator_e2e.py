"""The engine (driver + protocol client) against the simulator over real sockets.

Covers the issue's end-to-end list: pair by QR and by code, the 515 restart then login, login with
credentials restored from their persisted JSON form (as after a process restart), pre-key upload (on
login and when the server runs low), and every fault and close reason the connector acts on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from connector.engine.driver import EngineConfig, EngineSession
from connector.protocol.client import ClientConfig
from connector.protocol.close import ClosePolicy, CloseReason
from connector.protocol.events import (
    Closed,
    CredsChanged,
    Event,
    MessageArrived,
    OfflineSyncDone,
    Opened,
    Paired,
    PairingCodeShown,
    PreKeysUploaded,
    QrCodeShown,
)
from shared import bufferjson
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from simulator.testing import ControlClient, SimulatorHandle, running_simulator

pytestmark = pytest.mark.integration

PHONE = "+40700000001"
REPO_ROOT = Path(__file__).resolve().parents[3]
DEVICE_JID = "40700000001:1@s.whatsapp.net"
E = TypeVar("E", bound=Event)


class Session:
    """An ``EngineSession`` plus the events it has produced so far."""

    def __init__(self, sim: SimulatorHandle, store: MemoryAuthStore, **client: Any) -> None:
        client_config = dataclasses.replace(
            ClientConfig(root_public_key=sim.root_public_key, initial_pre_key_count=30), **client
        )
        self.engine = EngineSession(store, EngineConfig(url=sim.ws_url, connect_timeout_s=5, client=client_config))
        self.seen: list[Event] = []
        self._iterator: AsyncIterator[Event] = self.engine.events()

    async def wait(self, kind: type[E], match: Callable[[E], bool] = lambda e: True, timeout: float = 15) -> E:
        async def next_match() -> E:
            while True:
                for event in self.seen:
                    if isinstance(event, kind) and match(event):
                        self.seen.remove(event)
                        return event
                self.seen.append(await anext(self._iterator))

        return await asyncio.wait_for(next_match(), timeout)


def fresh_store() -> MemoryAuthStore:
    return MemoryAuthStore(AuthState.generate(os.urandom))


def restarted(store: MemoryAuthStore) -> MemoryAuthStore:
    """What a new process gets back: the state serialised as BufferJSON and revived."""
    text = bufferjson.dumps(store.snapshot().to_json())
    return MemoryAuthStore(AuthState.from_json(bufferjson.revive(text)))


async def pair_by_qr(sim: SimulatorHandle, control: ControlClient, store: MemoryAuthStore) -> None:
    session = Session(sim, store)
    shown = await session.wait(QrCodeShown)
    await control.scan(PHONE, shown.qr)
    assert (await session.wait(Paired)).jid == DEVICE_JID
    closed = await session.wait(Closed)
    assert (closed.info.reason, closed.info.policy) == (CloseReason.RESTART_REQUIRED, ClosePolicy.RESTART_NOW)


async def test_qr_pairing_515_then_login_with_restored_credentials() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        changes: list[CredsChanged] = []
        session = Session(sim, store)
        first = await session.wait(QrCodeShown)
        assert first.index == 1
        await control.scan(PHONE, first.qr)
        paired = await session.wait(Paired)
        assert paired.jid == DEVICE_JID and paired.lid
        changes += [e for e in session.seen if isinstance(e, CredsChanged)]
        assert any(c.kind == "critical" and "account" in c.creds_fields for c in changes)
        assert (await session.wait(Closed)).info.policy is ClosePolicy.RESTART_NOW

        login_store = restarted(store)
        login = Session(sim, login_store)
        opened = await login.wait(Opened)
        assert opened.jid == DEVICE_JID
        uploaded = await login.wait(PreKeysUploaded)
        assert (uploaded.count, uploaded.server_count_before) == (30, 0)
        device = await control.device(PHONE, 1)
        assert (device["preKeyCount"], device["liveSockets"], device["loginCount"]) == (30, 1, 1)
        await login.engine.close()

        assert login_store.get_creds().first_unuploaded_pre_key_id == 31
        assert len(login_store.get_keys("pre-key", [str(i) for i in range(1, 31)])) == 30

        again = Session(sim, restarted(login_store))  # another restart: the uploaded keys are known
        await again.wait(Opened)
        with pytest.raises(TimeoutError):
            await again.wait(PreKeysUploaded, timeout=0.5)
        assert (await control.device(PHONE, 1))["loginCount"] == 2
        await again.engine.close()


async def test_code_pairing_515_then_login() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        session = Session(sim, store, pairing_phone_number=PHONE)
        shown = await session.wait(PairingCodeShown)
        assert len(shown.code) == 9 and not any(isinstance(e, QrCodeShown) for e in session.seen)
        await control.link_code(PHONE, shown.code)
        assert (await session.wait(Paired)).jid == DEVICE_JID
        assert (await session.wait(Closed)).info.reason is CloseReason.RESTART_REQUIRED
        login = Session(sim, store)
        await login.wait(Opened)
        await login.engine.close()


async def test_wrong_pairing_code_fails_pairing() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        session = Session(sim, fresh_store(), pairing_phone_number=PHONE)
        shown = await session.wait(PairingCodeShown)
        wrong = "".join("Z" if c != "Z" and c != "-" else ("Y" if c == "Z" else c) for c in shown.code)
        await control.link_code(PHONE, wrong)
        closed = await session.wait(Closed)
        assert (closed.info.reason, closed.info.policy) == (CloseReason.PAIRING_FAILED, ClosePolicy.STOP_PAIRING)


async def test_server_low_on_pre_keys_gets_a_new_batch() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        await pair_by_qr(sim, control, store)
        session = Session(sim, store)
        await session.wait(PreKeysUploaded)
        await control.consume_pre_keys(PHONE, 1, 27)
        refill = await session.wait(PreKeysUploaded)
        assert (refill.count, refill.server_count_before) == (50, 3)
        assert (await control.device(PHONE, 1))["preKeyCount"] == 53
        assert store.get_creds().first_unuploaded_pre_key_id == 81
        await session.engine.close()


@pytest.mark.parametrize(
    ("fault", "reason", "policy"),
    [
        ({"kind": "drop"}, CloseReason.CONNECTION_CLOSED, ClosePolicy.BACKOFF),
        ({"kind": "stream_error", "code": 515}, CloseReason.RESTART_REQUIRED, ClosePolicy.RESTART_NOW),
        ({"kind": "stream_error", "code": 503}, CloseReason.SERVICE_UNAVAILABLE, ClosePolicy.BACKOFF),
        ({"kind": "stream_error", "code": 500}, CloseReason.BAD_SESSION, ClosePolicy.BACKOFF),
        ({"kind": "malformed_frame", "variant": "garbage"}, CloseReason.PROTOCOL_ERROR, ClosePolicy.BACKOFF),
        ({"kind": "malformed_frame", "variant": "bad_node"}, CloseReason.PROTOCOL_ERROR, ClosePolicy.BACKOFF),
        ({"kind": "stop_pings"}, CloseReason.CONNECTION_LOST, ClosePolicy.BACKOFF),
    ],
)
async def test_faults_on_a_live_connection(fault: dict[str, Any], reason: CloseReason, policy: ClosePolicy) -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        await pair_by_qr(sim, control, store)
        # Short keepalive only where the test is about keepalive: elsewhere a slow CI must not turn the
        # expected reason into connection_lost.
        fast_pings = {"keepalive_min_s": 0.3, "keepalive_max_s": 0.4, "ping_timeout_s": 1.0}
        session = Session(sim, store, **(fast_pings if fault["kind"] == "stop_pings" else {}))
        await session.wait(Opened)
        await control.fault(phone=PHONE, **fault)
        closed = await session.wait(Closed)
        assert (closed.info.reason, closed.info.policy) == (reason, policy)


async def test_replaced_logged_out_and_refused() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        await pair_by_qr(sim, control, store)

        first = Session(sim, store)
        await first.wait(Opened)
        second = Session(sim, store)
        await second.wait(Opened)
        replaced = await first.wait(Closed)
        assert (replaced.info.reason, replaced.info.policy) == (CloseReason.REPLACED, ClosePolicy.STOP_REPLACED)

        await control.unlink(PHONE, 1)
        removed = await second.wait(Closed)
        assert (removed.info.reason, removed.info.policy) == (CloseReason.DEVICE_REMOVED, ClosePolicy.STOP_LOGGED_OUT)
        later = await Session(sim, store).wait(Closed)
        assert (later.info.reason, later.info.code, later.info.policy) == (
            CloseReason.LOGGED_OUT, 401, ClosePolicy.STOP_LOGGED_OUT)

        await control.fault("refuse", seconds=30)
        refused = await Session(sim, store).wait(Closed)
        assert refused.info.policy is ClosePolicy.BACKOFF


async def test_refused_device_backs_off_until_the_refusal_ends() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        await pair_by_qr(sim, control, store)
        await control.fault("refuse", phone=PHONE, device=1, seconds=1.0)
        refused = await Session(sim, store).wait(Closed)
        assert (refused.info.reason, refused.info.policy) == (CloseReason.CONNECTION_CLOSED, ClosePolicy.BACKOFF)
        assert (await control.device(PHONE, 1))["loginCount"] == 0
        await asyncio.sleep(1.2)
        again = Session(sim, store)
        await again.wait(Opened)
        await again.engine.close()


async def test_qr_refs_expire_without_a_scan() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        session = Session(sim, fresh_store(), first_qr_ttl_s=0.2, next_qr_ttl_s=0.1)
        closed = await session.wait(Closed)
        assert sum(isinstance(e, QrCodeShown) for e in session.seen) == 6
        assert (closed.info.reason, closed.info.policy) == (CloseReason.PAIRING_EXPIRED, ClosePolicy.STOP_PAIRING)


async def test_messages_stay_pending_until_acked_and_are_redelivered_after_a_restart() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        await pair_by_qr(sim, control, store)
        session = Session(sim, store)
        await session.wait(Opened)
        await control.send_message(PHONE, "+40711111111", id="3EB0AAAA", encType="pkmsg")
        await control.send_message(PHONE, "+40711111111", id="3EB0BBBB")
        first = (await session.wait(MessageArrived, lambda e: e.message.id == "3EB0AAAA")).message
        assert first.sender.startswith("40711111111") and first.payloads[0].type == "pkmsg"
        assert first.payloads[0].ciphertext
        await session.wait(MessageArrived, lambda e: e.message.id == "3EB0BBBB")
        assert await session.engine.ack(first)  # only the first one reached durable storage
        for _ in range(50):
            pending = [m["id"] for m in await control.pending_messages(PHONE, 1)]
            if pending == ["3EB0BBBB"]:
                break
            await asyncio.sleep(0.05)
        assert pending == ["3EB0BBBB"]
        await session.engine.close()

        resumed = Session(sim, restarted(store))
        await resumed.wait(Opened)
        redelivered = (await resumed.wait(MessageArrived)).message
        assert redelivered.id == "3EB0BBBB"
        offline = await resumed.wait(OfflineSyncDone)
        assert offline.count == 1
        assert await resumed.engine.ack(redelivered)
        for _ in range(50):
            if not await control.pending_messages(PHONE, 1):
                break
            await asyncio.sleep(0.05)
        assert await control.pending_messages(PHONE, 1) == []
        await resumed.engine.close()


async def test_login_from_a_separate_process_with_the_persisted_state(tmp_path: Path) -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        await pair_by_qr(sim, control, store)
        state_file = tmp_path / "state.json"
        state_file.write_text(bufferjson.dumps(store.snapshot().to_json()))
        for attempt in (1, 2):  # two process lifetimes on the same persisted state
            child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tests.connector.engine.login_child", str(state_file), sim.ws_url,
                sim.root_public_key_b64, cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            try:
                stdout, stderr = await asyncio.wait_for(child.communicate(), 30)
            finally:
                if child.returncode is None:
                    child.kill()
                    await child.wait()
            assert child.returncode == 0, stderr.decode()[-2000:]
            assert stdout.decode().strip() == f"opened {DEVICE_JID}"
            assert (await control.device(PHONE, 1))["loginCount"] == attempt
        restored = AuthState.from_json(bufferjson.revive(state_file.read_text()))
        assert len(restored.keys.get("pre-key", {})) == 15  # uploaded by the first process, kept by the second
        assert (await control.device(PHONE, 1))["preKeyCount"] == 15


async def test_logout_unlinks_the_device_and_its_credentials_no_longer_log_in() -> None:
    async with running_simulator() as sim, sim.control() as control:
        await control.create_phone(PHONE)
        store = fresh_store()
        await pair_by_qr(sim, control, store)
        session = Session(sim, store)
        await session.wait(Opened)
        assert [d["jid"] for d in await control.devices(PHONE)] == [DEVICE_JID]

        info = await asyncio.wait_for(session.engine.logout(5.0), 10)
        assert (info.reason, info.policy) == (CloseReason.LOGGED_OUT_BY_CLIENT, ClosePolicy.STOP_REQUESTED)
        assert (await session.wait(Closed)).info == info
        assert await control.devices(PHONE) == []

        later = await Session(sim, restarted(store)).wait(Closed)
        assert (later.info.reason, later.info.code, later.info.policy) == (
            CloseReason.LOGGED_OUT, 401, ClosePolicy.STOP_LOGGED_OUT)
