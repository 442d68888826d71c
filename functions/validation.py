"""Strict schemas for everything the functions accept from outside.

Each input is an object with known fields: wrong types, missing required fields, unknown fields
and oversized values are refused with :class:`InvalidArgumentError` whose ``details`` name the
field. Booleans are never accepted as integers. Nothing here echoes the offending value back.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from functions.errors import InvalidArgumentError, ResourceExhaustedError
from functions.model import PairingMethod
from shared.events import ACCOUNT_ID_RE

#: Largest callable / connectorSync request body accepted, in bytes.
MAX_CALLABLE_BODY_BYTES = 16 * 1024
MAX_SYNC_BODY_BYTES = 512 * 1024
#: Most accounts one connector may ask for or report in one connectorSync call.
MAX_SYNC_ACCOUNTS = 5000

# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
PHONE_RE = re.compile(r"\+[1-9][0-9]{6,14}")
CONNECTOR_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
X25519_KEY_BYTES = 32


def _fail(field: str, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, {"field": field})


def _object(data: Any, what: str, allowed: Sequence[str], required: Sequence[str]) -> Mapping[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise _fail(what, f"{what} must be an object")
    extra = sorted(k for k in data if k not in allowed)
    if extra:
        shown = ", ".join(repr(k[:40]) for k in extra[:5])
        raise InvalidArgumentError(f"{what}: unexpected field(s) {shown}", {"field": str(extra[0])[:40]})
    for key in required:
        if key not in data or data[key] is None:
            raise _fail(key, f"{key} is required")
    return data


def _string(data: Mapping[str, Any], key: str, pattern: re.Pattern[str], hint: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise _fail(key, f"{key} must be a string")
    if len(value) > 256 or not pattern.fullmatch(value):
        raise _fail(key, f"{key} is malformed: {hint}")
    return value


def _integer(data: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = data[key]
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(key, f"{key} must be an integer")
    if not low <= value <= high:
        raise _fail(key, f"{key} must be between {low} and {high}")
    return value


def _account_id(data: Mapping[str, Any], key: str = "accountId") -> str:
    return _string(data, key, ACCOUNT_ID_RE, "letters, digits, '-' and '_', at most 128")


# --- callables ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AddAccountInput:
    phone_number: str
    method: PairingMethod


def parse_add_account(data: Any) -> AddAccountInput:
    obj = _object(data, "data", ("phoneNumber", "method"), ("phoneNumber", "method"))
    phone = _string(obj, "phoneNumber", PHONE_RE, "use E.164 form with country code, e.g. +40700000001")
    method_text = obj["method"]
    if not isinstance(method_text, str):
        raise _fail("method", "method must be a string")
    try:
        method = PairingMethod(method_text)
    except ValueError:
        raise _fail("method", 'method must be "code" or "qr"') from None
    return AddAccountInput(phone, method)


def parse_account_ref(data: Any) -> str:
    obj = _object(data, "data", ("accountId",), ("accountId",))
    return _account_id(obj)


def parse_empty(data: Any) -> None:
    _object(data, "data", (), ())


# --- connectorSync -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldAccount:
    account_id: str
    generation: int
    #: False: the connector does not need this lease extended yet, only confirmed (``held[].renew``).
    renew: bool = True


@dataclass(frozen=True, slots=True)
class SyncRequest:
    connector_id: str
    capacity: int
    public_key: bytes
    held: tuple[HeldAccount, ...]
    release: tuple[HeldAccount, ...]


def _held_list(obj: Mapping[str, Any], key: str) -> tuple[HeldAccount, ...]:
    items = obj.get(key)
    if items is None:
        return ()
    if not isinstance(items, list):
        raise _fail(key, f"{key} must be a list")
    if len(items) > MAX_SYNC_ACCOUNTS:
        raise ResourceExhaustedError(f"{key} lists more than {MAX_SYNC_ACCOUNTS} accounts", {"field": key})
    out: list[HeldAccount] = []
    seen: set[str] = set()
    for item in items:
        allowed = ("accountId", "generation", "renew") if key == "held" else ("accountId", "generation")
        entry = _object(item, f"{key}[]", allowed, ("accountId", "generation"))
        renew = entry.get("renew", True)
        if not isinstance(renew, bool):
            raise _fail(key, f"{key}[].renew must be a boolean")
        held = HeldAccount(_account_id(entry), _integer(entry, "generation", 0, 2**53 - 1), renew)
        if held.account_id in seen:
            raise _fail(key, f"{key} lists an account twice")
        seen.add(held.account_id)
        out.append(held)
    return tuple(out)


def parse_sync_request(data: Any) -> SyncRequest:
    obj = _object(data, "body", ("connectorId", "capacity", "publicKey", "held", "release"),
                  ("connectorId", "capacity", "publicKey"))
    connector_id = _string(obj, "connectorId", CONNECTOR_ID_RE, "letters, digits and _.:-, at most 128")
    capacity = _integer(obj, "capacity", 0, 100_000)
    key_text = obj["publicKey"]
    if not isinstance(key_text, str) or len(key_text) > 64:
        raise _fail("publicKey", "publicKey must be base64 of a 32-byte X25519 public key")
    try:
        public_key = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise _fail("publicKey", "publicKey is not valid base64") from None
    if len(public_key) != X25519_KEY_BYTES:
        raise _fail("publicKey", "publicKey must be 32 bytes")
    return SyncRequest(connector_id, capacity, public_key, _held_list(obj, "held"), _held_list(obj, "release"))
