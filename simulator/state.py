"""The simulator's world: simulated phones (accounts), their linked companion devices and the keys
those devices registered. Pure data and rules, no I/O, no clocks: callers pass time in.

Rules kept here (the real server's, as far as a companion can observe them):

- A phone number is the account. Companion devices get increasing device ids (1, 2, ...); an id
  is never reused, so a device unlinked from the phone stays refused forever.
- A device logs in with the Noise static key it registered with; any other key is refused.
- One-time pre-keys are consumed when a contact fetches a key bundle; the count the server reports
  is the number left.

Everything round-trips through ``to_json`` / ``from_json`` so a restarted simulator keeps its
accounts (and its root key, so clients configured with it keep trusting it).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from simulator.errors import ConflictError, InvalidRequestError, NotFoundError

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
STATE_FORMAT = "keeper.simulator.state.v1"

_PHONE_DIGITS = re.compile(r"^[1-9][0-9]{6,14}$")


def normalize_phone(phone: str) -> str:
    """Return the account user part (digits, no ``+``) for an E.164 number such as ``+40700000001``.

    Raises InvalidRequestError for anything that is not 7-15 digits after stripping ``+``, spaces
    and dashes.
    """
    digits = re.sub(r"[\s\-()]", "", phone).removeprefix("+")
    if not _PHONE_DIGITS.match(digits):
        raise InvalidRequestError(f"not an international phone number: {phone!r}")
    return digits


def user_jid(user: str) -> str:
    return f"{user}@{USER_SERVER}"


def device_jid(user: str, device_id: int, server: str = USER_SERVER) -> str:
    return f"{user}:{device_id}@{server}" if device_id else f"{user}@{server}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass
class SignedPreKey:
    key_id: int
    public: bytes
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {"id": self.key_id, "public": _b64(self.public), "signature": _b64(self.signature)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignedPreKey:
        return cls(int(data["id"]), _unb64(data["public"]), _unb64(data["signature"]))


@dataclass
class PendingMessage:
    """A message the server holds for a device until the device acknowledges it (``<ack class=message>``).

    The content is opaque ciphertext: the simulator relays, it does not encrypt or read messages.
    """

    message_id: str
    sender: str  # user JID of the contact who sent it
    timestamp: int
    type: str
    enc_type: str
    ciphertext: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "from": self.sender,
            "t": self.timestamp,
            "type": self.type,
            "encType": self.enc_type,
            "ciphertext": _b64(self.ciphertext),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingMessage:
        return cls(
            str(data["id"]),
            str(data["from"]),
            int(data["t"]),
            str(data["type"]),
            str(data["encType"]),
            _unb64(data["ciphertext"]),
        )


@dataclass
class CompanionDevice:
    """A linked companion (a WhatsApp Web client) as the server knows it."""

    device_id: int
    noise_public: bytes
    identity_public: bytes
    registration_id: int
    signed_pre_key: SignedPreKey
    key_index: int
    platform: str
    linked_at: float
    pre_keys: dict[int, bytes] = field(default_factory=dict)
    login_count: int = 0
    last_login_at: float | None = None
    pending_messages: list[PendingMessage] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "deviceId": self.device_id,
            "noisePublic": _b64(self.noise_public),
            "identityPublic": _b64(self.identity_public),
            "registrationId": self.registration_id,
            "signedPreKey": self.signed_pre_key.to_json(),
            "keyIndex": self.key_index,
            "platform": self.platform,
            "linkedAt": self.linked_at,
            "preKeys": {str(k): _b64(v) for k, v in sorted(self.pre_keys.items())},
            "loginCount": self.login_count,
            "lastLoginAt": self.last_login_at,
            "pendingMessages": [m.to_json() for m in self.pending_messages],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CompanionDevice:
        return cls(
            device_id=int(data["deviceId"]),
            noise_public=_unb64(data["noisePublic"]),
            identity_public=_unb64(data["identityPublic"]),
            registration_id=int(data["registrationId"]),
            signed_pre_key=SignedPreKey.from_json(data["signedPreKey"]),
            key_index=int(data["keyIndex"]),
            platform=str(data["platform"]),
            linked_at=float(data["linkedAt"]),
            pre_keys={int(k): _unb64(v) for k, v in data.get("preKeys", {}).items()},
            login_count=int(data.get("loginCount", 0)),
            last_login_at=data.get("lastLoginAt"),
            pending_messages=[PendingMessage.from_json(m) for m in data.get("pendingMessages", [])],
        )


@dataclass
class Phone:
    """A simulated primary device: the account, its identity key pair and its companions."""

    user: str
    identity_private: bytes
    identity_public: bytes
    lid_user: str
    created_at: float
    push_name: str = ""
    business_name: str = ""
    devices: dict[int, CompanionDevice] = field(default_factory=dict)
    removed_device_ids: set[int] = field(default_factory=set)
    next_device_id: int = 1
    next_key_index: int = 1

    @property
    def jid(self) -> str:
        return user_jid(self.user)

    def device(self, device_id: int) -> CompanionDevice:
        try:
            return self.devices[device_id]
        except KeyError:
            raise NotFoundError(f"phone {self.user} has no linked device {device_id}") from None

    def allocate_device(self) -> tuple[int, int]:
        """Reserve the next device id and ADV key index (neither is ever reused)."""
        device_id, key_index = self.next_device_id, self.next_key_index
        self.next_device_id += 1
        self.next_key_index += 1
        return device_id, key_index

    def link(self, device: CompanionDevice) -> None:
        if device.device_id in self.devices or device.device_id in self.removed_device_ids:
            raise ConflictError(f"device id {device.device_id} of {self.user} was used before")
        self.devices[device.device_id] = device

    def unlink(self, device_id: int) -> CompanionDevice:
        device = self.device(device_id)
        del self.devices[device_id]
        self.removed_device_ids.add(device_id)
        return device

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "identityPrivate": _b64(self.identity_private),
            "identityPublic": _b64(self.identity_public),
            "lidUser": self.lid_user,
            "createdAt": self.created_at,
            "pushName": self.push_name,
            "businessName": self.business_name,
            "devices": [d.to_json() for _, d in sorted(self.devices.items())],
            "removedDeviceIds": sorted(self.removed_device_ids),
            "nextDeviceId": self.next_device_id,
            "nextKeyIndex": self.next_key_index,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Phone:
        devices = [CompanionDevice.from_json(d) for d in data.get("devices", [])]
        return cls(
            user=str(data["user"]),
            identity_private=_unb64(data["identityPrivate"]),
            identity_public=_unb64(data["identityPublic"]),
            lid_user=str(data["lidUser"]),
            created_at=float(data["createdAt"]),
            push_name=str(data.get("pushName", "")),
            business_name=str(data.get("businessName", "")),
            devices={d.device_id: d for d in devices},
            removed_device_ids={int(x) for x in data.get("removedDeviceIds", [])},
            next_device_id=int(data.get("nextDeviceId", 1)),
            next_key_index=int(data.get("nextKeyIndex", 1)),
        )


@dataclass
class ServerIdentity:
    """The simulator's trust root and Noise identity.

    ``root_private`` signs the intermediate certificate; clients trust ``root_public``. The static
    key pair is the server's Noise static key, certified by the leaf certificate.
    """

    root_private: bytes
    root_public: bytes
    static_private: bytes
    static_public: bytes
    cert_chain: bytes

    def to_json(self) -> dict[str, Any]:
        return {
            "rootPrivate": _b64(self.root_private),
            "rootPublic": _b64(self.root_public),
            "staticPrivate": _b64(self.static_private),
            "staticPublic": _b64(self.static_public),
            "certChain": _b64(self.cert_chain),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerIdentity:
        return cls(
            root_private=_unb64(data["rootPrivate"]),
            root_public=_unb64(data["rootPublic"]),
            static_private=_unb64(data["staticPrivate"]),
            static_public=_unb64(data["staticPublic"]),
            cert_chain=_unb64(data["certChain"]),
        )


@dataclass
class SimulatorState:
    """Every account the simulator knows, plus its server identity."""

    identity: ServerIdentity
    phones: dict[str, Phone] = field(default_factory=dict)

    def phone(self, phone: str) -> Phone:
        user = normalize_phone(phone)
        try:
            return self.phones[user]
        except KeyError:
            raise NotFoundError(f"no simulated phone {phone}") from None

    def add_phone(self, phone: Phone) -> None:
        if phone.user in self.phones:
            raise ConflictError(f"phone {phone.user} exists")
        self.phones[phone.user] = phone

    def lid_taken(self, lid_user: str) -> bool:
        return any(p.lid_user == lid_user for p in self.phones.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "identity": self.identity.to_json(),
            "phones": [p.to_json() for _, p in sorted(self.phones.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimulatorState:
        if data.get("format") != STATE_FORMAT:
            raise InvalidRequestError(f"unknown simulator state format {data.get('format')!r}")
        phones = [Phone.from_json(p) for p in data.get("phones", [])]
        return cls(identity=ServerIdentity.from_json(data["identity"]), phones={p.user: p for p in phones})
