"""Baileys' BufferJSON: how binary values travel inside JSON.

Baileys (``src/Utils/generics.ts``, ``BufferJSON``) writes every ``Buffer``/``Uint8Array`` as
``{"type": "Buffer", "data": "<standard base64>"}``. Its reviver also accepts two older shapes that
existing auth folders may still hold, and so does :func:`revive`:

* ``{"type": "Buffer", "data": [0, 255, ...]}`` -- Node's own ``Buffer.toJSON`` form;
* ``{"0": 12, "1": 34, ...}`` -- a ``Uint8Array`` passed through plain ``JSON.stringify``.

In Python the decoded form is ``bytes``; :data:`JsonValue` is the type of any decoded value.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeAlias

from shared.errors import BaileysFormatError

JsonValue: TypeAlias = (
    bool | int | float | str | bytes | list["JsonValue"] | dict[str, "JsonValue"] | None
)
JsonObject: TypeAlias = dict[str, JsonValue]

_BYTE_MAX = 255


def decode_base64(text: str) -> bytes:
    """Decode base64 as leniently as Node's ``Buffer.from(text, 'base64')`` for well-formed input.

    Accepts the standard and URL-safe alphabets, with or without padding; rejects anything else.
    """
    cleaned = text.strip().replace("-", "+").replace("_", "/").rstrip("=")
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BaileysFormatError("a Buffer value holds invalid base64") from exc


def encode_base64(data: bytes) -> str:
    """Standard base64 with padding, as Node's ``buffer.toString('base64')`` writes it."""
    return base64.b64encode(data).decode("ascii")


def _bytes_from_ints(values: list[Any]) -> bytes:
    if not all(type(v) is int and 0 <= v <= _BYTE_MAX for v in values):
        raise BaileysFormatError("a Buffer value holds something other than bytes 0..255")
    return bytes(values)


def _is_index_map(obj: dict[str, Any]) -> bool:
    """True for a JSON-stringified Uint8Array: non-empty, keys 0..n-1, every value a byte."""
    if not obj:
        return False
    if not all(key.isdigit() for key in obj):
        return False
    if sorted(int(key) for key in obj) != list(range(len(obj))):
        return False
    return all(type(v) is int and 0 <= v <= _BYTE_MAX for v in obj.values())


def _object_hook(obj: dict[str, Any]) -> Any:
    # Called for every JSON object of a state (thousands per restore): the common cases are tested
    # first and cheaply. Canonical base64 (what we and Baileys write) decodes in one strict C call;
    # anything else goes through the lenient decoder, which accepts or rejects it as Node would.
    if "data" in obj and obj.get("type") == "Buffer":
        data = obj["data"]
        if type(data) is str:
            try:
                return binascii.a2b_base64(data, strict_mode=True)
            except binascii.Error:
                return decode_base64(data)
        if isinstance(data, list):
            return _bytes_from_ints(data)
        raise BaileysFormatError("a Buffer value's data is neither base64 text nor a byte list")
    if "0" in obj and _is_index_map(obj):  # an index map always has key "0"
        return bytes(obj[str(i)] for i in range(len(obj)))
    return obj


def revive(text: str | bytes) -> JsonValue:
    """Parse JSON text, turning every BufferJSON value into ``bytes``."""
    try:
        value: JsonValue = json.loads(text, object_hook=_object_hook)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BaileysFormatError(f"not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}") from exc
    except RecursionError as exc:
        raise BaileysFormatError("JSON nested too deeply") from exc
    return value


def _default(value: object) -> object:
    if type(value) is bytes:  # the common case, first
        return {"type": "Buffer", "data": binascii.b2a_base64(value, newline=False).decode("ascii")}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "Buffer", "data": encode_base64(bytes(value))}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_CANONICAL = json.JSONEncoder(default=_default, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False)
_COMPACT = json.JSONEncoder(default=_default, separators=(",", ":"), allow_nan=False)


def dumps(value: JsonValue, *, canonical: bool = False) -> str:
    """Serialise with ``bytes`` as BufferJSON.

    ``canonical=True`` gives the form the vault hashes and stores: keys sorted, no spaces, non-ASCII
    kept as UTF-8, so equal states always give equal text.
    """
    return (_CANONICAL if canonical else _COMPACT).encode(value)


def to_plain(value: JsonValue) -> Any:
    """A copy with every ``bytes`` replaced by its BufferJSON object (for JSON-only sinks)."""
    if isinstance(value, bytes):
        return {"type": "Buffer", "data": encode_base64(value)}
    if isinstance(value, dict):
        return {key: to_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    return value
