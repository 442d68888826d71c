"""What a client says about itself at the end of the Noise handshake (the ClientPayload).

A ClientPayload with ``username`` (and ``device``) is a login of a linked companion; one with
``devicePairingData`` is an unpaired companion asking to register (Baileys ``generateLoginNode`` /
``generateRegistrationNode``). Registration data carries the companion's Signal registration id
(4 bytes big-endian), key type (5), identity key, and signed pre-key (3-byte id, key, signature).
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from connector.protocol.proto import wa_pb2
from simulator import crypto
from simulator.errors import ClientProtocolError
from simulator.state import SignedPreKey


@dataclass(frozen=True)
class LoginHello:
    user: str
    device_id: int
    passive: bool
    push_name: str


@dataclass(frozen=True)
class RegistrationHello:
    registration_id: int
    identity_public: bytes
    signed_pre_key: SignedPreKey
    platform: str
    push_name: str


Hello = LoginHello | RegistrationHello


def _platform_name(device_props: bytes) -> str:
    props = wa_pb2.DeviceProps()
    try:
        props.ParseFromString(device_props)
    except DecodeError:
        return "unknown"
    kind = wa_pb2.DeviceProps.PlatformType.Name(props.platformType) if props.HasField("platformType") else ""
    return f"{props.os} ({kind.lower()})" if props.os else kind.lower() or "unknown"


def parse_client_payload(data: bytes) -> Hello:
    """Raises ClientProtocolError when the payload is neither a valid login nor a registration."""
    payload = wa_pb2.ClientPayload()
    try:
        payload.ParseFromString(data)
    except DecodeError:
        raise ClientProtocolError("ClientPayload does not parse") from None
    if payload.HasField("devicePairingData"):
        reg = payload.devicePairingData
        identity = crypto.raw_public_key(reg.eIdent)
        skey = crypto.raw_public_key(reg.eSkeyVal)
        if len(reg.eRegid) != 4 or identity is None or skey is None or len(reg.eSkeyId) != 3:
            raise ClientProtocolError("registration data has the wrong sizes")
        if reg.eKeytype != bytes([crypto.DJB_KEY_TYPE]):
            raise ClientProtocolError("registration key type is not 5 (Curve25519)")
        return RegistrationHello(
            registration_id=int.from_bytes(reg.eRegid, "big"),
            identity_public=identity,
            signed_pre_key=SignedPreKey(int.from_bytes(reg.eSkeyId, "big"), skey, bytes(reg.eSkeySig)),
            platform=_platform_name(reg.deviceProps),
            push_name=payload.pushName,
        )
    if payload.HasField("username"):
        return LoginHello(
            user=str(payload.username),
            device_id=payload.device,
            passive=payload.passive,
            push_name=payload.pushName,
        )
    raise ClientProtocolError("ClientPayload has neither username nor devicePairingData")
