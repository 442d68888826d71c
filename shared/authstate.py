"""The auth state as a value: one linked device's credentials and keys (``authstore`` is the live store).

The whole auth state of one linked WhatsApp Web device: credentials plus every key category, as the
vault, the snapshots and restores see it (validated, serialised, compared).

The JSON form is Baileys' (``src/Types/Auth.ts``): ``creds`` is ``AuthenticationCreds`` and the key store
maps ``category -> id -> value`` with the categories of ``SignalDataTypeMap``. Binary values are
``bytes`` here and BufferJSON on the wire (:mod:`shared.bufferjson`).

:class:`Credentials` is a typed, read-only view over the creds JSON object. The JSON object stays the
source of truth, so fields keeper does not know (``processedHistoryMessages``, ``accountSettings``,
``lastPropHash``, fields added by later Baileys releases, ...) survive a round trip unchanged, in the
same shape they came in. Changes go through :meth:`Credentials.updated`, which follows Baileys'
``Object.assign(creds, update)``: ``None`` removes a field as ``undefined`` does.

:func:`validate_state` checks the schema and the credentials a restore needs; :data:`MAX_STATE_BYTES`
is the documented size limit of a serialised state.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.bufferjson import JsonObject, JsonValue, decode_base64, encode_base64
from shared.deferred import DeferredCategory
from shared.errors import BaileysFormatError, StateTooLargeError, StateValidationError
from shared.signatures import xeddsa_sign, xeddsa_verify

#: Largest serialised (canonical JSON) state the vault accepts: 16 MiB.
MAX_STATE_BYTES: Final = 16 * 1024 * 1024

KEY_LEN: Final = 32
SIGNATURE_LEN: Final = 64
#: Signal's "DJB" key type byte, prefixed to a Curve25519 public key before signing it.
DJB_KEY_TYPE: Final = b"\x05"
#: Signal registration ids are 14-bit (libsignal ``KeyHelper.generateRegistrationId``).
MAX_REGISTRATION_ID: Final = 0x3FFF

# Key-store categories of Baileys' SignalDataTypeMap.
PRE_KEY: Final = "pre-key"
SESSION: Final = "session"
SENDER_KEY: Final = "sender-key"
SENDER_KEY_MEMORY: Final = "sender-key-memory"
APP_STATE_SYNC_KEY: Final = "app-state-sync-key"
APP_STATE_SYNC_VERSION: Final = "app-state-sync-version"
LID_MAPPING: Final = "lid-mapping"
DEVICE_LIST: Final = "device-list"
TCTOKEN: Final = "tctoken"
IDENTITY_KEY: Final = "identity-key"

KEY_CATEGORIES: Final = frozenset({
    PRE_KEY, SESSION, SENDER_KEY, SENDER_KEY_MEMORY, APP_STATE_SYNC_KEY, APP_STATE_SYNC_VERSION,
    LID_MAPPING, DEVICE_LIST, TCTOKEN, IDENTITY_KEY,
})

# Creds fields (Baileys names) whose change alters the device's identity, registration or pairing:
# losing such a change means re-pairing, so stores persist it at once.
CRITICAL_CREDS_FIELDS: Final = frozenset({
    "noiseKey", "pairingEphemeralKeyPair", "signedIdentityKey", "signedPreKey", "registrationId",
    "advSecretKey", "me", "account", "signalIdentities", "registered", "platform", "pairingCode",
    "routingInfo", "myAppStateKeyId",
})

REQUIRED_CREDS_FIELDS: Final = (
    "noiseKey", "signedIdentityKey", "signedPreKey", "registrationId", "advSecretKey",
)

RandomBytes = Callable[[int], bytes]


# --- typed values ------------------------------------------------------------------------------


def _obj(value: JsonValue, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise StateValidationError(f"{what} is not an object")
    return value


def _bytes(value: JsonValue, what: str, length: int | None = None) -> bytes:
    if not isinstance(value, bytes):
        raise StateValidationError(f"{what} is not binary")
    if length is not None and len(value) != length:
        raise StateValidationError(f"{what} is {len(value)} bytes, expected {length}")
    return value


def _bytes_or_b64(value: JsonValue, what: str) -> bytes:
    # protobufjs' toJSON writes bytes fields of proto objects (e.g. creds.account) as base64 text.
    if isinstance(value, str):
        try:
            return decode_base64(value)
        except BaileysFormatError as exc:
            raise StateValidationError(f"{what} is not base64") from exc
    return _bytes(value, what)


def _int(value: JsonValue, what: str) -> int:
    if type(value) is not int:
        raise StateValidationError(f"{what} is not an integer")
    return value


def _opt_str(obj: JsonObject, key: str, what: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise StateValidationError(f"{what}.{key} is not a string")
    return value


@dataclass(frozen=True)
class StoredKeyPair:
    """A Curve25519 key pair as the auth state stores it (Baileys' JSON form): raw 32-byte public, private.

    The protocol core computes with :class:`connector.protocol.crypto.KeyPair` (clamped private) and the
    Signal layer with :class:`connector.protocol.signal.keys.SignalKeyPair` (33-byte public); this one is
    the at-rest form with its JSON codec.
    """

    public: bytes
    private: bytes

    @classmethod
    def generate(cls, rand: RandomBytes) -> StoredKeyPair:
        private = X25519PrivateKey.from_private_bytes(rand(KEY_LEN))
        public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        raw_private = private.private_bytes_raw()
        return cls(public=public, private=raw_private)

    @classmethod
    def from_json(cls, value: JsonValue, what: str = "key pair") -> StoredKeyPair:
        obj = _obj(value, what)
        return cls(
            public=_bytes(obj.get("public"), f"{what}.public", KEY_LEN),
            private=_bytes(obj.get("private"), f"{what}.private", KEY_LEN),
        )

    def to_json(self) -> JsonObject:
        return {"private": self.private, "public": self.public}

    def __repr__(self) -> str:  # never print the private half
        return f"StoredKeyPair(public={self.public.hex()}, private=<redacted>)"


def signal_public_key(public: bytes) -> bytes:
    """The 33-byte Signal form of a Curve25519 public key (0x05 type byte + raw key)."""
    return public if len(public) == KEY_LEN + 1 else DJB_KEY_TYPE + public


@dataclass(frozen=True)
class SignedKeyPair:
    """Signal's signed pre-key: a key pair whose 0x05-prefixed public key the identity key signed."""

    key_pair: StoredKeyPair
    signature: bytes
    key_id: int
    timestamp_s: int | None = None

    @classmethod
    def generate(cls, identity: StoredKeyPair, key_id: int, rand: RandomBytes) -> SignedKeyPair:
        key_pair = StoredKeyPair.generate(rand)
        signature = xeddsa_sign(identity.private, signal_public_key(key_pair.public), rand)
        return cls(key_pair=key_pair, signature=signature, key_id=key_id)

    def verify(self, identity_public: bytes) -> bool:
        return xeddsa_verify(identity_public, signal_public_key(self.key_pair.public), self.signature)

    @classmethod
    def from_json(cls, value: JsonValue, what: str = "signedPreKey") -> SignedKeyPair:
        obj = _obj(value, what)
        timestamp = obj.get("timestampS")
        return cls(
            key_pair=StoredKeyPair.from_json(obj.get("keyPair"), f"{what}.keyPair"),
            signature=_bytes(obj.get("signature"), f"{what}.signature", SIGNATURE_LEN),
            key_id=_int(obj.get("keyId"), f"{what}.keyId"),
            timestamp_s=None if timestamp is None else _int(timestamp, f"{what}.timestampS"),
        )

    def to_json(self) -> JsonObject:
        out: JsonObject = {"keyPair": self.key_pair.to_json(), "signature": self.signature,
                           "keyId": self.key_id}
        if self.timestamp_s is not None:
            out["timestampS"] = self.timestamp_s
        return out


@dataclass(frozen=True)
class Contact:
    """``creds.me``: the linked account's own ids and push name."""

    id: str
    lid: str | None = None
    name: str | None = None

    @classmethod
    def from_json(cls, value: JsonValue, what: str = "me") -> Contact:
        obj = _obj(value, what)
        ident = obj.get("id")
        if not isinstance(ident, str) or not ident:
            raise StateValidationError(f"{what}.id is missing")
        return cls(id=ident, lid=_opt_str(obj, "lid", what), name=_opt_str(obj, "name", what))

    def to_json(self) -> JsonObject:
        out: JsonObject = {"id": self.id}
        if self.lid is not None:
            out["lid"] = self.lid
        if self.name is not None:
            out["name"] = self.name
        return out


@dataclass(frozen=True)
class AdvSignedDeviceIdentity:
    """``creds.account``: the ADV signed device identity from pair-success (WAProto field names)."""

    details: bytes
    account_signature_key: bytes
    account_signature: bytes
    device_signature: bytes

    @classmethod
    def from_json(cls, value: JsonValue, what: str = "account") -> AdvSignedDeviceIdentity:
        obj = _obj(value, what)
        return cls(
            details=_bytes_or_b64(obj.get("details"), f"{what}.details"),
            account_signature_key=_bytes_or_b64(
                obj.get("accountSignatureKey"), f"{what}.accountSignatureKey"
            ),
            account_signature=_bytes_or_b64(obj.get("accountSignature"), f"{what}.accountSignature"),
            device_signature=_bytes_or_b64(obj.get("deviceSignature"), f"{what}.deviceSignature"),
        )

    def to_json(self) -> JsonObject:
        return {
            "details": self.details,
            "accountSignatureKey": self.account_signature_key,
            "accountSignature": self.account_signature,
            "deviceSignature": self.device_signature,
        }


@dataclass(frozen=True)
class SignalIdentity:
    """One entry of ``creds.signalIdentities``: a Signal address and its 33-byte identity key."""

    name: str
    device_id: int
    identifier_key: bytes

    @classmethod
    def from_json(cls, value: JsonValue, what: str = "signalIdentities[]") -> SignalIdentity:
        obj = _obj(value, what)
        ident = _obj(obj.get("identifier"), f"{what}.identifier")
        name = ident.get("name")
        if not isinstance(name, str):
            raise StateValidationError(f"{what}.identifier.name is not a string")
        return cls(
            name=name,
            device_id=_int(ident.get("deviceId"), f"{what}.identifier.deviceId"),
            identifier_key=_bytes(obj.get("identifierKey"), f"{what}.identifierKey"),
        )

    def to_json(self) -> JsonObject:
        return {
            "identifier": {"name": self.name, "deviceId": self.device_id},
            "identifierKey": self.identifier_key,
        }


# --- credentials -------------------------------------------------------------------------------


class Credentials:
    """Typed read-only view over Baileys' ``creds`` JSON object (see module docstring)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, JsonValue]) -> None:
        self._data: JsonObject = dict(data)

    @classmethod
    def generate(cls, rand: RandomBytes = secrets.token_bytes) -> Credentials:
        """Fresh, unregistered credentials, as Baileys' ``initAuthCreds`` makes them."""
        identity = StoredKeyPair.generate(rand)
        registration_id = int.from_bytes(rand(2), "big") & MAX_REGISTRATION_ID
        data: JsonObject = {
            "noiseKey": StoredKeyPair.generate(rand).to_json(),
            "pairingEphemeralKeyPair": StoredKeyPair.generate(rand).to_json(),
            "signedIdentityKey": identity.to_json(),
            "signedPreKey": SignedKeyPair.generate(identity, 1, rand).to_json(),
            "registrationId": registration_id,
            "advSecretKey": encode_base64(rand(KEY_LEN)),
            "processedHistoryMessages": [],
            "nextPreKeyId": 1,
            "firstUnuploadedPreKeyId": 1,
            "accountSyncCounter": 0,
            "accountSettings": {"unarchiveChats": False},
            "registered": False,
        }
        return cls(data)

    # The JSON object itself. Treat it as read-only; use `updated` to change fields.
    def as_json(self) -> Mapping[str, JsonValue]:
        return self._data

    def updated(self, changes: Mapping[str, JsonValue]) -> Credentials:
        """A copy with ``changes`` applied; a ``None`` value removes the field."""
        data = dict(self._data)
        for key, value in changes.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        return Credentials(data)

    def get(self, key: str) -> JsonValue:
        return self._data.get(key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Credentials) and other._data == self._data

    __hash__ = None  # type: ignore[assignment]  # equality is by content, which is not hashable

    def __repr__(self) -> str:
        return f"Credentials(fields={sorted(self._data)}, registered={self._data.get('registered')!r})"

    @property
    def noise_key(self) -> StoredKeyPair:
        return StoredKeyPair.from_json(self._data.get("noiseKey"), "noiseKey")

    @property
    def pairing_ephemeral_key_pair(self) -> StoredKeyPair:
        return StoredKeyPair.from_json(self._data.get("pairingEphemeralKeyPair"), "pairingEphemeralKeyPair")

    @property
    def signed_identity_key(self) -> StoredKeyPair:
        return StoredKeyPair.from_json(self._data.get("signedIdentityKey"), "signedIdentityKey")

    @property
    def signed_pre_key(self) -> SignedKeyPair:
        return SignedKeyPair.from_json(self._data.get("signedPreKey"), "signedPreKey")

    @property
    def registration_id(self) -> int:
        return _int(self._data.get("registrationId"), "registrationId")

    @property
    def adv_secret_key(self) -> str:
        """Base64 text, as Baileys keeps it."""
        value = self._data.get("advSecretKey")
        if not isinstance(value, str):
            raise StateValidationError("advSecretKey is not a string")
        return value

    @property
    def adv_secret_key_bytes(self) -> bytes:
        try:
            return decode_base64(self.adv_secret_key)
        except BaileysFormatError as exc:
            raise StateValidationError("advSecretKey is not base64") from exc

    @property
    def me(self) -> Contact | None:
        value = self._data.get("me")
        return None if value is None else Contact.from_json(value)

    @property
    def account(self) -> AdvSignedDeviceIdentity | None:
        value = self._data.get("account")
        return None if value is None else AdvSignedDeviceIdentity.from_json(value)

    @property
    def signal_identities(self) -> list[SignalIdentity]:
        value = self._data.get("signalIdentities")
        if value is None:
            return []
        if not isinstance(value, list):
            raise StateValidationError("signalIdentities is not a list")
        return [SignalIdentity.from_json(item) for item in value]

    @property
    def next_pre_key_id(self) -> int:
        return _int(self._data.get("nextPreKeyId", 1), "nextPreKeyId")

    @property
    def first_unuploaded_pre_key_id(self) -> int:
        return _int(self._data.get("firstUnuploadedPreKeyId", 1), "firstUnuploadedPreKeyId")

    @property
    def routing_info(self) -> bytes | None:
        value = self._data.get("routingInfo")
        return None if value is None else _bytes(value, "routingInfo")

    @property
    def platform(self) -> str | None:
        return _opt_str(self._data, "platform", "creds")

    @property
    def pairing_code(self) -> str | None:
        return _opt_str(self._data, "pairingCode", "creds")

    @property
    def registered(self) -> bool:
        value = self._data.get("registered", False)
        if not isinstance(value, bool):
            raise StateValidationError("registered is not a boolean")
        return value


# --- the whole state ---------------------------------------------------------------------------

KeyStoreData = dict[str, dict[str, JsonValue]]


class AuthState:
    """Credentials plus the key store (``category -> id -> value``).

    A category may come in unparsed (:class:`~shared.deferred.DeferredCategory`, from
    :func:`shared.snapshot.parse_state` and :meth:`shared.snapshot.Snapshot.from_bytes`): it is
    parsed the first time anything reads or writes it, through :meth:`entries`, :attr:`keys` or
    :meth:`to_json`; until then :meth:`deferred` hands its canonical text to the serialiser."""

    __slots__ = ("_deferred", "_keys", "creds")

    def __init__(self, creds: Credentials, keys: KeyStoreData | None = None, *,
                 deferred: Mapping[str, DeferredCategory] | None = None) -> None:
        self.creds = creds
        self._keys: KeyStoreData = {} if keys is None else keys
        self._deferred: dict[str, DeferredCategory] = dict(deferred) if deferred else {}
        for category in self._deferred:
            if category in self._keys:
                raise ValueError(f"key category {category} given both parsed and deferred")

    @classmethod
    def generate(cls, rand: RandomBytes = secrets.token_bytes) -> AuthState:
        return cls(creds=Credentials.generate(rand))

    @property
    def keys(self) -> KeyStoreData:
        """Every category, parsed (the state's own dict, not a copy)."""
        for category in list(self._deferred):
            self._parse(category)
        return self._keys

    @keys.setter
    def keys(self, keys: KeyStoreData) -> None:
        self._keys = keys
        self._deferred.clear()

    def entries(self, category: str) -> dict[str, JsonValue] | None:
        """The id map of ``category`` (parsed now if it was deferred), or None if there is none."""
        self._parse(category)
        return self._keys.get(category)

    def editable(self, category: str) -> dict[str, JsonValue]:
        """The id map of ``category`` to edit in place, created empty if there is none."""
        self._parse(category)
        return self._keys.setdefault(category, {})

    def drop_category(self, category: str) -> None:
        self._deferred.pop(category, None)
        self._keys.pop(category, None)

    def keys_parsed(self) -> KeyStoreData:
        """The categories parsed so far (the deferred ones are in :meth:`deferred`)."""
        return self._keys

    def deferred(self) -> Mapping[str, DeferredCategory]:
        """The categories not parsed yet, as their canonical text."""
        return self._deferred

    def _parse(self, category: str) -> None:
        """Parse ``category`` if it is still deferred."""
        if category not in self._deferred:
            return
        try:
            self._keys[category] = self._deferred[category].parse()
        except BaileysFormatError as exc:
            raise StateValidationError(f"key category {category} is malformed: {exc}") from exc
        del self._deferred[category]

    def to_json(self) -> JsonObject:
        """``{"creds": {...}, "keys": {category: {id: value}}}`` (shares values; do not mutate)."""
        keys: JsonObject = {category: dict(entries) for category, entries in self.keys.items() if entries}
        return {"creds": dict(self.creds.as_json()), "keys": keys}

    @classmethod
    def from_json(cls, value: JsonValue, deferred: Mapping[str, DeferredCategory] | None = None) -> AuthState:
        obj = _obj(value, "auth state")
        creds = _obj(obj.get("creds"), "creds")
        raw_keys = obj.get("keys", {})
        keys_obj = _obj(raw_keys, "keys")
        keys: KeyStoreData = {}
        for category, entries in keys_obj.items():
            keys[category] = dict(_obj(entries, f"keys[{category}]"))
        return cls(creds=Credentials(creds), keys=keys, deferred=deferred)

    def copy(self) -> AuthState:
        """A deep copy, safe to hand to another task."""
        return AuthState(creds=Credentials(copy.deepcopy(dict(self.creds.as_json()))),
                         keys=copy.deepcopy(self._keys), deferred=self._deferred)

    def shallow_copy(self) -> AuthState:
        """A copy with containers of its own (the creds object, each category's id map) that shares
        the values themselves: adding, replacing or deleting a key on one never shows on the other,
        editing a value in place would. For code that never edits values in place (the
        :class:`~shared.authstore.MemoryAuthStore`): a deep copy costs milliseconds per state.
        Deferred categories stay deferred in both (their text is immutable)."""
        return AuthState(creds=Credentials(self.creds.as_json()),
                         keys={category: dict(entries) for category, entries in self._keys.items()},
                         deferred=self._deferred)

    def key_count(self) -> int:
        return (sum(len(entries) for entries in self._keys.values())
                + sum(d.count for d in self._deferred.values()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AuthState):
            return NotImplemented
        return self.creds == other.creds and self.keys == other.keys

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaced

    def __repr__(self) -> str:
        counts = {category: len(entries) for category, entries in self._keys.items()}
        counts.update({category: d.count for category, d in self._deferred.items()})
        return f"AuthState(creds={self.creds!r}, keys={dict(sorted(counts.items()))})"


def validate_credentials(creds: Credentials) -> None:
    """Raise :class:`StateValidationError` unless ``creds`` carries everything a restore needs."""
    missing = [name for name in REQUIRED_CREDS_FIELDS if creds.get(name) is None]
    if missing:
        raise StateValidationError(f"required credentials missing: {', '.join(missing)}")
    creds.noise_key  # noqa: B018 -- each access parses and checks the field
    creds.signed_identity_key  # noqa: B018
    creds.signed_pre_key  # noqa: B018
    if creds.get("pairingEphemeralKeyPair") is not None:
        creds.pairing_ephemeral_key_pair  # noqa: B018
    registration_id = creds.registration_id
    if not 0 <= registration_id <= MAX_REGISTRATION_ID:
        raise StateValidationError(f"registrationId {registration_id} is outside 0..{MAX_REGISTRATION_ID}")
    if len(creds.adv_secret_key_bytes) != KEY_LEN:
        raise StateValidationError("advSecretKey does not decode to 32 bytes")
    if creds.registered and creds.me is None:
        raise StateValidationError("registered credentials lack 'me'")
    creds.me  # noqa: B018
    creds.account  # noqa: B018
    creds.signal_identities  # noqa: B018
    creds.next_pre_key_id  # noqa: B018
    creds.first_unuploaded_pre_key_id  # noqa: B018
    creds.routing_info  # noqa: B018


def validate_state(state: AuthState, serialised_size: int | None = None) -> None:
    """Schema and required-credential checks; ``serialised_size`` is checked against the limit."""
    if serialised_size is not None and serialised_size > MAX_STATE_BYTES:
        raise StateTooLargeError(serialised_size, MAX_STATE_BYTES)
    validate_credentials(state.creds)
    for category, entries in state.keys.items():
        if not category or not all(c.isalnum() or c == "-" for c in category):
            raise StateValidationError(f"key category {category!r} is not a valid name")
        for key_id in entries:
            if not key_id:
                raise StateValidationError(f"key category {category} has an empty id")
