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

from connector.protocol.binary import Node
from simulator.errors import ConflictError, InvalidRequestError, NotFoundError

USER_SERVER = "s.whatsapp.net"
LID_SERVER = "lid"
GROUP_SERVER = "g.us"
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


def node_to_json(node: Node) -> dict[str, Any]:
    """A node as JSON (bytes in base64), to keep queued stanzas across restarts."""
    out: dict[str, Any] = {"tag": node.tag, "attrs": dict(node.attrs)}
    if isinstance(node.content, bytes):
        out["bytes"] = _b64(node.content)
    elif isinstance(node.content, list):
        out["children"] = [node_to_json(c) for c in node.content]
    return out


def node_from_json(data: dict[str, Any]) -> Node:
    content: list[Node] | bytes | None = None
    if "bytes" in data:
        content = _unb64(data["bytes"])
    elif "children" in data:
        content = [node_from_json(c) for c in data["children"]]
    return Node(str(data["tag"]), {str(k): str(v) for k, v in data.get("attrs", {}).items()}, content)


@dataclass
class QueuedStanza:
    """A stanza the server holds for one device until the device confirms it: a ``<message>`` until
    its receipt (or ``<ack class=message>``), a ``<receipt>`` until ``<ack class=receipt>``.

    The content is whatever the sender encrypted: the simulator relays, it does not read it.
    """

    node: Node

    @property
    def stanza_id(self) -> str:
        return self.node.attrs.get("id", "")

    @property
    def klass(self) -> str:
        return self.node.tag

    def to_json(self) -> dict[str, Any]:
        return node_to_json(self.node)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QueuedStanza:
        if "tag" not in data:  # the first format: a contact's message with one opaque <enc>
            attrs = {"from": str(data["from"]), "id": str(data["id"]), "t": str(data["t"]), "type": str(data["type"])}
            enc = Node("enc", {"v": "2", "type": str(data["encType"])}, _unb64(data["ciphertext"]))
            return cls(Node("message", attrs, [enc]))
        return cls(node_from_json(data))


@dataclass
class PrimaryKeys:
    """The phone's own Signal keys (device 0): what contacts fetch to start a session with the phone.

    The private halves stay here (test data) so the phone can be a Signal party itself.
    """

    registration_id: int
    signed_pre_key: SignedPreKey
    signed_pre_key_private: bytes
    pre_keys: dict[int, bytes] = field(default_factory=dict)  # id -> public
    #: private halves not yet taken into the phone's own Signal store (``Phone.signal_state``)
    pre_key_privates: dict[int, bytes] = field(default_factory=dict)
    next_pre_key_id: int = 1
    pending: list[QueuedStanza] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "registrationId": self.registration_id,
            "signedPreKey": self.signed_pre_key.to_json(),
            "signedPreKeyPrivate": _b64(self.signed_pre_key_private),
            "preKeys": {str(k): _b64(v) for k, v in sorted(self.pre_keys.items())},
            "preKeyPrivates": {str(k): _b64(v) for k, v in sorted(self.pre_key_privates.items())},
            "nextPreKeyId": self.next_pre_key_id,
            "pending": [m.to_json() for m in self.pending],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrimaryKeys:
        return cls(
            registration_id=int(data["registrationId"]),
            signed_pre_key=SignedPreKey.from_json(data["signedPreKey"]),
            signed_pre_key_private=_unb64(data["signedPreKeyPrivate"]),
            pre_keys={int(k): _unb64(v) for k, v in data.get("preKeys", {}).items()},
            pre_key_privates={int(k): _unb64(v) for k, v in data.get("preKeyPrivates", {}).items()},
            next_pre_key_id=int(data.get("nextPreKeyId", 1)),
            pending=[QueuedStanza.from_json(m) for m in data.get("pending", [])],
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
    pending_messages: list[QueuedStanza] = field(default_factory=list)

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
            pending_messages=[QueuedStanza.from_json(m) for m in data.get("pendingMessages", [])],
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
    primary: PrimaryKeys | None = None
    #: the phone's own Signal state (sessions, sender keys, its pre-keys' private halves) as
    #: keeper's canonical auth-state text; made on the phone's first message
    signal_state: str | None = None
    #: what the phone received (decrypted) and sent, oldest first: ``simulator.core.phone_party``
    inbox: list[dict[str, Any]] = field(default_factory=list)

    @property
    def jid(self) -> str:
        return user_jid(self.user)

    @property
    def lid_jid(self) -> str:
        return f"{self.lid_user}@{LID_SERVER}"

    def device_ids(self) -> list[int]:
        """Every device of the account a message goes to: the primary (0, once it has Signal keys)
        and each linked companion."""
        return ([0] if self.primary is not None else []) + sorted(self.devices)

    def has_device(self, device_id: int) -> bool:
        return (device_id == 0 and self.primary is not None) or device_id in self.devices

    def queue(self, device_id: int) -> list[QueuedStanza]:
        """The stanzas held for one device until it confirms them."""
        if device_id == 0 and self.primary is not None:
            return self.primary.pending
        return self.device(device_id).pending_messages

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
            "primary": None if self.primary is None else self.primary.to_json(),
            "signalState": self.signal_state,
            "inbox": self.inbox,
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
            primary=None if data.get("primary") is None else PrimaryKeys.from_json(data["primary"]),
            signal_state=data.get("signalState"),
            inbox=list(data.get("inbox", [])),
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
class Group:
    """A group chat as the server keeps it: its members (PN users) and their roles."""

    group_id: str  # the user part of ``<id>@g.us``
    subject: str
    creator: str  # PN user
    created_at: int
    participants: dict[str, str] = field(default_factory=dict)  # PN user -> "superadmin" | "admin" | ""
    subject_time: int = 0
    addressing_mode: str = "lid"

    @property
    def jid(self) -> str:
        return f"{self.group_id}@{GROUP_SERVER}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.group_id,
            "subject": self.subject,
            "creator": self.creator,
            "createdAt": self.created_at,
            "participants": dict(self.participants),
            "subjectTime": self.subject_time,
            "addressingMode": self.addressing_mode,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Group:
        return cls(
            group_id=str(data["id"]),
            subject=str(data["subject"]),
            creator=str(data["creator"]),
            created_at=int(data["createdAt"]),
            participants={str(k): str(v) for k, v in data.get("participants", {}).items()},
            subject_time=int(data.get("subjectTime", 0)),
            addressing_mode=str(data.get("addressingMode", "lid")),
        )


@dataclass
class SimulatorState:
    """Every account the simulator knows, plus its server identity."""

    identity: ServerIdentity
    phones: dict[str, Phone] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    _by_lid: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # LID user -> PN user

    def __post_init__(self) -> None:
        self._by_lid = {p.lid_user: p.user for p in self.phones.values()}

    def phone_by_jid_user(self, user: str, server: str) -> Phone | None:
        """The phone a JID's user part names, by phone number (``s.whatsapp.net``) or LID (``lid``)."""
        if server == LID_SERVER:
            pn = self._by_lid.get(user)
            return None if pn is None else self.phones.get(pn)
        if server == USER_SERVER:
            return self.phones.get(user)
        return None

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
        self._by_lid[phone.lid_user] = phone.user

    def lid_taken(self, lid_user: str) -> bool:
        return lid_user in self._by_lid

    def group(self, group_id: str) -> Group:
        try:
            return self.groups[group_id.removesuffix("@" + GROUP_SERVER)]
        except KeyError:
            raise NotFoundError(f"no group {group_id}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "identity": self.identity.to_json(),
            "phones": [p.to_json() for _, p in sorted(self.phones.items())],
            "groups": [g.to_json() for _, g in sorted(self.groups.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimulatorState:
        if data.get("format") != STATE_FORMAT:
            raise InvalidRequestError(f"unknown simulator state format {data.get('format')!r}")
        phones = [Phone.from_json(p) for p in data.get("phones", [])]
        groups = [Group.from_json(g) for g in data.get("groups", [])]
        return cls(
            identity=ServerIdentity.from_json(data["identity"]),
            phones={p.user: p for p in phones},
            groups={g.group_id: g for g in groups},
        )
