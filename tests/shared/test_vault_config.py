"""Vault configuration from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.vault.config import VaultConfig, VaultConfigError


def test_defaults_run_the_local_stack() -> None:
    config = VaultConfig.from_env({})
    assert (config.project, config.kek_provider, config.versions_kept) == ("demo-keeper", "local", 3)
    assert config.kek_file == Path(".keeper") / "kek.json"
    assert config.kek_secret == "projects/demo-keeper/secrets/keeper-vault-kek"


def test_secret_manager_in_a_real_project() -> None:
    config = VaultConfig.from_env({"KEEPER_PROJECT": "acme-prod", "KEEPER_KEK_PROVIDER": "secretmanager",
                                   "KEEPER_KEK_SECRET": "kek", "KEEPER_VERSIONS_KEPT": "5"})
    assert (config.kek_provider, config.kek_secret, config.versions_kept) == (
        "secretmanager", "projects/acme-prod/secrets/kek", 5)


def test_the_default_key_file_is_refused_against_a_real_project() -> None:
    with pytest.raises(VaultConfigError, match="KEEPER_KEK_PROVIDER"):
        VaultConfig.from_env({"KEEPER_PROJECT": "acme-prod"})
    # on purpose, or against the emulator, it is allowed
    assert VaultConfig.from_env({"KEEPER_PROJECT": "acme-prod", "KEEPER_KEK_PROVIDER": "local"}).kek_provider == "local"
    emulated = VaultConfig.from_env({"KEEPER_PROJECT": "acme-prod", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8080"})
    assert emulated.kek_provider == "local"


@pytest.mark.parametrize(
    "env",
    [{"KEEPER_KEK_PROVIDER": "vaultwarden"}, {"KEEPER_VERSIONS_KEPT": "three"}, {"KEEPER_VERSIONS_KEPT": "0"},
     {"KEEPER_VERSIONS_KEPT": "101"}],
)
def test_bad_values(env: dict[str, str]) -> None:
    with pytest.raises(VaultConfigError):
        VaultConfig.from_env(env)
