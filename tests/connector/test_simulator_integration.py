"""End to end: emulators, the functions gateway, the simulator and connector processes, all real.

Each connector is ``python -m connector`` in its own process, so it can be SIGTERMed or killed -9.
The simulator's control API is the witness of what happened on the WhatsApp side: linked devices,
live sockets per device, login counts.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from simulator.testing import ControlClient, SimulatorHandle, simulator_process
from testkit.connector_stack import Stack, kill_hard, start_stack

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


def wa_env(sim: SimulatorHandle, **extra: str) -> dict[str, str]:
    return {"KEEPER_WA_URL": sim.ws_url, "KEEPER_WA_ROOT_KEY": sim.root_public_key_b64, **extra}


def account(firestore_client: Any, account_id: str) -> dict[str, Any]:
    return firestore_client.collection("accounts").document(account_id).get().to_dict() or {}


def head(firestore_client: Any, account_id: str) -> dict[str, Any]:
    return firestore_client.collection("whatsapp_sessions").document(account_id).get().to_dict() or {}


async def until(check: Any, timeout_s: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s:.0f} s")
        await asyncio.sleep(0.25)


async def pair_by_code(stack: Stack, control: ControlClient, firestore_client: Any, phone: str,
                       timeout_s: float = 60.0) -> str:
    """Add an account for ``phone`` and type its pairing code on the simulated phone."""
    await control.create_phone(phone)
    account_id = await asyncio.to_thread(stack.add_account, phone, "code")
    pairing = await until(lambda: (account(firestore_client, account_id).get("pairing") or {}).get("code"),
                          timeout_s, "pairing code published")
    await control.link_code(phone, pairing)
    await until(lambda: account(firestore_client, account_id).get("status") == "connected", timeout_s,
                "account connected after pairing")
    return account_id


async def live_sockets(control: ControlClient, phone: str) -> list[int]:
    return [d["liveSockets"] for d in await control.devices(phone)]


def sigterm_and_time(proc: Any) -> float:
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    proc.process.wait(timeout=15)
    return time.monotonic() - started


async def test_account_paired_by_code_survives_a_connector_restart(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    phone = "+40700000021"
    first, _ = stack.start_connector("c-one", **wa_env(sim))
    account_id = await pair_by_code(stack, control, firestore_client, phone)
    await until(lambda: head(firestore_client, account_id).get("generation") == 1, what="state stored")
    (device,) = await control.devices(phone)
    assert device["liveSockets"] == 1
    logins = device["loginCount"]

    assert sigterm_and_time(first) < 8.5
    assert first.process is not None and first.process.returncode == 0
    assert await live_sockets(control, phone) == [0]

    stack.start_connector("c-two", **wa_env(sim))
    await until(lambda: head(firestore_client, account_id).get("generation", 0) >= 1
                and account(firestore_client, account_id).get("status") == "connected", what="reconnected")

    async def logged_in_again() -> bool:
        (d,) = await control.devices(phone)
        return bool(d["liveSockets"] == 1 and d["loginCount"] > logins)

    await until(logged_in_again, what="the same device logged in again")
    devices = await control.devices(phone)
    assert [d["device"] for d in devices] == [device["device"]]  # no second pairing
    lease = firestore_client.collection("leases").document(account_id).get().to_dict()
    assert lease["connectorId"] == "c-two" and lease["generation"] == 2


async def churn_pre_keys(control: ControlClient, phone: str, rounds: int, pause_s: float = 0.4) -> None:
    """Contacts take almost every one-time pre-key: the device uploads new ones (key churn)."""
    for _ in range(rounds):
        (device,) = await control.devices(phone)
        if device["preKeyCount"] > 2:
            await control.consume_pre_keys(phone, device["device"], device["preKeyCount"] - 2)
        await asyncio.sleep(pause_s)


def restore_outcomes(firestore_client: Any, account_id: str) -> list[dict[str, Any]]:
    """The account's restore outcomes, oldest first, as the functions' store reads them back."""
    from datetime import UTC, datetime

    from functions.firestore_stores import FirestoreOutcomeStore

    found = [o for o in FirestoreOutcomeStore(firestore_client).since(datetime(2000, 1, 1, tzinfo=UTC))
             if o.account_id == account_id]
    return [{"connectorId": o.connector_id, "outcome": o.outcome.value, "version": o.version}
            for o in sorted(found, key=lambda o: o.at)]


async def test_kill_9_during_key_churn_then_a_new_connector_restores_the_last_published_state(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    phone = "+40700000022"
    first, _ = stack.start_connector("c-killed", **wa_env(sim, KEEPER_COALESCE_WINDOW_S="0.5"))
    account_id = await pair_by_code(stack, control, firestore_client, phone)
    await until(lambda: head(firestore_client, account_id).get("generation") == 1, what="state stored")
    version_before = head(firestore_client, account_id)["latestVersion"]
    await churn_pre_keys(control, phone, rounds=4)
    await until(lambda: head(firestore_client, account_id)["latestVersion"] > version_before,
                what="churn reached the vault")
    churn = asyncio.create_task(churn_pre_keys(control, phone, rounds=3, pause_s=0.2))
    await asyncio.sleep(0.3)
    kill_hard(first)  # mid-churn: no flush, no lease release, socket just dies
    await churn
    await asyncio.sleep(2.0)  # whatever was accepted by Pub/Sub gets stored
    last_stored = head(firestore_client, account_id)["latestVersion"]

    (device,) = await control.devices(phone)
    logins = device["loginCount"]
    stack.start_connector("c-successor", **wa_env(sim))  # another container: no local cache

    async def logged_in_again() -> bool:
        (d,) = await control.devices(phone)
        return bool(d["liveSockets"] == 1 and d["loginCount"] > logins)

    # The dead connector's lease must run out first (10 s TTL here), then the successor claims it.
    await until(logged_in_again, timeout_s=60, what="successor logged in with the restored state")
    outcomes = [o for o in restore_outcomes(firestore_client, account_id) if o.get("connectorId") == "c-successor"]
    assert outcomes and outcomes[-1]["outcome"] == "restored"
    assert outcomes[-1]["version"] == last_stored
    await until(lambda: head(firestore_client, account_id).get("generation") == 2, timeout_s=30,
                what="successor's snapshots stored under generation 2")


async def test_sigterm_publishes_what_was_pending(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any,
        tmp_path: Path) -> None:
    phone = "+40700000023"
    proc, _ = stack.start_connector("c-term", **wa_env(sim, KEEPER_COALESCE_WINDOW_S="60"))
    account_id = await pair_by_code(stack, control, firestore_client, phone)
    await until(lambda: head(firestore_client, account_id).get("generation") == 1, what="state stored")
    # Key churn (pre-key uploads), and SIGTERM while its snapshots are still on their way.
    async def pre_keys_uploaded() -> bool:
        (d,) = await control.devices(phone)
        return bool(d["preKeyCount"] > 10)

    await until(pre_keys_uploaded, what="first pre-key upload")
    (device,) = await control.devices(phone)
    await control.consume_pre_keys(phone, device["device"], device["preKeyCount"] - 2)
    await asyncio.sleep(0.05)
    assert sigterm_and_time(proc) < 8.5
    lines = [json.loads(line) for line in proc.log_path.read_text().splitlines() if line.startswith("{")]
    messages = [line["message"] for line in lines]
    assert "connector stopped" in messages
    assert not any("not accepted in time" in m for m in messages)
    lease = firestore_client.collection("leases").document(account_id).get().to_dict()
    assert lease["connectorId"] is None  # released: only done once its snapshots were accepted
    await asyncio.sleep(2.0)
    stored = head(firestore_client, account_id)["latestVersion"]

    (device,) = await control.devices(phone)
    logins = device["loginCount"]
    stack.start_connector("c-after-term", **wa_env(sim))

    async def logged_in_again() -> bool:
        (d,) = await control.devices(phone)
        return bool(d["liveSockets"] == 1 and d["loginCount"] > logins)

    # Released, so the successor takes over at once instead of waiting for the lease to expire.
    await until(logged_in_again, timeout_s=20, what="successor logged in")
    outcomes = [o for o in restore_outcomes(firestore_client, account_id) if o.get("connectorId") == "c-after-term"]
    assert outcomes[-1]["version"] == stored


async def test_two_connectors_started_together_never_hold_two_sockets_for_one_device(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    phones = [f"+4070000003{i}" for i in range(3)]
    pairer, _ = stack.start_connector("c-pairer", **wa_env(sim))
    accounts = [await pair_by_code(stack, control, firestore_client, phone) for phone in phones]
    for account_id in accounts:
        await until(lambda a=account_id: head(firestore_client, a).get("generation") == 1, what="stored")
    sigterm_and_time(pairer)

    import sys

    from keeper.procs import ChildProcess, free_port

    started: list[ChildProcess] = []
    for name in ("c-left", "c-right"):
        env = stack.connector_env(name, free_port(), **wa_env(sim, KEEPER_CAPACITY="2"))
        started.append(stack.children(name, [sys.executable, "-m", "connector"], env=env))
    worst: dict[str, int] = dict.fromkeys(phones, 0)
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        for phone in phones:
            for device in await control.devices(phone):
                worst[phone] = max(worst[phone], device["liveSockets"])
        await asyncio.sleep(0.1)
    assert worst == dict.fromkeys(phones, 1)  # every device came back, never twice at once
    for phone in phones:
        (device,) = await control.devices(phone)
        assert device["liveSockets"] == 1
        assert device["replacedCount"] == 0  # no 440: nobody fought over a device
    owners = [firestore_client.collection("leases").document(a).get().to_dict()["connectorId"] for a in accounts]
    assert set(owners) == {"c-left", "c-right"}  # capacity 2 each: the work was shared


async def test_a_message_is_acknowledged_only_after_pubsub_accepted_it(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    from tests.connector.proxy import CuttableProxy

    host, port = os.environ["PUBSUB_EMULATOR_HOST"].split(":")
    proxy = CuttableProxy(host, int(port))
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(stack.project, f"messages-check-{stack.suffix}")
    subscriber.create_subscription(request={
        "name": subscription, "topic": f"projects/{stack.project}/topics/{stack.topics['messages']}"})
    try:
        phone, contact = "+40700000024", "+40711111124"
        stack.start_connector("c-msg", **wa_env(sim, PUBSUB_EMULATOR_HOST=proxy.address))
        await pair_by_code(stack, control, firestore_client, phone)
        await control.create_phone(contact)
        (device,) = await control.devices(phone)
        proxy.cut()  # Pub/Sub unreachable from the connector
        sent = await control.request("POST", f"/v1/phones/{contact}/messages", {"to": phone, "text": "hello"})
        message_id = sent["id"]
        await asyncio.sleep(4.0)
        pending = await control.pending_messages(phone, device["device"])
        assert [m["id"] for m in pending] == [message_id]  # delivered, but not acknowledged
        proxy.restore()
        await until(lambda: _no_pending(control, phone, device["device"]), timeout_s=30,
                    what="message acknowledged once published")
        response = subscriber.pull(request={"subscription": subscription, "max_messages": 10}, timeout=10)
        ids = [m.message.attributes["messageId"] for m in response.received_messages]
        assert message_id in ids
    finally:
        subscriber.delete_subscription(request={"subscription": subscription})
        subscriber.close()
        proxy.close()


async def _no_pending(control: ControlClient, phone: str, device_id: int) -> bool:
    return not await control.pending_messages(phone, device_id)


async def test_unlinked_on_the_phone_means_needs_pairing_and_no_retry(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    phone = "+40700000025"
    stack.start_connector("c-unlink", **wa_env(sim))
    account_id = await pair_by_code(stack, control, firestore_client, phone)
    (device,) = await control.devices(phone)
    await control.unlink(phone, device["device"])
    await until(lambda: account(firestore_client, account_id).get("status") == "needs_pairing",
                what="account marked as needing pairing")
    logins_then = (await control.healthz())["loginsTotal"]
    await asyncio.sleep(5.0)
    health = await control.healthz()
    # Never retried with the old keys: no login attempt, no socket.
    assert health["loginsTotal"] == logins_then
    assert health.get("loggedIn", 0) == 0
    assert await control.devices(phone) == []
    alerts = [a.to_dict() for a in firestore_client.collection("alerts").stream()]
    assert any(a.get("accountId") == account_id and a.get("kind") == "logged_out" for a in alerts)


async def test_removing_an_account_unlinks_its_device(
        stack: Stack, sim: SimulatorHandle, control: ControlClient, firestore_client: Any) -> None:
    phone = "+40700000026"
    stack.start_connector("c-remove", **wa_env(sim))
    account_id = await pair_by_code(stack, control, firestore_client, phone)
    assert len(await control.devices(phone)) == 1
    await asyncio.to_thread(stack.call, "removeAccount", {"accountId": account_id})

    async def unlinked() -> bool:
        return await control.devices(phone) == []

    await until(unlinked, timeout_s=30, what="device unlinked on the phone")
    await until(lambda: account(firestore_client, account_id).get("status") == "removed", timeout_s=30,
                what="removal confirmed to the functions")
