"""The session vault: encrypted, versioned, restorable storage of whole auth states.

- :mod:`shared.vault.vault`: the :class:`Vault` facade the functions and the CLI call.
- :mod:`shared.vault.crypto`: envelope encryption of one version (zstd, AES-256-GCM, wrapped data key).
- :mod:`shared.vault.store`: the :class:`VaultStore` interface and an in-memory store.
- :mod:`shared.vault.firestore_store`: the Firestore store (layout in docs/ARCHITECTURE.md).
- :mod:`shared.vault.kek`: key-encryption-key providers (Secret Manager, local file), and the transit
  sealing keys derived from them (``sealing_keys``; sealing itself is :mod:`shared.sealing`).
- :mod:`shared.vault.config`: building a vault from environment variables.
"""

from shared.vault.store import MemoryVaultStore, SaveGuard, VaultStore
from shared.vault.vault import (
    AccountInfo,
    MigrationResult,
    RestoreResult,
    RotateReport,
    SaveResult,
    SkippedVersion,
    Vault,
    VerifyReport,
)

__all__ = [
    "AccountInfo", "MemoryVaultStore", "MigrationResult", "RestoreResult", "RotateReport", "SaveGuard",
    "SaveResult", "SkippedVersion", "Vault", "VaultStore", "VerifyReport",
]
