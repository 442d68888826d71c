"""The phone's side of ADV (account device verification): it vouches for a new companion.

``sign_companion`` builds what ``pair-success`` carries in ``<device-identity>``:
``ADVSignedDeviceIdentityHMAC{details: ADVSignedDeviceIdentity{details: ADVDeviceIdentity,
accountSignatureKey, accountSignature}, hmac}``. The account signature is XEdDSA by the phone's
identity key over ``6,0 | ADVDeviceIdentity | companion identity key``; the HMAC is HMAC-SHA256 with
the companion's adv secret over the serialized ADVSignedDeviceIdentity.

``check_companion_reply`` checks the ``pair-device-sign`` answer: the same details, and a device
signature by the companion's identity key over ``6,1 | details | companion identity | account key``
(whatsmeow pair.go, Baileys validate-connection.ts).
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from connector.protocol.proto import wa_pb2
from shared import signatures
from simulator import crypto
from simulator.errors import PairingError
from simulator.pairing import ADV_ACCOUNT_SIGNATURE_PREFIX, ADV_DEVICE_SIGNATURE_PREFIX


@dataclass(frozen=True)
class SignedCompanion:
    container: bytes  # the <device-identity> content of pair-success
    details: bytes  # serialized ADVDeviceIdentity
    key_index: int


def sign_companion(
    *,
    phone_identity_private: bytes,
    phone_identity_public: bytes,
    companion_identity_public: bytes,
    adv_secret: bytes,
    key_index: int,
    raw_id: int,
    timestamp: int,
    random_bytes: crypto.RandomBytes,
) -> SignedCompanion:
    details = wa_pb2.ADVDeviceIdentity(
        rawId=raw_id, timestamp=timestamp, keyIndex=key_index
    ).SerializeToString()
    account_signature = signatures.xeddsa_sign(
        phone_identity_private,
        ADV_ACCOUNT_SIGNATURE_PREFIX + details + companion_identity_public,
        random_bytes,
    )
    signed = wa_pb2.ADVSignedDeviceIdentity(
        details=details, accountSignatureKey=phone_identity_public, accountSignature=account_signature
    ).SerializeToString()
    container = wa_pb2.ADVSignedDeviceIdentityHMAC(
        details=signed, hmac=crypto.hmac_sha256(adv_secret, signed)
    ).SerializeToString()
    return SignedCompanion(container, details, key_index)


def check_companion_reply(
    reply: bytes, *, expected: SignedCompanion, phone_identity_public: bytes, companion_identity_public: bytes
) -> None:
    """Raise PairingError unless ``reply`` is our identity, signed back by the companion."""
    identity = wa_pb2.ADVSignedDeviceIdentity()
    try:
        identity.ParseFromString(reply)
    except DecodeError:
        raise PairingError("pair-device-sign identity is not an ADVSignedDeviceIdentity") from None
    if identity.details != expected.details:
        raise PairingError("pair-device-sign carries other device details")
    message = (
        ADV_DEVICE_SIGNATURE_PREFIX + identity.details + companion_identity_public + phone_identity_public
    )
    if not signatures.xeddsa_verify(companion_identity_public, message, identity.deviceSignature):
        raise PairingError("device signature does not verify")
