"""The snapshot format: one account's whole auth state at one moment, as the connector produces it.

Canonical serialisation (:func:`canonical_state_bytes`) is what the vault hashes, compresses and stores:
BufferJSON with keys sorted and no spaces, UTF-8, so the same state always gives the same bytes and
an unchanged state is recognised by its hash.

A :class:`Snapshot` adds where and when the state was produced (account, lease generation, connector,
time). On the ``session-snapshots`` topic it travels sealed to the vault's key (key id = KEK version)
with :func:`snapshot_aad` as associated data (sealed by ``connector.snapshot_codec.SnapshotCodec``, opened
with :func:`open_snapshot`). ``connectorSync``'s ``sealedState`` going the other way has its own
convention (``shared.connector_sync``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from shared import sealing
from shared.authstate import MAX_STATE_BYTES, AuthState
from shared.bufferjson import JsonValue, dumps
from shared.deferred import PRE_KEY, DeferredCategory, revive_deferring_pre_keys
from shared.errors import BaileysFormatError, SealingError, StateTooLargeError, StateValidationError

SNAPSHOT_SCHEMA: Final = "keeper.snapshot.v1"
SNAPSHOT_AAD_PREFIX: Final = b"keeper.snapshot.v1\x00"


def snapshot_aad(account_id: str) -> bytes:
    """Associated data of a sealed snapshot: a blob published for one account opens for no other."""
    return SNAPSHOT_AAD_PREFIX + account_id.encode("utf-8")


def canonical_bytes(value: JsonValue) -> bytes:
    """Canonical JSON; a value JSON cannot carry (NaN, a set, ...) is a :class:`StateValidationError`."""
    try:
        return dumps(value, canonical=True).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise StateValidationError(f"state holds a value JSON cannot carry: {exc}") from exc


def canonical_state_bytes(state: AuthState) -> bytes:
    """The canonical serialisation of a state (raises if it is over the size limit).

    Written piece by piece as ``json.dumps(state.to_json(), sort_keys=True)`` would write it, so a
    category still deferred goes out as the canonical text it came in as, without being parsed."""
    parts = [(category, canonical_bytes(entries)) for category, entries in state.keys_parsed().items() if entries]
    parts.extend((category, d.text) for category, d in state.deferred().items())
    parts.sort()
    data = b"".join([b'{"creds":', canonical_bytes(dict(state.creds.as_json())), b',"keys":{',
                     b",".join(canonical_bytes(category) + b":" + text for category, text in parts), b"}}"])
    if len(data) > MAX_STATE_BYTES:
        raise StateTooLargeError(len(data), MAX_STATE_BYTES)
    return data


def parse_state(data: bytes) -> AuthState:
    """Inverse of :func:`canonical_state_bytes` (schema errors are :class:`StateValidationError`)."""
    if len(data) > MAX_STATE_BYTES:
        raise StateTooLargeError(len(data), MAX_STATE_BYTES)
    try:
        value, pre_keys = revive_deferring_pre_keys(data)
        return AuthState.from_json(value, _deferred(pre_keys))
    except BaileysFormatError as exc:
        raise StateValidationError(f"serialised state is malformed: {exc}") from exc


def _deferred(pre_keys: DeferredCategory | None) -> dict[str, DeferredCategory] | None:
    return None if pre_keys is None else {PRE_KEY: pre_keys}


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def snapshot_bytes(account_id: str, generation: int, produced_at: datetime, connector_id: str,
                   state_bytes: bytes) -> bytes:
    """The canonical bytes of a snapshot around an already serialised state.

    The state is not parsed and written again (a 140 KB state costs milliseconds each way): its key,
    ``state``, sorts after every other key, so the canonical text is the canonical text of the other
    fields with ``"state":<state_bytes>`` spliced in before the closing brace."""
    head = canonical_bytes({
        "schema": SNAPSHOT_SCHEMA,
        "accountId": account_id,
        "generation": generation,
        "producedAt": _rfc3339(produced_at),
        "connectorId": connector_id,
    })
    return head[:-1] + b',"state":' + state_bytes + b"}"


@dataclass(frozen=True)
class Snapshot:
    """An account's auth state as produced under one lease generation by one connector."""

    account_id: str
    generation: int
    produced_at: datetime
    connector_id: str
    state: AuthState

    def to_bytes(self, state_bytes: bytes | None = None) -> bytes:
        """Canonical bytes; ``state_bytes``: the state's :func:`canonical_state_bytes` when the caller
        already has them (a restore read them from the vault, a flush wrote them to the cache)."""
        if state_bytes is None:
            state_bytes = canonical_state_bytes(self.state)
        return snapshot_bytes(self.account_id, self.generation, self.produced_at, self.connector_id, state_bytes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Snapshot:
        if len(data) > MAX_STATE_BYTES + 4096:
            raise StateTooLargeError(len(data), MAX_STATE_BYTES)
        try:
            obj, pre_keys = revive_deferring_pre_keys(data, ("state",))
        except BaileysFormatError as exc:
            raise StateValidationError(f"snapshot is malformed: {exc}") from exc
        if not isinstance(obj, dict) or obj.get("schema") != SNAPSHOT_SCHEMA:
            raise StateValidationError(f"snapshot is not {SNAPSHOT_SCHEMA}")
        account_id, generation = obj.get("accountId"), obj.get("generation")
        produced_at, connector_id = obj.get("producedAt"), obj.get("connectorId")
        if not isinstance(account_id, str) or not account_id:
            raise StateValidationError("snapshot lacks accountId")
        if type(generation) is not int or generation < 0:
            raise StateValidationError("snapshot generation is not a non-negative integer")
        if not isinstance(connector_id, str) or not isinstance(produced_at, str):
            raise StateValidationError("snapshot lacks connectorId or producedAt")
        try:
            moment = datetime.fromisoformat(produced_at)
        except ValueError as exc:
            raise StateValidationError("snapshot producedAt is not RFC 3339") from exc
        if moment.tzinfo is None:  # a naive time cannot be ordered against the stored (UTC) ones
            raise StateValidationError("snapshot producedAt has no UTC offset")
        return cls(account_id=account_id, generation=generation, produced_at=moment,
                   connector_id=connector_id, state=AuthState.from_json(obj.get("state"), _deferred(pre_keys)))


def open_snapshot(blob: bytes, keys: sealing.SealingKeys, account_id: str) -> Snapshot:
    """Open a snapshot sealed for ``account_id``; a blob for another account does not open."""
    snapshot = Snapshot.from_bytes(keys.open(blob, snapshot_aad(account_id)))
    if snapshot.account_id != account_id:
        raise SealingError(f"snapshot for {snapshot.account_id} arrived as {account_id}")
    return snapshot
