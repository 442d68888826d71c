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
    body = SyncRequest("c-1", 1, bytes(range(32))).to_json()
    with pytest.raises(SyncContractError) as caught:
        SyncRequest.from_json({**body, "capacity": "many"})
    assert caught.value.field == "capacity"
    with pytest.raises(SyncLimitError):
        SyncRequest.from_json({**body, "held": [{"accountId": f"a{i}", "generation": 1} for i in range(5001)]})


LOW_ORDER_KEYS = [bytes(32), b"\x01" + bytes(31), bytes(31) + b"\x80",
                  bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
                  bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
                  bytes.fromhex("ec" + "ff" * 30 + "7f"), bytes.fromhex("ed" + "ff" * 30 + "7f"),
                  bytes.fromhex("ee" + "ff" * 30 + "7f")]


@pytest.mark.parametrize("key", LOW_ORDER_KEYS, ids=lambda k: k[:4].hex())
def test_a_low_order_public_key_is_refused(key: bytes) -> None:
    """Issue 16 item 10: a restored state sealed to a low-order point (all-zero key included) has a known
    shared secret, so anyone who sees the reply could open it. The contract refuses such keys."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from shared.sealing import public_key_bytes

    good = SyncRequest("c-1", 1, public_key_bytes(X25519PrivateKey.generate())).to_json()
    assert SyncRequest.from_json(good).capacity == 1
    with pytest.raises(SyncContractError, match="low-order") as caught:
        SyncRequest.from_json({**good, "publicKey": base64.b64encode(key).decode()})
    assert caught.value.field == "publicKey"
