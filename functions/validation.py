"""Strict schemas for everything the functions accept from outside.

Each input is an object with known fields: wrong types, missing required fields, unknown fields
and oversized values are refused with :class:`InvalidArgumentError` whose ``details`` name the
field. Booleans are never accepted as integers. Nothing here echoes the offending value back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from functions.errors import InvalidArgumentError, ResourceExhaustedError
from shared.connector_sync import MAX_SYNC_BODY_BYTES, PairingMethod, SyncRequest
from shared.errors import SyncContractError, SyncLimitError
from shared.events import ACCOUNT_ID_RE

__all__ = ["MAX_CALLABLE_BODY_BYTES", "MAX_SYNC_BODY_BYTES", "AddAccountInput", "parse_account_ref",
           "parse_add_account", "parse_empty", "parse_sync_request"]

#: Largest callable request body accepted, in bytes (connectorSync: ``MAX_SYNC_BODY_BYTES``).
MAX_CALLABLE_BODY_BYTES = 16 * 1024

# E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
PHONE_RE = re.compile(r"\+[1-9][0-9]{6,14}")


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


def parse_sync_request(data: Any) -> SyncRequest:
    """A connectorSync body (``shared.connector_sync.SyncRequest.from_json``), its errors as functions errors."""
    try:
        return SyncRequest.from_json(data)
    except SyncLimitError as exc:
        raise ResourceExhaustedError(str(exc), {"field": exc.field}) from None
    except SyncContractError as exc:
        raise InvalidArgumentError(str(exc), {"field": exc.field}) from None
