"""The connectorSync contract reads back what it writes, in both directions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.connector_sync import (
    Claim,
    ClaimMode,
    Command,
    CommandAction,
    HeldLease,
    Lost,
    LostReason,
    PairingMethod,
    PairingRequest,
    RenewedLease,
    SyncReply,
    SyncRequest,
)
from shared.errors import SyncContractError, SyncLimitError

AT = datetime(2026, 12, 4, 1, 0, 0, 123000, tzinfo=UTC)


def test_request_round_trips() -> None:
    request = SyncRequest("c-1", 10, bytes(range(32)), held=(HeldLease("a1", 3), HeldLease("a2", 1, renew=False)),
                          release=(HeldLease("a3", 5),))
    body = request.to_json()
    assert body["held"][1] == {"accountId": "a2", "generation": 1, "renew": False}
    assert SyncRequest.from_json(body) == request


def test_reply_round_trips_with_enums() -> None:
    pairing = PairingRequest(PairingMethod.CODE, "+40700000001")
    reply = SyncReply(30.0, bytes(32), "k1", renewed=(RenewedLease("a1", 3, AT),),
                      lost=(Lost("a9", LostReason.TAKEN),),
                      claimed=(Claim("a3", 7, ClaimMode.RESTORE, sealed_state=b"sealed", version=4, fell_back=True,
                                     lease_expires_at=AT),
                               Claim("p1", 1, ClaimMode.PAIR, pairing=pairing,
                                     lease_expires_at=AT)),
                      commands=(Command("a1", CommandAction.REMOVE),))
    back = SyncReply.from_json(reply.to_json())
    assert back.claimed[1].pairing is not None and back.claimed[1].pairing.method is PairingMethod.CODE
    assert back.claimed[0].mode is ClaimMode.RESTORE and back.lost[0].reason is LostReason.TAKEN
    assert back.commands[0].action is CommandAction.REMOVE
    assert (back.renewed, back.lost, back.claimed, back.commands) == (
        list(reply.renewed), list(reply.lost), list(reply.claimed), list(reply.commands))


def test_request_errors_name_the_field() -> None:
    body = SyncRequest("c-1", 1, bytes(32)).to_json()
    with pytest.raises(SyncContractError) as caught:
        SyncRequest.from_json({**body, "capacity": "many"})
    assert caught.value.field == "capacity"
    with pytest.raises(SyncLimitError):
        SyncRequest.from_json({**body, "held": [{"accountId": f"a{i}", "generation": 1} for i in range(5001)]})
