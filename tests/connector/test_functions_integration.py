"""The connector service against the real functions, Firestore and Pub/Sub emulators.

The engine is the in-memory fake here (the simulator tests cover the real one): these tests pin
the contract between the connector and the functions: connectorSync claims and leases, sealed
snapshots accepted by the persist function, generation fencing, and outages.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from connector.config import ConnectorConfig, Topics
from connector.link import Closed, Opened, Paired, PairingCodeShown
from connector.publisher import PubSubTransport
from connector.service import ConnectorService
from connector.states import AccountState
from connector.sync import HttpSyncClient
from shared.authstate import AuthState
from tests.connector.fakes import FakeLinkFactory, FakeSession, eventually
from tests.connector.stack import TOKEN, Stack, start_stack
from tests.shared.helpers import registered_state

pytestmark = pytest.mark.integration


def pair_then_open(registered: AuthState) -> Any:
    """A fake engine: a pairing session writes a registered identity, then 515; logins open."""

    def script(session: FakeSession) -> None:
        if session.pairing is None:
            session.push(Opened())
            return
        session.push(PairingCodeShown("ABCD1234"))
        session.store.update_creds(dict(registered.creds.as_json()))
        session.store.set_keys({category: dict(entries) for category, entries in registered.keys.items()})
        session.push(Paired("40700000001:7@s.whatsapp.net"))
        session.push(Closed("restart_required", "restart_now", 515))

    return script


def service(stack: Stack, connector_id: str, links: FakeLinkFactory, tmp: Path, **overrides: Any
            ) -> ConnectorService:
    config = ConnectorConfig(
        functions_url=stack.functions_base, connector_id=connector_id, token=TOKEN, port=0,
        cache_dir=str(tmp / f"cache-{connector_id}"), project_id=stack.project,
        topics=Topics(stack.topics["snapshots"], stack.topics["connection_events"], stack.topics["messages"]),
        coalesce_window_s=0.5, sync_interval_s=1.0, **overrides)
    return ConnectorService(config, sync_client=HttpSyncClient(config.functions_url, config.token),
                            transport=PubSubTransport(config.project_id), link_factory=links,
                            cache=None)


def head(firestore_client: Any, account_id: str) -> dict[str, Any] | None:
    snap = firestore_client.collection("whatsapp_sessions").document(account_id).get()
    return snap.to_dict() if snap.exists else None


def doc(firestore_client: Any, collection: str, account_id: str) -> dict[str, Any]:
    snap = firestore_client.collection(collection).document(account_id).get()
    return snap.to_dict() or {}


async def wait_for(check: Any, timeout_s: float = 20.0) -> None:
    await eventually(lambda: bool(check()), timeout_s)


@pytest.fixture
def stack(children: Any, project_id: str, firestore_client: Any, pubsub_emulator: str, tmp_path: Path) -> Stack:
    return start_stack(children, project_id, uuid.uuid4().hex[:10], tmp_path / "home")


async def test_paired_account_survives_a_connector_restart(stack: Stack, firestore_client: Any,
                                                           tmp_path: Path) -> None:
    registered = registered_state(seed=3)
    account_id = await asyncio.to_thread(stack.add_account, "+40700000001")
    links = FakeLinkFactory(pair_then_open(registered))
    first = service(stack, "c-first", links, tmp_path)
    await first.start()
    try:
        await wait_for(lambda: account_id in first.accounts
                       and first.accounts[account_id].supervisor.state is AccountState.OPEN)
        await wait_for(lambda: (head(firestore_client, account_id) or {}).get("generation") == 1)
        await wait_for(lambda: doc(firestore_client, "accounts", account_id).get("status") == "connected")
    finally:
        await first.shutdown()
    assert doc(firestore_client, "leases", account_id)["connectorId"] is None  # released on shutdown

    links2 = FakeLinkFactory(pair_then_open(registered))
    second = service(stack, "c-second", links2, tmp_path)
    await second.start()
    try:
        await wait_for(lambda: account_id in second.accounts, timeout_s=15)
        session = links2.of(account_id)[0]
        assert session.pairing is None  # restored, not paired again
        assert session.store.snapshot() == registered  # every key category, not just the creds
        assert doc(firestore_client, "leases", account_id)["generation"] == 2
    finally:
        await second.shutdown()
