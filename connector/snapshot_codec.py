"""Sealing outgoing snapshots and opening restored ones (``shared.snapshot`` + ``shared.sealing``).

Outgoing: the account's whole state as a :class:`~shared.snapshot.Snapshot` under the lease
generation, sealed to the vault's public key, so Pub/Sub never carries it in clear.
Incoming: the restore endpoint seals a snapshot to this connector's ephemeral key; only this
process can open it, and it must name the account and generation it was claimed for.

``producedAt`` orders the snapshots of one generation: the vault refuses one produced before the
stored one (a late redelivery must not roll keys back). So it never goes backwards for an account
within a generation, even when the wall clock steps back (NTP): each stamp is at least 1 µs after
the previous one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from connector.errors import RestoreError
from shared import errors as shared_errors
from shared.authstate import AuthState
from shared.connector_sync import RESTORE_AAD
from shared.sealing import open_sealed, public_key_bytes, seal
from shared.snapshot import Snapshot, snapshot_aad

#: The smallest step between two ``producedAt`` stamps of one account and generation.
PRODUCED_AT_STEP = timedelta(microseconds=1)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SnapshotCodec:
    """Seals outgoing snapshots and opens restored ones for one connector process."""

    connector_id: str
    private_key: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate, repr=False)
    vault_public_key: bytes | None = None
    vault_key_id: str = ""
    wall_clock: Callable[[], datetime] = _utc_now
    #: account id -> (generation, last producedAt stamped under it)
    _last_produced: dict[str, tuple[int, datetime]] = field(default_factory=dict, init=False, repr=False)

    @property
    def public_key(self) -> bytes:
        return public_key_bytes(self.private_key)

    def seal(self, account_id: str, generation: int, state: AuthState, state_bytes: bytes | None = None) -> bytes:
        """Seal ``state`` for the vault (``state_bytes``: its canonical bytes, if already made)."""
        if self.vault_public_key is None:
            raise RestoreError("the vault public key is not known yet (no connectorSync answer)")
        snapshot = Snapshot(account_id=account_id, generation=generation,
                            produced_at=self._produced_at(account_id, generation),
                            connector_id=self.connector_id, state=state)
        # Bound to the account: a sealed snapshot replayed under another account's id does not open.
        return seal(snapshot.to_bytes(state_bytes), self.vault_public_key, self.vault_key_id or "vault",
                    snapshot_aad(account_id))

    def _produced_at(self, account_id: str, generation: int) -> datetime:
        """``max(now, last + 1 µs)`` within one account and generation (see the module docstring)."""
        stamp = self.wall_clock()
        last = self._last_produced.get(account_id)
        if last is not None and last[0] == generation and stamp <= last[1]:
            stamp = last[1] + PRODUCED_AT_STEP
        self._last_produced[account_id] = (generation, stamp)
        return stamp

    def open_restored(self, account_id: str, generation: int, sealed: bytes) -> AuthState:
        try:
            snapshot = Snapshot.from_bytes(open_sealed(sealed, self.private_key, RESTORE_AAD))
        except shared_errors.KeeperError as exc:
            raise RestoreError(f"restored state does not open: {type(exc).__name__}") from exc
        if snapshot.account_id != account_id or snapshot.generation != generation:
            raise RestoreError("restored state names another account or generation")
        return snapshot.state
