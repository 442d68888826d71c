"""Building a :class:`Vault` from environment variables (the functions and the CLI use this).

=========================  ==========================================================================
``KEEPER_PROJECT``         Google Cloud project (falls back to ``GOOGLE_CLOUD_PROJECT``, then
                           ``demo-keeper``)
``FIRESTORE_EMULATOR_HOST``  host:port of the Firestore emulator (read by the client library)
``KEEPER_KEK_PROVIDER``    ``local`` (default with the emulator or a ``demo-`` project; must be
                           set explicitly against a real project) or ``secretmanager``
``KEEPER_KEK_FILE``        local provider: KEK file (default ``$KEEPER_HOME/kek.json``,
                           ``KEEPER_HOME`` defaulting to ``.keeper``); created with mode 0600
``KEEPER_KEK_SECRET``      secretmanager provider: ``projects/P/secrets/S`` or just ``S``
                           (default ``keeper-vault-kek``)
``KEEPER_SECRETMANAGER_HOST``  host:port of a plaintext gRPC Secret Manager endpoint (tests, local
                           stack); unset in production
``KEEPER_VERSIONS_KEPT``   versions kept per account (default 3)
=========================  ==========================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from shared.errors import KekUnavailableError, VaultConfigError
from shared.vault.kek import KekProvider, LocalFileKek, SecretManagerKek
from shared.vault.vault import DEFAULT_VERSIONS_KEPT, Vault

__all__ = ["DEFAULT_PROJECT", "DEFAULT_SECRET", "EMULATOR_PROJECT_PREFIX", "VaultConfig", "VaultConfigError",
           "secretmanager_client"]

DEFAULT_PROJECT: Final = "demo-keeper"
DEFAULT_SECRET: Final = "keeper-vault-kek"
#: Firebase "demo-" projects exist only in emulators.
EMULATOR_PROJECT_PREFIX: Final = "demo-"


@dataclass(frozen=True)
class VaultConfig:
    project: str
    kek_provider: str
    kek_file: Path
    kek_secret: str
    secretmanager_host: str | None
    versions_kept: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VaultConfig:
        env = os.environ if env is None else env
        project = env.get("KEEPER_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or DEFAULT_PROJECT
        provider = (env.get("KEEPER_KEK_PROVIDER") or "local").strip().lower()
        if provider not in {"local", "secretmanager"}:
            raise VaultConfigError(f"KEEPER_KEK_PROVIDER={provider!r}: use 'local' or 'secretmanager'")
        if not env.get("KEEPER_KEK_PROVIDER") and not env.get("FIRESTORE_EMULATOR_HOST") \
                and not project.startswith(EMULATOR_PROJECT_PREFIX):
            # The default key file against real Firestore would wrap new versions under a key the
            # functions do not have (a restore then falls back past them): say so instead.
            raise VaultConfigError(
                f"project {project} is a real one (no FIRESTORE_EMULATOR_HOST): set KEEPER_KEK_PROVIDER "
                "(secretmanager, or local to use a key file with it on purpose)"
            )
        home = Path(env.get("KEEPER_HOME") or ".keeper")
        secret = env.get("KEEPER_KEK_SECRET") or DEFAULT_SECRET
        if not secret.startswith("projects/"):
            secret = f"projects/{project}/secrets/{secret}"
        raw_kept = env.get("KEEPER_VERSIONS_KEPT") or str(DEFAULT_VERSIONS_KEPT)
        try:
            kept = int(raw_kept)
        except ValueError as exc:
            raise VaultConfigError(f"KEEPER_VERSIONS_KEPT={raw_kept!r} is not a number") from exc
        if not 1 <= kept <= 100:
            raise VaultConfigError(f"KEEPER_VERSIONS_KEPT={kept} is outside 1..100")
        return cls(project=project, kek_provider=provider,
                   kek_file=Path(env.get("KEEPER_KEK_FILE") or home / "kek.json"), kek_secret=secret,
                   secretmanager_host=env.get("KEEPER_SECRETMANAGER_HOST") or None, versions_kept=kept)

    def kek(self) -> KekProvider:
        if self.kek_provider == "local":
            return LocalFileKek(self.kek_file)
        return SecretManagerKek(self.kek_secret, secretmanager_client(self.secretmanager_host))

    def firestore_client(self) -> Any:
        from google.cloud import firestore

        return firestore.Client(project=self.project)

    def vault(self, firestore_client: Any = None) -> Vault:
        from shared.vault.firestore_store import FirestoreVaultStore

        client = firestore_client if firestore_client is not None else self.firestore_client()
        return Vault(FirestoreVaultStore(client), self.kek(), versions_kept=self.versions_kept)


def secretmanager_client(host: str | None = None) -> Any:
    """A Secret Manager client; with ``host``, over a plaintext gRPC channel to that address."""
    try:
        from google.cloud import secretmanager
    except ImportError as exc:  # pragma: no cover - a dependency of keeper
        raise KekUnavailableError("google-cloud-secret-manager is not installed") from exc
    if host is None:
        return secretmanager.SecretManagerServiceClient()
    import grpc
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    channel = grpc.insecure_channel(host)
    transport = SecretManagerServiceGrpcTransport(channel=channel)
    return secretmanager.SecretManagerServiceClient(transport=transport)
