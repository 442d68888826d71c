"""Reading the reference system's documents: plaintext ``creds`` at ``whatsapp_sessions/{accountId}``.

The reference saved Baileys' ``creds`` only (no keys), either as a map (Buffers as BufferJSON maps or
as Firestore bytes) or as JSON text, next to ``accountId`` and ``updatedAt`` (a timestamp, epoch
milliseconds or ISO text, depending on the writer's version).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.authstate import AuthState, Credentials
from shared.bufferjson import JsonValue, dumps, revive
from shared.errors import BaileysFormatError, StateValidationError

_EPOCH_MS_THRESHOLD = 10**11  # numbers above this are milliseconds (year 5138 in seconds)


def _from_epoch(seconds: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):  # out of datetime's range: unreadable, not fatal
        return None


def parse_legacy_time(value: Any) -> datetime | None:
    """``updatedAt`` in any of the forms the reference wrote; None when absent or unreadable."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _from_epoch(value / 1000 if value > _EPOCH_MS_THRESHOLD else value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, dict):
        stamp = value.get("_seconds", value.get("seconds"))
        if isinstance(stamp, int | float) and not isinstance(stamp, bool):
            return _from_epoch(stamp)
    return None


def _plain(value: Any) -> JsonValue:
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise StateValidationError(f"legacy creds hold a value of type {type(value).__name__}")


def legacy_state(creds: Any) -> AuthState:
    """The auth state a legacy ``creds`` field describes (credentials only: the reference kept no keys)."""
    try:
        revived = revive(creds) if isinstance(creds, str) else revive(dumps(_plain(creds)))
    except BaileysFormatError as exc:
        raise StateValidationError(f"legacy creds are malformed: {exc}") from exc
    if not isinstance(revived, dict):
        raise StateValidationError("legacy creds are not an object")
    return AuthState(creds=Credentials(revived))
