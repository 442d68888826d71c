"""libsignal-node's session record, and its JSON form as Baileys stores it (``session-<address>``).

A record holds up to 40 sessions with one device, keyed by the base key of the X3DH that made them
(base64 of the 33-byte key). At most one is open (``closed == -1``): it is the one that sends.
Decryption tries every session, most recently used first. A session holds the current ratchet
(our ephemeral key pair, their last ephemeral key, the root key, ``previousCounter``), its index
info, and its chains keyed by ratchet public key: one sending chain (ours) and every receiving
chain it ever had; a closed receiving chain has no chain key, only the message seeds it skipped.
Counters start at -1, so the first message of a chain has counter 0.

The JSON form (SIGNAL.md section 3, ``SessionRecord.serialize()``)::

    {"_sessions": {"<b64 baseKey>": {"registrationId": N,
        "currentRatchet": {"ephemeralKeyPair": {"pubKey", "privKey"}, "lastRemoteEphemeralKey",
                           "previousCounter", "rootKey"},
        "indexInfo": {"baseKey", "baseKeyType", "closed", "used", "created", "remoteIdentityKey"},
        "_chains": {"<b64 key>": {"chainKey": {"counter", "key"?}, "chainType", "messageKeys": {}}},
        "pendingPreKey"?: {"signedKeyId", "baseKey", "preKeyId"?}}},
     "version": "v1"}

with every binary value standard base64 text. :meth:`SessionRecord.to_json` writes keys in the
order libsignal-node writes them, so a record read from Node and written back is the same JSON.
Malformed records raise :class:`InvalidRecordError`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Final

from connector.protocol.signal.errors import InvalidRecordError
from connector.protocol.signal.keys import SignalKeyPair
from shared.bufferjson import JsonObject, JsonValue

SENDING: Final = 1
RECEIVING: Final = 2
BASE_KEY_OURS: Final = 1
BASE_KEY_THEIRS: Final = 2
OPEN: Final = -1
MAX_SESSIONS: Final = 40
RECORD_VERSION: Final = "v1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: JsonValue, what: str, length: int) -> bytes:
    if not isinstance(value, str):
        raise InvalidRecordError(f"session record: {what} is not base64 text")
    try:
        data = binascii.a2b_base64(value, strict_mode=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise InvalidRecordError(f"session record: {what} is not base64") from exc
    if len(data) != length:
        raise InvalidRecordError(f"session record: {what} is {len(data)} bytes, expected {length}")
    return data


def _obj(value: JsonValue, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise InvalidRecordError(f"session record: {what} is not an object")
    return value


def _int(value: JsonValue, what: str) -> int:
    if type(value) is not int:
        raise InvalidRecordError(f"session record: {what} is not an integer")
    return value


@dataclass(slots=True, repr=False)
class Chain:
    """One chain of a session: ``key`` is None once closed; ``message_keys`` maps counters to seeds."""

    chain_type: int
    counter: int
    key: bytes | None
    message_keys: dict[int, bytes] = field(default_factory=dict)

    def copy(self) -> Chain:
        return Chain(self.chain_type, self.counter, self.key, dict(self.message_keys))

    def __repr__(self) -> str:  # never print keys
        state = "closed" if self.key is None else "open"
        return f"Chain(type={self.chain_type}, counter={self.counter}, {state}, seeds={len(self.message_keys)})"

    @classmethod
    def from_json(cls, value: JsonValue, what: str) -> Chain:
        obj = _obj(value, what)
        chain_key = _obj(obj.get("chainKey"), f"{what}.chainKey")
        chain_type = _int(obj.get("chainType"), f"{what}.chainType")
        if chain_type not in (SENDING, RECEIVING):
            raise InvalidRecordError(f"session record: {what}.chainType is {chain_type}")
        raw_key = chain_key.get("key")
        key = None if raw_key is None else _unb64(raw_key, f"{what}.chainKey.key", 32)
        keys = _obj(obj.get("messageKeys", {}), f"{what}.messageKeys")
        message_keys: dict[int, bytes] = {}
        for index, seed in keys.items():
            try:
                counter = int(index)
            except ValueError as exc:
                raise InvalidRecordError(f"session record: {what}.messageKeys has key {index!r}") from exc
            if str(counter) != index:
                raise InvalidRecordError(f"session record: {what}.messageKeys has key {index!r}")
            message_keys[counter] = _unb64(seed, f"{what}.messageKeys[{index}]", 32)
        return cls(chain_type, _int(chain_key.get("counter"), f"{what}.chainKey.counter"), key, message_keys)

    def to_json(self) -> JsonObject:
        chain_key: JsonObject = {"counter": self.counter}
        if self.key is not None:
            chain_key["key"] = b64(self.key)
        # JavaScript orders an object's integer-like keys ascending; so does this.
        return {"chainKey": chain_key, "chainType": self.chain_type,
                "messageKeys": {str(i): b64(self.message_keys[i]) for i in sorted(self.message_keys)}}


@dataclass(frozen=True, slots=True)
class PendingPreKey:  # public values only
    """What an initiator repeats in every ``pkmsg`` until the first reply arrives."""

    signed_key_id: int
    base_key: bytes
    pre_key_id: int | None = None

    def to_json(self) -> JsonObject:
        out: JsonObject = {"signedKeyId": self.signed_key_id, "baseKey": b64(self.base_key)}
        if self.pre_key_id is not None:
            out["preKeyId"] = self.pre_key_id
        return out

    @classmethod
    def from_json(cls, value: JsonValue) -> PendingPreKey:
        obj = _obj(value, "pendingPreKey")
        pre_key_id = obj.get("preKeyId")
        return cls(signed_key_id=_int(obj.get("signedKeyId"), "pendingPreKey.signedKeyId"),
                   base_key=_unb64(obj.get("baseKey"), "pendingPreKey.baseKey", 33),
                   pre_key_id=None if pre_key_id is None else _int(pre_key_id, "pendingPreKey.preKeyId"))


@dataclass(slots=True, repr=False)
class SessionEntry:
    """One session with a device (libsignal-node's ``SessionEntry``)."""

    registration_id: int | None
    ephemeral: SignalKeyPair
    last_remote_ephemeral: bytes
    previous_counter: int
    root_key: bytes
    base_key: bytes
    base_key_type: int
    closed: int
    used: int
    created: int
    remote_identity_key: bytes
    chains: dict[str, Chain] = field(default_factory=dict)
    pending_pre_key: PendingPreKey | None = None

    @property
    def is_open(self) -> bool:
        return self.closed == OPEN

    def __repr__(self) -> str:  # never print keys
        return (f"SessionEntry(base_key={b64(self.base_key)}, open={self.is_open}, used={self.used}, "
                f"chains={len(self.chains)}, pending_pre_key={self.pending_pre_key is not None})")

    def fork(self) -> SessionEntry:
        """A copy to try a decryption on: its own chain map, sharing the chains themselves, so a
        caller replaces a chain with ``chain.copy()`` before changing it (copy on write)."""
        return SessionEntry(self.registration_id, self.ephemeral, self.last_remote_ephemeral,
                            self.previous_counter, self.root_key, self.base_key, self.base_key_type,
                            self.closed, self.used, self.created, self.remote_identity_key,
                            dict(self.chains), self.pending_pre_key)

    @classmethod
    def from_json(cls, value: JsonValue, what: str = "session") -> SessionEntry:
        obj = _obj(value, what)
        ratchet = _obj(obj.get("currentRatchet"), f"{what}.currentRatchet")
        pair = _obj(ratchet.get("ephemeralKeyPair"), f"{what}.ephemeralKeyPair")
        info = _obj(obj.get("indexInfo"), f"{what}.indexInfo")
        chains = _obj(obj.get("_chains", {}), f"{what}._chains")
        registration_id = obj.get("registrationId")
        pending = obj.get("pendingPreKey")
        base_key_type = _int(info.get("baseKeyType"), f"{what}.indexInfo.baseKeyType")
        if base_key_type not in (BASE_KEY_OURS, BASE_KEY_THEIRS):
            raise InvalidRecordError(f"session record: {what}.indexInfo.baseKeyType is {base_key_type}")
        for key in chains:
            _unb64(key, f"{what}._chains key", 33)
        return cls(
            registration_id=None if registration_id is None else _int(registration_id, f"{what}.registrationId"),
            ephemeral=SignalKeyPair(public=_unb64(pair.get("pubKey"), f"{what}.ephemeralKeyPair.pubKey", 33),
                              private=_unb64(pair.get("privKey"), f"{what}.ephemeralKeyPair.privKey", 32)),
            last_remote_ephemeral=_unb64(ratchet.get("lastRemoteEphemeralKey"),
                                         f"{what}.lastRemoteEphemeralKey", 33),
            previous_counter=_int(ratchet.get("previousCounter"), f"{what}.previousCounter"),
            root_key=_unb64(ratchet.get("rootKey"), f"{what}.rootKey", 32),
            base_key=_unb64(info.get("baseKey"), f"{what}.indexInfo.baseKey", 33),
            base_key_type=base_key_type,
            closed=_int(info.get("closed"), f"{what}.indexInfo.closed"),
            used=_int(info.get("used", 0), f"{what}.indexInfo.used"),
            created=_int(info.get("created", 0), f"{what}.indexInfo.created"),
            remote_identity_key=_unb64(info.get("remoteIdentityKey"), f"{what}.indexInfo.remoteIdentityKey", 33),
            chains={key: Chain.from_json(chain, f"{what}._chains[{key}]") for key, chain in chains.items()},
            pending_pre_key=None if pending is None else PendingPreKey.from_json(pending),
        )

    def to_json(self) -> JsonObject:
        out: JsonObject = {}
        if self.registration_id is not None:
            out["registrationId"] = self.registration_id
        out["currentRatchet"] = {
            "ephemeralKeyPair": {"pubKey": b64(self.ephemeral.public), "privKey": b64(self.ephemeral.private)},
            "lastRemoteEphemeralKey": b64(self.last_remote_ephemeral),
            "previousCounter": self.previous_counter,
            "rootKey": b64(self.root_key),
        }
        out["indexInfo"] = {
            "baseKey": b64(self.base_key),
            "baseKeyType": self.base_key_type,
            "closed": self.closed,
            "used": self.used,
            "created": self.created,
            "remoteIdentityKey": b64(self.remote_identity_key),
        }
        out["_chains"] = {key: chain.to_json() for key, chain in self.chains.items()}
        if self.pending_pre_key is not None:
            out["pendingPreKey"] = self.pending_pre_key.to_json()
        return out


@dataclass(slots=True)
class SessionRecord:
    """Every session with one device, in insertion order (libsignal-node's ``SessionRecord``)."""

    sessions: dict[str, SessionEntry] = field(default_factory=dict)

    def open_session(self) -> SessionEntry | None:
        """The first open session in insertion order: the one that sends."""
        for entry in self.sessions.values():
            if entry.closed == OPEN:
                return entry
        return None

    def has_open_session(self) -> bool:
        entry = self.open_session()
        return entry is not None and entry.registration_id is not None

    def by_use(self) -> list[SessionEntry]:
        """Sessions most recently used first (ties keep insertion order, as JavaScript's sort)."""
        return sorted(self.sessions.values(), key=lambda entry: -entry.used)

    def get(self, base_key: bytes) -> SessionEntry | None:
        return self.sessions.get(b64(base_key))

    def put(self, entry: SessionEntry) -> None:
        """Add ``entry``, or replace the session with its base key where it stands."""
        self.sessions[b64(entry.base_key)] = entry

    def replace(self, old: SessionEntry, new: SessionEntry) -> None:
        """Put ``new`` where ``old`` stands, under the same key."""
        for key, entry in self.sessions.items():
            if entry is old:
                self.sessions[key] = new
                return
        self.put(new)

    def close_open_session(self, now_ms: int) -> None:
        entry = self.open_session()
        if entry is not None:
            entry.closed = now_ms

    def remove_old_sessions(self) -> None:
        """Keep at most 40 sessions, dropping the earliest closed ones (``removeOldSessions``)."""
        while len(self.sessions) > MAX_SESSIONS:
            closed = [(entry.closed, key) for key, entry in self.sessions.items() if entry.closed != OPEN]
            if not closed:
                return
            del self.sessions[min(closed)[1]]

    @classmethod
    def from_json(cls, value: JsonValue) -> SessionRecord:
        obj = _obj(value, "record")
        version = obj.get("version")
        sessions = _obj(obj.get("_sessions", {}), "_sessions")
        if version is None:
            # libsignal-node's migration "v1": sessions take the record's registrationId.
            registration_id = obj.get("registrationId")
            if registration_id is not None:
                sessions = {key: (dict(_obj(entry, "session"), registrationId=registration_id)
                                  if _obj(entry, "session").get("registrationId") is None else entry)
                            for key, entry in sessions.items()}
        elif version != RECORD_VERSION:
            raise InvalidRecordError(f"session record: unknown version {version!r}")
        record = cls()
        for key, entry in sessions.items():
            _unb64(key, "_sessions key", 33)
            record.sessions[key] = SessionEntry.from_json(entry)
        return record

    def to_json(self) -> JsonObject:
        return {"_sessions": {key: entry.to_json() for key, entry in self.sessions.items()},
                "version": RECORD_VERSION}
