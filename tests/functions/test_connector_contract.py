"""The connector's own sync client and snapshot codec against the functions over HTTP and Pub/Sub:
the connectorSync contract and the sealing in both directions, as the two sides implement them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from google.cloud import pubsub_v1  # type: ignore[attr-defined]

from connector.errors import SyncRejected
from connector.snapshot_codec import SnapshotCodec
from connector.sync import HttpSyncClient
from shared.connector_sync import HeldLease, SyncRequest
from shared.events import SnapshotAttributes
from testkit.auth_states import registered_state
from tests.functions.conftest import CONNECTOR_TOKEN, Gateway

pytestmark = pytest.mark.integration


async def test_connector_claims_persists_and_restores_through_the_functions(
        functions_gateway: Gateway, firestore_client: Any) -> None:
    gw = functions_gateway
    added = gw.call("addAccount", {"phoneNumber": "+40722222222", "method": "code"}, "carol")
    account_id = added.json()["result"]["accountId"]

    first = SnapshotCodec("contract-1")
    client = HttpSyncClient(gw.base, CONNECTOR_TOKEN)
    try:
        answer = await client.sync(SyncRequest("contract-1", 50, first.public_key))
        [claim] = [c for c in answer.claimed if c.account_id == account_id]
        assert claim.mode == "pair" and claim.pairing is not None and claim.pairing.method == "code"
        first.vault_public_key, first.vault_key_id = answer.vault_public_key, answer.vault_key_id

        sealed = first.seal(account_id, claim.generation, registered_state(3))
        publisher = pubsub_v1.PublisherClient()
        attrs = SnapshotAttributes(account_id, claim.generation, "contract-1").to_attributes()
        publisher.publish(publisher.topic_path(gw.project, gw.topics["snapshots"]), sealed, **attrs).result(30)
        head = firestore_client.collection("whatsapp_sessions").document(account_id)
        deadline = time.monotonic() + 30
        while not (head.get().to_dict() or {}).get("latestVersion") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (head.get().to_dict() or {}).get("latestVersion") == 1

        ref = HeldLease(account_id, claim.generation)
        renewed = await client.sync(SyncRequest("contract-1", 50, first.public_key, held=[ref]))
        assert [r.account_id for r in renewed.renewed] == [account_id]
        await client.sync(SyncRequest("contract-1", 0, first.public_key, release=[ref]))
        firestore_client.collection("accounts").document(account_id).update({"status": "connected"})

        second = SnapshotCodec("contract-2")
        answer = await client.sync(SyncRequest("contract-2", 50, second.public_key))
        [restored] = [c for c in answer.claimed if c.account_id == account_id]
        assert (restored.mode, restored.version, restored.generation) == ("restore", 1, claim.generation + 1)
        assert restored.sealed_state is not None
        state = second.open_restored(account_id, restored.generation, restored.sealed_state)
        assert state == registered_state(3)

        intruder = HttpSyncClient(gw.base, "wrong-token")
        try:
            with pytest.raises(SyncRejected):
                await intruder.sync(SyncRequest("contract-3", 1, second.public_key))
        finally:
            await intruder.close()
    finally:
        await client.close()
