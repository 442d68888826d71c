"""Errors raised by `shared/`: one tree, imported by the connector and the functions.

::

    KeeperError                      base of everything keeper raises on purpose
    ├── StateValidationError         auth state fails the schema or lacks required credentials
    │   └── StateTooLargeError       serialised state over MAX_STATE_BYTES
    ├── BaileysFormatError           a Baileys auth folder or BufferJSON value is malformed
    ├── SealingError                 a sealed transit blob cannot be opened (altered, wrong key, bad header)
    ├── DecompressionError           compressed bytes are malformed or expand past their limit
    ├── InvalidEventError            a Pub/Sub event or its attributes break ``shared.events`` (names the field)
    ├── SyncContractError            a connectorSync request or reply breaks the contract (``field`` names where)
    │   └── SyncLimitError           a request lists more accounts than the contract allows
    └── VaultError                   base of the session vault's errors
        ├── VaultConfigError         the vault's environment configuration is missing or malformed
        ├── IntegrityError           a stored blob is truncated, altered, moved to another account or
        │                            version, or wrapped under a different KEK than the one presented
        ├── StaleGenerationError     a save under a generation lower than the head's (fencing)
        │   └── OutOfOrderSnapshotError  same generation, but produced before the stored one
        ├── KekUnavailableError      the key-encryption key (or one of its versions) cannot be obtained
        │   └── KekVersionUnknownError   the named version does not exist or is not a version name:
        │                                permanent, asking again cannot help
        ├── VaultConflictError       a concurrent writer changed the head while a save was in progress
        ├── NoUsableVersionError     restore found versions, but none decrypts and validates
        └── NotFoundError            no stored state for the account

Every message names the account and version concerned when there is one, and never contains key
material or plaintext.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class KeeperError(Exception):
    """Base of every error keeper raises on purpose."""


class StateValidationError(KeeperError):
    """The auth state does not match the schema or lacks a required credential."""


class StateTooLargeError(StateValidationError):
    """The serialised auth state is larger than the documented limit."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"auth state is {size} bytes, over the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class BaileysFormatError(KeeperError):
    """A Baileys auth folder, file name or BufferJSON value is malformed."""


class SealingError(KeeperError):
    """A sealed snapshot cannot be opened: altered, truncated, wrong key or unknown format."""


class DecompressionError(KeeperError, ValueError):
    """Compressed data is malformed, or expands past the limit it must fit (``shared.compression``)."""


class InvalidEventError(KeeperError, ValueError):
    """Raised by ``from_json`` / ``parse_event`` / ``SnapshotAttributes.from_attributes`` (``shared.events``)
    when the input is not a well-formed event: not JSON, wrong type tag, a missing or malformed field.
    The message names the field; it never echoes payload contents."""


class SyncContractError(KeeperError):
    """A connectorSync request or reply breaks the contract (``shared.connector_sync``).

    ``field`` names the offending field; the message never echoes its value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class SyncLimitError(SyncContractError):
    """A connectorSync request lists more accounts than :data:`shared.connector_sync.MAX_SYNC_ACCOUNTS`."""


class VaultError(KeeperError):
    """Base of the session vault's errors."""


class VaultConfigError(VaultError, ValueError):
    """The vault's environment configuration (KEK source, versions kept) is missing or malformed."""


class IntegrityError(VaultError):
    """A stored blob does not authenticate: truncated, altered, wrong KEK, or moved elsewhere."""


class StaleGenerationError(VaultError):
    """A save carries a lease generation older than the one already stored (a stale writer)."""

    def __init__(self, account_id: str, generation: int, head_generation: int) -> None:
        super().__init__(
            f"account {account_id}: refusing save under generation {generation}, "
            f"stored state is at generation {head_generation}"
        )
        self.account_id = account_id
        self.generation = generation
        self.head_generation = head_generation


class OutOfOrderSnapshotError(StaleGenerationError):
    """A snapshot of the head's generation produced before the one already stored (a late delivery).

    Pub/Sub push delivery keeps no publish order and retries arrive late; saving such a snapshot would
    roll the Signal keys back to an older state ("Bad MAC" later). It is refused like a stale writer.
    """

    def __init__(self, account_id: str, generation: int, produced_at: str, head_produced_at: str) -> None:
        VaultError.__init__(
            self,
            f"account {account_id}: refusing snapshot of generation {generation} produced at {produced_at}, "
            f"the stored one was produced later ({head_produced_at})",
        )
        self.account_id = account_id
        self.generation = generation
        self.head_generation = generation


class KekUnavailableError(VaultError):
    """The key-encryption key, or the requested version of it, cannot be obtained."""


class KekVersionUnknownError(KekUnavailableError):
    """The requested KEK version does not exist (or its name is not a version number): unlike a provider
    that does not answer, this does not heal, so a message naming it is dropped rather than retried."""


class VaultConflictError(VaultError):
    """Another writer changed the account's head between read and commit."""


class SkippedVersion(NamedTuple):
    """A stored version that restore or verify passed over, with the error that made it unusable."""

    version: int
    error: VaultError | StateValidationError

    @property
    def reason(self) -> str:
        """``"ErrorClass: message"``: how the vault's health record and the logs show it."""
        return f"{type(self.error).__name__}: {self.error}"

    def __eq__(self, other: object) -> bool:  # exceptions compare by identity; these by what they say
        return isinstance(other, SkippedVersion) and (self.version, self.reason) == (other.version, other.reason)

    def __hash__(self) -> int:
        return hash((self.version, self.reason))


class NoUsableVersionError(VaultError):
    """Every stored version of an account failed to decrypt or validate (``skipped`` says why)."""

    def __init__(self, account_id: str, skipped: Sequence[SkippedVersion]) -> None:
        detail = "; ".join(f"v{s.version}: {s.reason}" for s in skipped)
        super().__init__(f"account {account_id}: no stored version restores ({detail})")
        self.account_id = account_id
        self.skipped = tuple(skipped)


class NotFoundError(VaultError):
    """No stored state exists for the account (or the requested version)."""
