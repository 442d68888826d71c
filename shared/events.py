"""Event schemas exchanged over Pub/Sub between the connector and the functions.

Every event is a frozen dataclass with ``to_json()`` (compact UTF-8 JSON bytes, the Pub/Sub
message data) and a ``from_json()`` classmethod that validates every field. ``parse_event``
reads any event by its ``type`` field. On the wire an event is one JSON object::

    {"type": "connection.update", "accountId": "a1", "connectorId": "c-1", "generation": 3,
     "at": "2026-11-25T12:00:00.000Z", "state": "open", "reason": null, "code": null,
     "attempt": 0}

A connector reports its sockets' changes in batches: ``connection.updates`` carries up to
:data:`MAX_BATCHED_UPDATES` ``connection.update`` objects of one connector, oldest first, each exactly
as it would travel alone. A restart of 1,000 accounts is then a few dozen messages and function
calls, not 2,000 of each. A reader applies them in order; a lone ``connection.update`` is still read.

``pairing.*`` events name their sender, ``connectorId`` and ``generation`` (the lease generation
it pairs under), both required: the functions drop one from an older generation than the account's
lease, or from another connector than the lease's holder, as they do for ``connection.update``, so a
connector that lost an account cannot replace the new holder's code or stop the account.

Field names are camelCase; times are RFC 3339 in UTC with milliseconds; binary values are
standard base64. ``message.received`` carries its message type under ``messageType`` (``type``
is the event tag). Unknown keys are ignored so that an older function keeps reading events
from a newer connector during a rolling deploy; known keys are checked strictly.

Topics and attributes (see docs/ARCHITECTURE.md):

- ``connection-events``: ``connection.update``, ``pairing.*``, ``account.removed``;
  attributes ``type`` and ``accountId``; ordering key ``accountId``. ``connection.updates``:
  attributes ``type`` and ``connectorId``; ordering key ``connectorId`` (one connector's batches
  arrive in order; between connectors the lease generation in each update decides).
- ``messages``: ``message.received``; attributes ``type``, ``accountId``, ``messageId``.
- ``session-snapshots``: data is a sealed snapshot (``shared.sealing``), not JSON; its
  attributes are described by :class:`SnapshotAttributes`.
- ``alerts``: :class:`AlertRaised`, published by the functions.

Message payloads are still-encrypted protocol nodes; they never appear in ``repr`` or logs.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Self, TypeVar

from shared.errors import InvalidEventError

__all__ = [
    "ACCOUNT_ID_RE",
    "ATTR_ACCOUNT_ID",
    "ATTR_CONNECTOR_ID",
    "ATTR_GENERATION",
    "ATTR_MESSAGE_ID",
    "ATTR_SCHEMA",
    "ATTR_TYPE",
    "MAX_BATCHED_UPDATES",
    "MAX_EVENT_BYTES",
    "SNAPSHOT_SCHEMA",
    "TOPIC_ALERTS",
    "TOPIC_CONNECTION_EVENTS",
    "TOPIC_MESSAGES",
    "TOPIC_SESSION_SNAPSHOTS",
    "AccountRemoved",
    "AlertRaised",
    "ConnectionState",
    "ConnectionUpdate",
    "ConnectionUpdates",
    "Event",
    "InvalidEventError",
    "MessageReceived",
    "PairingCode",
    "PairingFailed",
    "PairingQr",
    "PairingSuccess",
    "SnapshotAttributes",
    "format_time",
    "parse_event",
    "parse_time",
]

# Default topic names; deployments may override them through configuration.
TOPIC_SESSION_SNAPSHOTS = "session-snapshots"
TOPIC_CONNECTION_EVENTS = "connection-events"
TOPIC_MESSAGES = "messages"
TOPIC_ALERTS = "alerts"

ATTR_TYPE = "type"
ATTR_ACCOUNT_ID = "accountId"
ATTR_MESSAGE_ID = "messageId"
ATTR_GENERATION = "generation"
ATTR_CONNECTOR_ID = "connectorId"
ATTR_SCHEMA = "schema"
SNAPSHOT_SCHEMA = "keeper.snapshot.v1"

# Pub/Sub refuses messages over 10 MB; nothing larger can be a valid event.
MAX_EVENT_BYTES = 10_000_000
# Updates in one ``connection.updates`` message: about 100 KB of JSON, and few enough that the
# function records them in one batched read and one batched write (Firestore: 500 writes a commit).
MAX_BATCHED_UPDATES = 200

# Account ids are Firestore document ids and Pub/Sub attribute values: keep them plain.
ACCOUNT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_CONNECTOR_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
# Classified reasons and message types are short snake_case slugs ("logged_out", "text").
_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
# A JID is user@server, optionally with agent/device parts; no whitespace, bounded length.
_JID_RE = re.compile(r"[^\s@]{0,128}@[A-Za-z0-9.-]{1,64}")
_MESSAGE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_ALERT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
# WhatsApp shows an 8-character code from an alphabet of digits and capitals.
_PAIRING_CODE_RE = re.compile(r"[A-Z0-9]{8}")
_MAX_QR_CHARS = 2048
_MAX_TEXT_CHARS = 1024
_MAX_INT = 2**53 - 1  # the largest integer JavaScript readers keep exact


class ConnectionState(enum.StrEnum):
    """What the connector reports about one account's socket."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"
    RECONNECTING = "reconnecting"
    NEEDS_PAIRING = "needs_pairing"  # the phone unlinked the device (401 / device_removed)
    REPLACED = "replaced"  # 440: another socket holds the account; the connector stood down
    STOPPED = "stopped"  # the connector stopped serving the account (lease lost, removed, shutdown)


# ---------------------------------------------------------------------------
# time helpers


def format_time(at: datetime) -> str:
    """RFC 3339 in UTC with milliseconds, e.g. ``2026-11-25T12:00:00.000Z``."""
    if at.tzinfo is None:
        raise ValueError("naive datetime: events carry timezone-aware times")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time`; accepts any RFC 3339 offset, returns UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not an RFC 3339 time: {text[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise ValueError("time without timezone")
    return parsed.astimezone(UTC)


# ---------------------------------------------------------------------------
# field readers: each takes the decoded object and a key, returns a typed value or raises


def _get(obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj:
        raise InvalidEventError(f"missing field {key!r}")
    return obj[key]


def _str(obj: Mapping[str, Any], key: str, pattern: re.Pattern[str] | None = None,
         max_len: int = _MAX_TEXT_CHARS) -> str:
    value = _get(obj, key)
    if not isinstance(value, str):
        raise InvalidEventError(f"field {key!r} must be a string")
    if not value or len(value) > max_len:
        raise InvalidEventError(f"field {key!r} must be 1..{max_len} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise InvalidEventError(f"field {key!r} is malformed")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str | None:
    if obj.get(key) is None:
        return None
    return _str(obj, key, pattern)


def _int(obj: Mapping[str, Any], key: str, minimum: int = 0) -> int:
    value = _get(obj, key)
    # bool is an int subclass; true/false are never a valid count or code.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidEventError(f"field {key!r} must be an integer")
    if not minimum <= value <= _MAX_INT:
        raise InvalidEventError(f"field {key!r} out of range")
    return value


def _opt_int(obj: Mapping[str, Any], key: str, minimum: int = 0) -> int | None:
    if obj.get(key) is None:
        return None
    return _int(obj, key, minimum)


def _time(obj: Mapping[str, Any], key: str) -> datetime:
    text = _str(obj, key, max_len=64)
    try:
        return parse_time(text)
    except ValueError as exc:
        raise InvalidEventError(f"field {key!r}: {exc}") from None


def _b64(obj: Mapping[str, Any], key: str) -> bytes:
    value = _get(obj, key)
    if not isinstance(value, str):
        raise InvalidEventError(f"field {key!r} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEventError(f"field {key!r} is not valid base64") from None


def _check(ok: bool, what: str) -> None:
    """Constructor-side validation: a producer building a bad event fails early."""
    if not ok:
        raise InvalidEventError(what)


def _check_account_id(account_id: str) -> None:
    _check(isinstance(account_id, str) and ACCOUNT_ID_RE.fullmatch(account_id) is not None,
           "accountId is malformed")


def _check_aware(at: datetime, name: str) -> None:
    _check(isinstance(at, datetime) and at.tzinfo is not None, f"{name} must be timezone-aware")


def _check_sender(connector_id: str, generation: int) -> None:
    """Pairing events name their sender: the connector and the lease generation it pairs under."""
    _check(isinstance(connector_id, str) and bool(_CONNECTOR_ID_RE.fullmatch(connector_id)),
           "connectorId is malformed")
    _check(isinstance(generation, int) and not isinstance(generation, bool) and 0 <= generation <= _MAX_INT,
           "generation out of range")


def _sender_dict(connector_id: str, generation: int) -> dict[str, Any]:
    return {"connectorId": connector_id, "generation": generation}


def _sender_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"connector_id": _str(obj, "connectorId", _CONNECTOR_ID_RE), "generation": _int(obj, "generation")}


def _decode_object(data: bytes | str) -> dict[str, Any]:
    if len(data) > MAX_EVENT_BYTES:
        raise InvalidEventError("event too large")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidEventError("event is not JSON") from None
    if not isinstance(obj, dict):
        raise InvalidEventError("event must be a JSON object")
    return obj


def _encode(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------
# events


class _EventBase(ABC):
    """Common behaviour: type tag, topic, Pub/Sub attributes, JSON round trip."""

    TYPE: ClassVar[str]
    DEFAULT_TOPIC: ClassVar[str] = TOPIC_CONNECTION_EVENTS
    account_id: str

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON object, ``type`` tag included."""

    def to_json(self) -> bytes:
        return _encode(self.to_dict())

    def attributes(self) -> dict[str, str]:
        """Pub/Sub attributes to publish alongside ``to_json()``."""
        return {ATTR_TYPE: self.TYPE, ATTR_ACCOUNT_ID: self.account_id}

    @classmethod
    @abstractmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        """Parse and validate a decoded JSON object of this event's type."""

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        obj = _decode_object(data)
        if obj.get("type") != cls.TYPE:
            raise InvalidEventError(f"expected an event of type {cls.TYPE!r}")
        return cls.from_dict(obj)


_T = TypeVar("_T")


def _construct(build: type[_T], **kwargs: Any) -> _T:
    """Build an event from decoded fields, turning constructor checks into InvalidEventError."""
    try:
        return build(**kwargs)
    except InvalidEventError:
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidEventError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class ConnectionUpdate(_EventBase):
    """The socket of one account changed state on one connector.

    ``generation`` is the lease generation the connector holds; the functions ignore an update
    from an older generation than the account's lease. ``reason`` is the connector's classified
    close reason (``logged_out``, ``replaced``, ``restart_required``, ``connection_lost``, ...),
    ``code`` the raw close / failure code when there was one, ``attempt`` the reconnect attempt
    number (0 for the first connection).
    """

    TYPE: ClassVar[str] = "connection.update"
    account_id: str
    connector_id: str
    generation: int
    at: datetime
    state: ConnectionState
    reason: str | None = None
    code: int | None = None
    attempt: int = 0

    def __post_init__(self) -> None:
        _check_account_id(self.account_id)
        _check(bool(_CONNECTOR_ID_RE.fullmatch(self.connector_id)), "connectorId is malformed")
        _check(isinstance(self.generation, int) and 0 <= self.generation <= _MAX_INT,
               "generation out of range")
        _check_aware(self.at, "at")
        _check(isinstance(self.state, ConnectionState), "state must be a ConnectionState")
        _check(self.reason is None or bool(_SLUG_RE.fullmatch(self.reason)), "reason is malformed")
        _check(self.code is None or 0 <= self.code <= _MAX_INT, "code out of range")
        _check(0 <= self.attempt <= _MAX_INT, "attempt out of range")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "accountId": self.account_id,
            "connectorId": self.connector_id,
            "generation": self.generation,
            "at": format_time(self.at),
            "state": self.state.value,
            "reason": self.reason,
            "code": self.code,
            "attempt": self.attempt,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        state_text = _str(obj, "state", max_len=32)
        try:
            state = ConnectionState(state_text)
        except ValueError:
            raise InvalidEventError("field 'state' has an unknown value") from None
        return _construct(
            cls,
            account_id=_str(obj, "accountId", ACCOUNT_ID_RE),
            connector_id=_str(obj, "connectorId", _CONNECTOR_ID_RE),
            generation=_int(obj, "generation"),
            at=_time(obj, "at"),
            state=state,
            reason=_opt_str(obj, "reason", _SLUG_RE),
            code=_opt_int(obj, "code"),
            attempt=_int(obj, "attempt") if "attempt" in obj else 0,
        )


@dataclass(frozen=True, slots=True)
class ConnectionUpdates(_EventBase):
    """Several ``connection.update`` events of one connector, oldest first (see the module docstring).

    ``account_id`` is empty: a batch names many accounts (``accounts`` lists them, in order of first
    appearance); its Pub/Sub attributes name the connector instead."""

    TYPE: ClassVar[str] = "connection.updates"
    connector_id: str
    updates: tuple[ConnectionUpdate, ...]
    account_id: str = field(default="", init=False)

    def __post_init__(self) -> None:
        _check(bool(_CONNECTOR_ID_RE.fullmatch(self.connector_id)), "connectorId is malformed")
        _check(isinstance(self.updates, tuple) and 0 < len(self.updates) <= MAX_BATCHED_UPDATES,
               f"updates must hold 1 to {MAX_BATCHED_UPDATES} connection updates")
        _check(all(isinstance(u, ConnectionUpdate) and u.connector_id == self.connector_id for u in self.updates),
               "every update must be a connection update of this connector")

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(u.account_id for u in self.updates))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "connectorId": self.connector_id,
                "updates": [u.to_dict() for u in self.updates]}

    def attributes(self) -> dict[str, str]:
        return {ATTR_TYPE: self.TYPE, ATTR_CONNECTOR_ID: self.connector_id}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        connector_id = _str(obj, "connectorId", _CONNECTOR_ID_RE)
        raw = _get(obj, "updates")
        if not isinstance(raw, list) or not 0 < len(raw) <= MAX_BATCHED_UPDATES:
            raise InvalidEventError(f"field 'updates' must be a list of 1 to {MAX_BATCHED_UPDATES} objects")
        updates: list[ConnectionUpdate] = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise InvalidEventError(f"updates[{i}] is not an object")
            try:
                updates.append(ConnectionUpdate.from_dict(item))
            except InvalidEventError as exc:
                raise InvalidEventError(f"updates[{i}]: {exc}") from None
        return _construct(cls, connector_id=connector_id, updates=tuple(updates))


@dataclass(frozen=True, slots=True)
class PairingCode(_EventBase):
    """A pairing code for the user to type on the phone (Linked devices → link with phone number)."""

    TYPE: ClassVar[str] = "pairing.code"
    account_id: str
    code: str = field(repr=False)
    expires_at: datetime
    connector_id: str
    generation: int

    def __post_init__(self) -> None:
        _check_account_id(self.account_id)
        _check(bool(_PAIRING_CODE_RE.fullmatch(self.code)), "code must be 8 characters A-Z0-9")
        _check_aware(self.expires_at, "expiresAt")
        _check_sender(self.connector_id, self.generation)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "accountId": self.account_id, "code": self.code,
                "expiresAt": format_time(self.expires_at), **_sender_dict(self.connector_id, self.generation)}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        return _construct(cls, account_id=_str(obj, "accountId", ACCOUNT_ID_RE),
                          code=_str(obj, "code", _PAIRING_CODE_RE),
                          expires_at=_time(obj, "expiresAt"), **_sender_fields(obj))


@dataclass(frozen=True, slots=True)
class PairingQr(_EventBase):
    """The string to render as a QR code (``ref,noisePub,identityPub,advSecret``)."""

    TYPE: ClassVar[str] = "pairing.qr"
    account_id: str
    qr: str = field(repr=False)
    expires_at: datetime
    connector_id: str
    generation: int

    def __post_init__(self) -> None:
        _check_account_id(self.account_id)
        _check(isinstance(self.qr, str) and 0 < len(self.qr) <= _MAX_QR_CHARS, "qr length out of range")
        _check_aware(self.expires_at, "expiresAt")
        _check_sender(self.connector_id, self.generation)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "accountId": self.account_id, "qr": self.qr,
                "expiresAt": format_time(self.expires_at), **_sender_dict(self.connector_id, self.generation)}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        return _construct(cls, account_id=_str(obj, "accountId", ACCOUNT_ID_RE),
                          qr=_str(obj, "qr", max_len=_MAX_QR_CHARS),
                          expires_at=_time(obj, "expiresAt"), **_sender_fields(obj))


@dataclass(frozen=True, slots=True)
class PairingSuccess(_EventBase):
    """The phone accepted the device; ``jid`` is the companion's own device JID."""

    TYPE: ClassVar[str] = "pairing.success"
    account_id: str
    jid: str
    connector_id: str
    generation: int

    def __post_init__(self) -> None:
        _check_account_id(self.account_id)
        _check(bool(_JID_RE.fullmatch(self.jid)), "jid is malformed")
        _check_sender(self.connector_id, self.generation)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "accountId": self.account_id, "jid": self.jid,
                **_sender_dict(self.connector_id, self.generation)}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        return _construct(cls, account_id=_str(obj, "accountId", ACCOUNT_ID_RE),
                          jid=_str(obj, "jid", _JID_RE), **_sender_fields(obj))


@dataclass(frozen=True, slots=True)
class PairingFailed(_EventBase):
    """Pairing ended without a linked device; ``reason`` is a slug such as ``expired``,
    ``rejected``, ``bad_code`` or ``connection_lost``. ``expired`` makes the account
    ``pairing_expired``; any other reason makes it ``pairing_failed``."""

    TYPE: ClassVar[str] = "pairing.failed"
    account_id: str
    reason: str
    connector_id: str
    generation: int

    def __post_init__(self) -> None:
        _check_account_id(self.account_id)
        _check(bool(_SLUG_RE.fullmatch(self.reason)), "reason is malformed")
        _check_sender(self.connector_id, self.generation)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "accountId": self.account_id, "reason": self.reason,
                **_sender_dict(self.connector_id, self.generation)}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        return _construct(cls, account_id=_str(obj, "accountId", ACCOUNT_ID_RE),
                          reason=_str(obj, "reason", _SLUG_RE), **_sender_fields(obj))


@dataclass(frozen=True, slots=True)
class MessageReceived(_EventBase):
    """An incoming message, published before it is acknowledged to WhatsApp.

    ``payload`` is the still-encrypted message node as received; consumers deduplicate by
    ``message_id`` (delivery is at least once). ``timestamp`` is the message time in Unix
    seconds as WhatsApp sends it. The payload is excluded from ``repr`` and must never be logged.
    """

    TYPE: ClassVar[str] = "message.received"
    DEFAULT_TOPIC: ClassVar[str] = TOPIC_MESSAGES
    account_id: str
    message_id: str
    chat: str
    sender: str
    timestamp: int
    type: str
    payload: bytes = field(repr=False)

    def __post_init__(self) -> None:
        _check_account_id(self.account_id)
        _check(bool(_MESSAGE_ID_RE.fullmatch(self.message_id)), "messageId is malformed")
        _check(bool(_JID_RE.fullmatch(self.chat)), "chat is malformed")
        _check(bool(_JID_RE.fullmatch(self.sender)), "sender is malformed")
        _check(isinstance(self.timestamp, int) and 0 <= self.timestamp <= _MAX_INT, "timestamp out of range")
        _check(bool(_SLUG_RE.fullmatch(self.type)), "type is malformed")
        _check(isinstance(self.payload, bytes), "payload must be bytes")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "accountId": self.account_id,
            "messageId": self.message_id,
            "chat": self.chat,
            "sender": self.sender,
            "timestamp": self.timestamp,
            "messageType": self.type,
            "payload": base64.b64encode(self.payload).decode("ascii"),
        }

    def attributes(self) -> dict[str, str]:
        return {ATTR_TYPE: self.TYPE, ATTR_ACCOUNT_ID: self.account_id, ATTR_MESSAGE_ID: self.message_id}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        return _construct(
            cls,
            account_id=_str(obj, "accountId", ACCOUNT_ID_RE),
            message_id=_str(obj, "messageId", _MESSAGE_ID_RE),
            chat=_str(obj, "chat", _JID_RE),
            sender=_str(obj, "sender", _JID_RE),
            timestamp=_int(obj, "timestamp"),
            type=_str(obj, "messageType", _SLUG_RE),
            payload=_b64(obj, "payload"),
        )


@dataclass(frozen=True, slots=True)
class AccountRemoved(_EventBase):
    """The connector logged the device out and deleted its local state for this account."""

    TYPE: ClassVar[str] = "account.removed"
    account_id: str

    def __post_init__(self) -> None:
        _check_account_id(self.account_id)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "accountId": self.account_id}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        return _construct(cls, account_id=_str(obj, "accountId", ACCOUNT_ID_RE))


@dataclass(frozen=True, slots=True)
class AlertRaised(_EventBase):
    """A problem found by the functions (health check, logged-out account, failed restore).

    ``kind`` is a slug (``logged_out``, ``replaced``, ``cannot_decrypt``, ``invalid``, ``stale``,
    ``missing``, ``fell_back``, ``restore_failed``, ``kek_unavailable``; docs/DEPLOY.md has a
    runbook row for each); ``message`` is a short human sentence with no secrets.
    """

    TYPE: ClassVar[str] = "alert.raised"
    DEFAULT_TOPIC: ClassVar[str] = TOPIC_ALERTS
    alert_id: str
    account_id: str
    kind: str
    message: str
    created_at: datetime

    def __post_init__(self) -> None:
        _check(bool(_ALERT_ID_RE.fullmatch(self.alert_id)), "alertId is malformed")
        _check_account_id(self.account_id)
        _check(bool(_SLUG_RE.fullmatch(self.kind)), "kind is malformed")
        _check(isinstance(self.message, str) and 0 < len(self.message) <= _MAX_TEXT_CHARS,
               "message length out of range")
        _check_aware(self.created_at, "createdAt")

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "alertId": self.alert_id, "accountId": self.account_id,
                "kind": self.kind, "message": self.message, "createdAt": format_time(self.created_at)}

    def attributes(self) -> dict[str, str]:
        return {ATTR_TYPE: self.TYPE, ATTR_ACCOUNT_ID: self.account_id, "kind": self.kind}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self:
        return _construct(cls, alert_id=_str(obj, "alertId", _ALERT_ID_RE),
                          account_id=_str(obj, "accountId", ACCOUNT_ID_RE),
                          kind=_str(obj, "kind", _SLUG_RE), message=_str(obj, "message"),
                          created_at=_time(obj, "createdAt"))


Event = (ConnectionUpdate | ConnectionUpdates | PairingCode | PairingQr | PairingSuccess | PairingFailed
         | MessageReceived | AccountRemoved | AlertRaised)

_BY_TYPE: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (ConnectionUpdate, ConnectionUpdates, PairingCode, PairingQr, PairingSuccess, PairingFailed,
                MessageReceived, AccountRemoved, AlertRaised)
}


def parse_event(data: bytes | str) -> Event:
    """Decode and validate any event by its ``type`` field."""
    obj = _decode_object(data)
    tag = obj.get("type")
    cls = _BY_TYPE.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise InvalidEventError("unknown or missing event type")
    return cls.from_dict(obj)


# ---------------------------------------------------------------------------
# session-snapshot message attributes


@dataclass(frozen=True, slots=True)
class SnapshotAttributes:
    """Pub/Sub attributes of a ``session-snapshots`` message (the data is the sealed snapshot).

    They repeat what the sealed snapshot holds so a subscriber can route and fence without
    opening it; the persist function still checks that they match the opened snapshot.
    """

    account_id: str
    generation: int
    connector_id: str

    def __post_init__(self) -> None:
        _check_account_id(self.account_id)
        _check(isinstance(self.generation, int) and 0 <= self.generation <= _MAX_INT,
               "generation out of range")
        _check(bool(_CONNECTOR_ID_RE.fullmatch(self.connector_id)), "connectorId is malformed")

    def to_attributes(self) -> dict[str, str]:
        return {
            ATTR_ACCOUNT_ID: self.account_id,
            ATTR_GENERATION: str(self.generation),
            ATTR_CONNECTOR_ID: self.connector_id,
            ATTR_SCHEMA: SNAPSHOT_SCHEMA,
        }

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, str]) -> SnapshotAttributes:
        schema = attrs.get(ATTR_SCHEMA, SNAPSHOT_SCHEMA)
        if schema != SNAPSHOT_SCHEMA:
            raise InvalidEventError("unsupported snapshot schema")
        generation_text = attrs.get(ATTR_GENERATION, "")
        if not generation_text.isdecimal() or len(generation_text) > 16:
            raise InvalidEventError("attribute 'generation' must be a decimal integer")
        return _construct(
            cls,
            account_id=_str(attrs, ATTR_ACCOUNT_ID, ACCOUNT_ID_RE),
            generation=int(generation_text),
            connector_id=_str(attrs, ATTR_CONNECTOR_ID, _CONNECTOR_ID_RE),
        )
