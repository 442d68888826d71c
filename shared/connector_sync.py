"""The connectorSync contract: what the connector asks and what the functions answer.

One ``POST {functions_base}/connectorSync`` renews held leases, releases given-up ones, claims new
work and fetches commands (docs/ARCHITECTURE.md, "Connector ↔ functions"). Both sides speak it
through these types: the connector builds a :class:`SyncRequest` and reads a :class:`SyncReply`,
the functions read the request and build the reply. Each type is a frozen dataclass with
``to_json()`` (a JSON-ready dict) and ``from_json()`` (validation)::

    request  {"connectorId", "capacity", "publicKey": b64, "held": [HeldLease], "release": [HeldLease]}
    reply    {"leaseTtlS", "vaultPublicKey": b64, "vaultKeyId", "renewed": [RenewedLease],
              "lost": [Lost], "claimed": [Claim], "commands": [Command],
              "pendingSends": [shared.events.OutboundSend]}

The two directions are read differently, on purpose:

- a request is read strictly (the functions face the outside): unknown fields, wrong types,
  duplicates and oversized lists are refused with :class:`~shared.errors.SyncContractError` naming
  the field (:class:`~shared.errors.SyncLimitError` for the sizes), never echoing the value;
- a reply is read so that a connector keeps working beside newer functions in a rolling deploy:
  unknown fields and unknown command actions are ignored, a ``lost`` reason it does not know is
  kept as text; known fields are checked strictly.

A claimed account's ``sealedState`` is a :class:`~shared.snapshot.Snapshot` under the claimed
generation, sealed with :func:`shared.sealing.seal` to the request's ``publicKey`` with key id
:data:`RESTORE_KEY_ID` and associated data :data:`RESTORE_AAD`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Self

from shared.errors import SyncContractError, SyncLimitError
from shared.events import ACCOUNT_ID_RE, InvalidEventError, OutboundSend, format_time, parse_time
from shared.sealing import is_usable_public_key

__all__ = [
    "CONNECTOR_ID_RE",
    "MAX_SYNC_ACCOUNTS",
    "MAX_SYNC_BODY_BYTES",
    "RESTORE_AAD",
    "RESTORE_KEY_ID",
    "X25519_KEY_BYTES",
    "Claim",
    "ClaimMode",
    "Command",
    "CommandAction",
    "HeldLease",
    "Lost",
    "LostReason",
    "PairingMethod",
    "PairingRequest",
    "RenewedLease",
    "SyncReply",
    "SyncRequest",
]

#: Largest connectorSync request body the functions accept, in bytes.
MAX_SYNC_BODY_BYTES = 512 * 1024
#: Most accounts one connector may ask for or report in one call (``held``, ``release``).
MAX_SYNC_ACCOUNTS = 5000
CONNECTOR_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
X25519_KEY_BYTES = 32
#: Key id and associated data of restored states sealed to a connector's ephemeral key.
RESTORE_KEY_ID = "connector"
RESTORE_AAD = b""
_MAX_GENERATION = 2**53 - 1  # the largest integer JavaScript readers keep exact
_MAX_CAPACITY = 100_000


class PairingMethod(enum.StrEnum):
    CODE = "code"
    QR = "qr"


class ClaimMode(enum.StrEnum):
    RESTORE = "restore"  # ``sealedState`` holds the account's state
    PAIR = "pair"  # no state yet: pair with ``pairing``


class LostReason(enum.StrEnum):
    """Why a held lease is no longer this connector's (``lost[].reason``)."""

    TAKEN = "taken"  # another connector claimed it after this lease ran out
    RELEASED = "released"
    UNKNOWN_ACCOUNT = "unknown_account"
    REMOVED = "removed"  # the account was removed
    NOT_SERVED = "not_served"  # logged out, replaced, restore failed or re-pairing: stop the socket


class CommandAction(enum.StrEnum):
    RECONNECT = "reconnect"
    REMOVE = "remove"  # log the device out, then report ``account.removed``


# --- reading helpers -------------------------------------------------------------------------------


def _object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise SyncContractError(what, f"{what} must be an object")
    return data


def _strict_object(data: Any, what: str, allowed: Sequence[str], required: Sequence[str]) -> Mapping[str, Any]:
    obj = _object({} if data is None else data, what)
    extra = sorted(str(k) for k in obj if k not in allowed)
    if extra:
        shown = ", ".join(repr(k[:40]) for k in extra[:5])
        raise SyncContractError(extra[0][:40], f"{what}: unexpected field(s) {shown}")
    for key in required:
        if obj.get(key) is None:
            raise SyncContractError(key, f"{key} is required")
    return obj


def _value(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise SyncContractError(key, f"{what}: {key!r} is missing or not {kind}")
    return value


def _pattern(obj: Mapping[str, Any], key: str, pattern: re.Pattern[str], hint: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise SyncContractError(key, f"{key} must be a string")
    if len(value) > 256 or not pattern.fullmatch(value):
        raise SyncContractError(key, f"{key} is malformed: {hint}")
    return value


def _bounded_int(obj: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise SyncContractError(key, f"{key} must be an integer")
    if not low <= value <= high:
        raise SyncContractError(key, f"{key} must be between {low} and {high}")
    return value


def _b64decode(text: str, key: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SyncContractError(key, f"{what}: {key!r} is not base64") from exc


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _list(obj: Mapping[str, Any], key: str, what: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SyncContractError(key, f"{what}: {key!r} is not a list")
    return value


# --- request ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A lease the connector holds (``held``) or gives back (``release``)."""

    account_id: str
    generation: int
    #: In ``held``: False when the lease need not be extended yet, only confirmed (sent only when False).
    renew: bool = True

    def to_json(self) -> dict[str, Any]:
        if self.renew:
            return {"accountId": self.account_id, "generation": self.generation}
        return {"accountId": self.account_id, "generation": self.generation, "renew": False}

    @classmethod
    def from_json(cls, data: Any, key: str) -> Self:
        """One entry of list ``key`` (``held`` or ``release``; only ``held`` entries carry ``renew``)."""
        allowed = ("accountId", "generation", "renew") if key == "held" else ("accountId", "generation")
        obj = _strict_object(data, f"{key}[]", allowed, ("accountId", "generation"))
        renew = obj.get("renew", True)
        if not isinstance(renew, bool):
            raise SyncContractError(key, f"{key}[].renew must be a boolean")
        account_id = _pattern(obj, "accountId", ACCOUNT_ID_RE, "letters, digits, '-' and '_', at most 128")
        return cls(account_id, _bounded_int(obj, "generation", 0, _MAX_GENERATION), renew)


def _held_list(obj: Mapping[str, Any], key: str) -> tuple[HeldLease, ...]:
    items = obj.get(key)
    if items is None:
        return ()
    if not isinstance(items, list):
        raise SyncContractError(key, f"{key} must be a list")
    if len(items) > MAX_SYNC_ACCOUNTS:
        raise SyncLimitError(key, f"{key} lists more than {MAX_SYNC_ACCOUNTS} accounts")
    out: list[HeldLease] = []
    seen: set[str] = set()
    for item in items:
        lease = HeldLease.from_json(item, key)
        if lease.account_id in seen:
            raise SyncContractError(key, f"{key} lists an account twice")
        seen.add(lease.account_id)
        out.append(lease)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SyncRequest:
    connector_id: str
    capacity: int
    #: The connector's ephemeral X25519 public key (raw 32 bytes): restored states are sealed to it.
    public_key: bytes
    held: Sequence[HeldLease] = ()
    release: Sequence[HeldLease] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "connectorId": self.connector_id,
            "capacity": self.capacity,
            "publicKey": _b64encode(self.public_key),
            "held": [lease.to_json() for lease in self.held],
            "release": [lease.to_json() for lease in self.release],
        }

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Read a request strictly; raise :class:`SyncContractError` / :class:`SyncLimitError`."""
        obj = _strict_object(data, "body", ("connectorId", "capacity", "publicKey", "held", "release"),
                             ("connectorId", "capacity", "publicKey"))
        connector_id = _pattern(obj, "connectorId", CONNECTOR_ID_RE, "letters, digits and _.:-, at most 128")
        capacity = _bounded_int(obj, "capacity", 0, _MAX_CAPACITY)
        key_text = obj["publicKey"]
        if not isinstance(key_text, str) or len(key_text) > 64:
            raise SyncContractError("publicKey", "publicKey must be base64 of a 32-byte X25519 public key")
        try:
            public_key = base64.b64decode(key_text, validate=True)
        except (binascii.Error, ValueError):
            raise SyncContractError("publicKey", "publicKey is not valid base64") from None
        if len(public_key) != X25519_KEY_BYTES:
            raise SyncContractError("publicKey", "publicKey must be 32 bytes")
        if not is_usable_public_key(public_key):
            raise SyncContractError("publicKey", "publicKey is a low-order X25519 point: what is sealed to it "
                                                 "opens for anyone")
        return cls(connector_id, capacity, public_key, _held_list(obj, "held"), _held_list(obj, "release"))


# --- reply -----------------------------------------------------------------------------------------

_REPLY = "connectorSync answer"


def _entry_head(data: Any, what: str) -> tuple[Mapping[str, Any], str, int]:
    obj = _object(data, what)
    return obj, _value(obj, "accountId", str, _REPLY), _value(obj, "generation", int, _REPLY)


def _expiry(obj: Mapping[str, Any]) -> datetime | None:
    text = obj.get("leaseExpiresAt")
    if text is None:
        return None
    if not isinstance(text, str):
        raise SyncContractError("leaseExpiresAt", f"{_REPLY}: 'leaseExpiresAt' is not a time")
    try:
        return parse_time(text)
    except InvalidEventError as exc:
        raise SyncContractError("leaseExpiresAt", f"{_REPLY}: 'leaseExpiresAt' is not a time") from exc


def _expiry_json(at: datetime | None) -> str | None:
    return format_time(at) if at is not None else None


@dataclass(frozen=True, slots=True)
class RenewedLease:
    """A held lease extended by this call."""

    account_id: str
    generation: int
    lease_expires_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {"accountId": self.account_id, "generation": self.generation,
                "leaseExpiresAt": _expiry_json(self.lease_expires_at)}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        obj, account_id, generation = _entry_head(data, "a lease entry")
        return cls(account_id, generation, _expiry(obj))


@dataclass(frozen=True, slots=True)
class Lost:
    """A held lease that is no longer this connector's: close that socket at once."""

    account_id: str
    #: A :class:`LostReason`; a reason newer than this reader stays as its text.
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"accountId": self.account_id, "reason": str(self.reason)}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        obj = _object(data, "a lost entry")
        text = str(obj.get("reason", "unknown"))
        reason: str = LostReason(text) if text in LostReason.__members__.values() else text
        return cls(_value(obj, "accountId", str, _REPLY), reason)


@dataclass(frozen=True, slots=True)
class PairingRequest:
    """How a claimed account in mode ``pair`` is to pair (the phone number only for ``code``)."""

    method: PairingMethod
    phone_number: str | None

    def to_json(self) -> dict[str, Any]:
        return {"method": str(self.method), "phoneNumber": self.phone_number}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        obj = _object(data, "pairing")
        method = _value(obj, "method", str, _REPLY)
        if method not in PairingMethod.__members__.values():
            raise SyncContractError("method", f"{_REPLY}: unknown pairing method {method!r}")
        phone = obj.get("phoneNumber")
        return cls(PairingMethod(method), phone if isinstance(phone, str) else None)


@dataclass(frozen=True, slots=True)
class Claim:
    """An account handed to this connector under a new lease generation."""

    account_id: str
    generation: int
    mode: ClaimMode
    #: Mode ``restore``: the state sealed to the request's public key (module docstring).
    sealed_state: bytes | None = field(default=None, repr=False)
    #: The vault version restored, and whether newer versions were unusable.
    version: int | None = None
    fell_back: bool = False
    pairing: PairingRequest | None = None
    lease_expires_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "accountId": self.account_id,
            "generation": self.generation,
            "leaseExpiresAt": _expiry_json(self.lease_expires_at),
            "mode": str(self.mode),
            "sealedState": _b64encode(self.sealed_state) if self.sealed_state is not None else None,
            "version": self.version,
            "fellBack": self.fell_back,
            "pairing": self.pairing.to_json() if self.pairing is not None else None,
        }

    @classmethod
    def from_json(cls, data: Any) -> Self:
        obj, account_id, generation = _entry_head(data, "a claim")
        mode = _value(obj, "mode", str, _REPLY)
        if mode not in ClaimMode.__members__.values():
            raise SyncContractError("mode", f"{_REPLY}: unknown claim mode {mode!r}")
        sealed = obj.get("sealedState")
        pairing = obj.get("pairing")
        version = obj.get("version")
        return cls(
            account_id=account_id,
            generation=generation,
            mode=ClaimMode(mode),
            sealed_state=_b64decode(sealed, "sealedState", _REPLY) if isinstance(sealed, str) else None,
            version=version if isinstance(version, int) and not isinstance(version, bool) else None,
            fell_back=bool(obj.get("fellBack", False)),
            pairing=PairingRequest.from_json(pairing) if isinstance(pairing, Mapping) else None,
            lease_expires_at=_expiry(obj),
        )


@dataclass(frozen=True, slots=True)
class Command:
    """Something the holder of an account must do."""

    account_id: str
    action: CommandAction

    def to_json(self) -> dict[str, Any]:
        return {"accountId": self.account_id, "action": str(self.action)}

    @classmethod
    def from_json(cls, data: Any) -> Self | None:
        """The command, or None for an action this reader does not know (ignored)."""
        obj = _object(data, "a command")
        action = _value(obj, "action", str, _REPLY)
        if action not in CommandAction.__members__.values():
            return None
        return cls(_value(obj, "accountId", str, _REPLY), CommandAction(action))


@dataclass(frozen=True, slots=True)
class SyncReply:
    lease_ttl_s: float
    #: The vault's public sealing key (raw X25519) and its id: snapshots are sealed to it.
    vault_public_key: bytes
    vault_key_id: str
    renewed: Sequence[RenewedLease] = ()
    lost: Sequence[Lost] = ()
    claimed: Sequence[Claim] = ()
    commands: Sequence[Command] = ()
    #: The outbox catch-up: sends waiting for accounts this connector holds after this call (all of
    #: those it claimed in it; of the others, the ones accepted since shortly before its previous
    #: call), oldest first. The same send may come again (here or on the outbox topic): a connector
    #: sends each ``messageId`` once. Sends this connector cannot read (a newer schema) are skipped;
    #: they stay in the outbox.
    pending_sends: Sequence[OutboundSend] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "leaseTtlS": self.lease_ttl_s,
            "vaultPublicKey": _b64encode(self.vault_public_key),
            "vaultKeyId": self.vault_key_id,
            "renewed": [entry.to_json() for entry in self.renewed],
            "lost": [entry.to_json() for entry in self.lost],
            "claimed": [entry.to_json() for entry in self.claimed],
            "commands": [entry.to_json() for entry in self.commands],
            "pendingSends": [send.to_dict() for send in self.pending_sends],
        }

    @classmethod
    def from_json(cls, data: Any) -> Self:
        """Read a reply (forward compatible, see the module docstring); raise :class:`SyncContractError`."""
        obj = _object(data, _REPLY)
        commands = [Command.from_json(item) for item in _list(obj, "commands", _REPLY)]
        return cls(
            lease_ttl_s=float(_value(obj, "leaseTtlS", (int, float), _REPLY)),
            vault_public_key=_b64decode(_value(obj, "vaultPublicKey", str, _REPLY), "vaultPublicKey", _REPLY),
            vault_key_id=str(obj.get("vaultKeyId", "")),
            renewed=[RenewedLease.from_json(item) for item in _list(obj, "renewed", _REPLY)],
            lost=[Lost.from_json(item) for item in _list(obj, "lost", _REPLY)],
            claimed=[Claim.from_json(item) for item in _list(obj, "claimed", _REPLY)],
            commands=[command for command in commands if command is not None],
            pending_sends=_pending_sends(obj),
        )


def _pending_sends(obj: Mapping[str, Any]) -> list[OutboundSend]:
    sends: list[OutboundSend] = []
    for item in _list(obj, "pendingSends", _REPLY):
        if not isinstance(item, Mapping) or item.get("type") != OutboundSend.TYPE:
            continue
        try:
            sends.append(OutboundSend.from_dict(item))
        except InvalidEventError:  # a newer schema, or broken: it stays in the outbox for another look
            continue
    return sends
