"""Parsing a serialised state with its pre-keys left as text until something reads them.

A linked account's state is ~140 KB of JSON, and ~95% of it is the ``pre-key`` category: 812 key
pairs written as BufferJSON, three JSON objects each. Reviving them is most of what parsing a state
costs, and a restore that only logs the account in never reads them: pre-keys are
read when a message arrives that was encrypted with one, and replaced when the server's stock runs low.

:func:`revive_deferring_pre_keys` parses everything but that category, when its text is exactly what
the canonical writer (:func:`shared.snapshot.canonical_state_bytes`) produces, and only for text that
writer produced (a state the vault or the local cache kept, a snapshot a connector sealed: each
authenticated by AEAD). Finding the category costs about a tenth of parsing it: one ``"pre-key":``
key in the whole text, preceded by ``{`` or ``,`` (so it is a key, not text inside a string), its
value written with the canonical bytes only (no backslash, so every quote delimits a string) and
ending at the first ``"}}}``; then the rest of the text is parsed with a placeholder in its place,
which must land exactly at ``state.keys["pre-key"]``. Anything else parses the whole text as before.

The text is kept as a :class:`DeferredCategory`; :class:`~shared.authstate.AuthState` parses it on
first use, and writes it back unchanged (it *is* the canonical form) while nothing changed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.bufferjson import JsonObject, JsonValue, revive
from shared.errors import BaileysFormatError

PRE_KEY: Final = "pre-key"

_KEY: Final = b'"pre-key":'
#: Every byte a canonical pre-key category is written with: no backslash (so no escape: every quote
#: delimits a string) and no space.
_CANONICAL_BYTES: Final = b'{}":,+/=0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'
#: How a canonical pre-key category ends: a Buffer's ``"}``, then its entry's ``}``, then its own.
_END: Final = b'"}}}'
#: A category shorter than this is parsed at once (parsing it costs about what finding it does).
MIN_DEFERRED_BYTES: Final = 4096


@dataclass(frozen=True, slots=True)
class DeferredCategory:
    """One key category still in its canonical JSON text (``count`` entries)."""

    text: bytes
    count: int

    def parse(self) -> dict[str, JsonValue]:
        value = revive(self.text)
        if not isinstance(value, dict):  # pragma: no cover - the text was matched as an object
            raise BaileysFormatError("a deferred key category is not an object")
        return value


def _find_pre_keys(text: bytes) -> tuple[int, int, DeferredCategory] | None:
    """``(start, end, category)`` of the pre-key category's value in ``text``, if the text holds exactly
    one ``"pre-key":`` key and its value looks canonical (the caller checks where it sits)."""
    at = text.find(_KEY)
    if at <= 0 or text[at - 1] not in b"{," or text.find(_KEY, at + len(_KEY)) != -1:
        return None
    start = at + len(_KEY)
    end = text.find(_END, start) + len(_END)
    if end - start < MIN_DEFERRED_BYTES or not text.startswith(b'{"', start):
        return None
    span = text[start:end]
    if span.translate(None, _CANONICAL_BYTES):
        return None
    count = span.count(b'"private":')
    if count == 0 or count != span.count(b'"public":'):
        return None
    return start, end, DeferredCategory(span, count)


def revive_deferring_pre_keys(text: bytes,
                              state_path: tuple[str, ...] = ()) -> tuple[JsonValue, DeferredCategory | None]:
    """``revive(text)``, with the state's pre-key category kept as text when it can be.

    ``state_path`` leads from the top object to the state (``("state",)`` in a snapshot, ``()`` for a
    bare state). When a :class:`DeferredCategory` is returned, the state's ``keys`` object holds no
    ``pre-key`` entry: the caller keeps the category instead."""
    found = _find_pre_keys(text)
    if found is None:
        return revive(text), None
    start, end, category = found
    value = revive(text[:start] + b"0" + text[end:])
    keys = _keys_at(value, state_path)
    # The placeholder must sit exactly at state.keys["pre-key"]: the only "pre-key" key in the text.
    if keys is None or type(keys.get(PRE_KEY)) is not int:
        return revive(text), None
    del keys[PRE_KEY]
    return value, category


def _keys_at(value: JsonValue, state_path: tuple[str, ...]) -> JsonObject | None:
    for name in state_path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    if not isinstance(value, dict):
        return None
    keys = value.get("keys")
    return keys if isinstance(keys, dict) else None
