"""The live store the engine writes through while connected (``authstate`` is the state as a value).

The auth-state store the protocol engine reads and writes while an account is connected; it holds an
:class:`shared.authstate.AuthState` and reports every change, so the connector can persist it.

The interface follows Baileys' ``AuthenticationState`` (creds + ``SignalKeyStore``) so key categories
and ids mean the same thing on both sides. It is synchronous on purpose: the engine is sans-I/O, and
the connector keeps each account's whole state in memory (a few hundred KB at most) and persists it
by taking snapshots, so no call here waits on the network.

Every change is reported to a listener as a :class:`StateChange`. ``critical`` changes (identity,
registration, pairing fields of the creds; see ``CRITICAL_CREDS_FIELDS``) must be persisted before
the engine goes on, since losing one means re-pairing; ``routine`` changes (pre-keys, sessions,
sender keys, app-state keys, counters) can be batched, though never dropped: keys move on every
message, and a restore without them ends in "Bad MAC" / "No session record".
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from shared.authstate import CRITICAL_CREDS_FIELDS, AuthState, Credentials
from shared.bufferjson import JsonValue

#: The pseudo-category :attr:`StateChange.categories` uses for a change of the creds.
CREDS: Literal["creds"] = "creds"

ChangeKind = Literal["critical", "routine"]
KeyUpdates = Mapping[str, Mapping[str, JsonValue | None]]


@dataclass(frozen=True)
class StateChange:
    """What one store call changed.

    ``categories`` holds the key categories touched, plus ``"creds"`` when the creds changed;
    ``creds_fields`` the Baileys names of the creds fields that changed.
    """

    kind: ChangeKind
    categories: frozenset[str]
    creds_fields: frozenset[str] = frozenset()


ChangeListener = Callable[[StateChange], None]


class AuthStore(Protocol):
    """What the protocol engine needs from auth-state storage."""

    def get_creds(self) -> Credentials:
        """The current credentials."""
        ...

    def update_creds(self, changes: Mapping[str, JsonValue]) -> None:
        """Merge ``changes`` (Baileys field names) into the creds; ``None`` removes a field."""
        ...

    def get_keys(self, category: str, ids: Iterable[str]) -> dict[str, JsonValue]:
        """Values of ``category`` for the ``ids`` that exist; missing ids are left out."""
        ...

    def set_keys(self, updates: KeyUpdates) -> None:
        """Write ``{category: {id: value}}``; a ``None`` value deletes that key."""
        ...


def _detached(value: JsonValue) -> JsonValue:
    """A copy of a key value that shares no mutable part with the stored one.

    JSON values are trees of dicts and lists over immutable leaves (str, bytes, numbers), so a
    walk of the containers copies them; ``copy.deepcopy`` does the same several times slower, and
    the Signal layer copies a session record in and out on every message."""
    kind = type(value)
    if kind is dict:
        return {key: _detached(item) if type(item) in _CONTAINERS else item
                for key, item in value.items()}  # type: ignore[union-attr]
    if kind is list:
        return [_detached(item) if type(item) in _CONTAINERS else item for item in value]  # type: ignore[union-attr]
    if isinstance(value, dict | list):  # a subclass: rare, keep the general copy
        return copy.deepcopy(value)
    return value


_CONTAINERS: frozenset[type] = frozenset({dict, list})


class MemoryAuthStore:
    """The in-memory :class:`AuthStore` the connector runs accounts on.

    ``revision`` counts the calls that changed something, so a snapshot publisher can tell whether
    the state moved since its last snapshot. Key values are copied in and out: a caller that edits
    a value it read (a session record, say) and writes it back is seen as a change, and no edit can
    reach the stored state without going through :meth:`set_keys` and its change report.
    """

    def __init__(self, state: AuthState, listener: ChangeListener | None = None) -> None:
        self._state = state.copy()
        self._listener = listener
        self.revision = 0

    @classmethod
    def adopt(cls, state: AuthState, listener: ChangeListener | None = None) -> MemoryAuthStore:
        """A store over ``state`` without copying its values (a freshly parsed state nobody else edits).

        The store never edits a value in place (values are copied in and out), so ``state`` itself
        stays as it was: the caller may keep reading it, but must not edit its values."""
        store = cls.__new__(cls)
        store._state = state.shallow_copy()
        store._listener = listener
        store.revision = 0
        return store

    def set_listener(self, listener: ChangeListener | None) -> None:
        self._listener = listener

    def get_creds(self) -> Credentials:
        return self._state.creds

    def update_creds(self, changes: Mapping[str, JsonValue]) -> None:
        current = self._state.creds.as_json()
        changed = frozenset(
            key for key, value in changes.items()
            if (key in current) != (value is not None) or (value is not None and current[key] != value)
        )
        if not changed:
            return
        self._state.creds = self._state.creds.updated({key: _detached(changes[key]) for key in changed})
        kind: ChangeKind = "critical" if changed & CRITICAL_CREDS_FIELDS else "routine"
        self._report(StateChange(kind=kind, categories=frozenset({CREDS}), creds_fields=changed))

    def get_keys(self, category: str, ids: Iterable[str]) -> dict[str, JsonValue]:
        entries = self._state.entries(category) or {}
        return {key_id: _detached(entries[key_id]) for key_id in ids if key_id in entries}

    def set_keys(self, updates: KeyUpdates) -> None:
        touched: set[str] = set()
        for category, entries in updates.items():
            stored = self._state.editable(category)
            for key_id, value in entries.items():
                if value is None:
                    if stored.pop(key_id, None) is not None:
                        touched.add(category)
                elif stored.get(key_id) != value:
                    stored[key_id] = _detached(value)
                    touched.add(category)
            if not stored:
                self._state.drop_category(category)
        if touched:
            self._report(StateChange(kind="routine", categories=frozenset(touched)))

    def snapshot(self) -> AuthState:
        """The whole state as it is now, unaffected by later changes; read-only (values are shared
        with the store, which never edits a value in place: see :meth:`AuthState.shallow_copy`)."""
        return self._state.shallow_copy()

    def _report(self, change: StateChange) -> None:
        self.revision += 1
        if self._listener is not None:
            self._listener(change)
