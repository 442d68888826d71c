"""What the functions need from the session vault and the transit sealing, as typed interfaces.

The functions' logic depends on these two small interfaces only; :mod:`functions.wiring` adapts
``shared.vault`` / ``shared.sealing`` / ``shared.snapshot`` to them, and the unit tests use fakes.
States pass through as opaque ``AuthState`` objects: the functions never look inside one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from shared.authstate import AuthState, validate_state
from shared.errors import IntegrityError, KekUnavailableError, SealingError, SkippedVersion
from shared.snapshot import parse_state


def failure_kind(skipped: Sequence[SkippedVersion]) -> str:
    """One word for why versions failed: ``cannot_decrypt`` when any did not open (the stored bytes do
    not authenticate), else ``invalid`` (they opened but hold no valid auth state)."""
    if any(isinstance(s.error, IntegrityError | SealingError) for s in skipped):
        return "cannot_decrypt"
    return "invalid"


def kek_was_unavailable(skipped: Sequence[SkippedVersion]) -> bool:
    """True when a version was not judged at all because its KEK could not be fetched."""
    return any(isinstance(s.error, KekUnavailableError) for s in skipped)


@dataclass(frozen=True, slots=True)
class SavedVersion:
    version: int
    noop: bool  # the same state was already the latest version (a redelivered snapshot)
    versions_kept: int


@dataclass(frozen=True, slots=True)
class RestoredState:
    #: The state's canonical bytes as stored (sealed on to a connector as they are).
    state_bytes: bytes = field(repr=False)
    version: int
    #: Newer versions that failed to decrypt or validate, and why.
    skipped: tuple[SkippedVersion, ...] = ()

    @property
    def state(self) -> AuthState:
        """Parsed and validated on each use (a claim hands the bytes on and never needs it)."""
        state = parse_state(self.state_bytes)
        validate_state(state, len(self.state_bytes))
        return state


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """The health check's view of one stored session."""

    latest_version: int | None
    usable_version: int | None  # newest version that decrypts and validates
    saved_at: datetime | None  # when the latest version was saved
    versions: int
    problem: str | None  # "cannot_decrypt" / "invalid" when no version is usable
    skipped: tuple[SkippedVersion, ...] = ()


class SessionVault(Protocol):
    """Versioned, encrypted storage of whole auth states (``shared.vault``)."""

    def save(self, account_id: str, state: AuthState, generation: int,
             produced_at: datetime | None = None) -> SavedVersion:
        """Store a new version. Raises ``shared.errors.StaleGenerationError`` for an older generation, and
        its subclass ``OutOfOrderSnapshotError`` for a state of the same generation produced before the
        stored one (checked atomically with the write)."""
        ...

    def restore(self, account_id: str) -> RestoredState:
        """Newest version that decrypts and validates. Raises ``shared.errors.NotFoundError`` or
        ``shared.errors.NoUsableVersionError``, and ``shared.errors.KekUnavailableError`` when a
        version newer than the one that would be returned could not be judged for want of its KEK
        (an older state must not stand in for a newer one that is merely out of reach)."""
        ...

    def restore_many(self, account_ids: Sequence[str]) -> dict[str, RestoredState | Exception]:
        """:meth:`restore` for many accounts (batched reads): each one's state or the error it raised."""
        ...

    def check(self, account_id: str) -> SessionCheck:
        """Decrypt and validate the kept versions; ``KekUnavailableError`` when a KEK is out of reach."""
        ...

    def delete(self, account_id: str) -> None:
        """Remove every version and chunk; nothing stored is not an error."""
        ...

    def list_accounts(self) -> list[str]: ...

    def stored_among(self, account_ids: Sequence[str]) -> set[str]:
        """Those of ``account_ids`` with a stored session (their heads only are read)."""
        ...

    def record_health(self, account_id: str, health: str, at: datetime) -> None:
        """Note the health-check result on the session's head document."""
        ...

    def list_orphaned_accounts(self) -> list[str]:
        """Accounts whose versions or chunks outlived their head (an interrupted delete)."""
        ...

    def prune(self, account_id: str) -> int:
        """Delete versions beyond the number kept and orphaned chunks; returns documents removed."""
        ...


@dataclass(frozen=True, slots=True)
class OpenedSnapshot:
    """A snapshot in clear, opened from Pub/Sub."""

    account_id: str
    generation: int
    connector_id: str
    produced_at: datetime
    state: AuthState = field(repr=False)


class TransitSealer(Protocol):
    """Sealing between connector and functions (``shared.sealing`` + ``shared.snapshot``)."""

    def vault_public_key(self) -> tuple[bytes, str]:
        """(raw X25519 public key, key id) the connector seals snapshots to."""
        ...

    def open_snapshot(self, sealed: bytes, account_id: str) -> OpenedSnapshot:
        """Open a snapshot sealed for ``account_id`` (the account is bound into the sealing).

        Raises ``shared.errors.SealingError`` / ``StateValidationError``."""
        ...

    def seal_restored_bytes(self, public_key: bytes, *, account_id: str, generation: int, connector_id: str,
                            produced_at: datetime, state_bytes: bytes) -> bytes:
        """Seal a restored state, given by its canonical bytes (not parsed again), as a snapshot under the
        new generation to the connector's key (``shared.connector_sync``: ``sealedState``)."""
        ...
