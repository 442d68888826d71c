"""SecretManagerKek through the real google-cloud-secret-manager client against a local gRPC server."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest

from shared.errors import KekUnavailableError, NoUsableVersionError
from shared.vault import MemoryVaultStore, Vault
from shared.vault.kek import SecretManagerKek
from tests.shared.helpers import registered_state
from tests.support.secretmanager import FakeSecretManager

SECRET = "projects/demo-keeper-test/secrets/vault-kek"


@pytest.fixture
def fake() -> Iterator[FakeSecretManager]:
    with FakeSecretManager() as server:
        yield server


class Ticker:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_versions_resolve_and_are_cached(fake: FakeSecretManager) -> None:
    first, second = os.urandom(32), os.urandom(32)
    fake.add_version(SECRET, first)
    fake.add_version(SECRET, base64.b64encode(second))  # base64 text payloads are accepted too
    kek = SecretManagerKek(SECRET, fake.client())
    assert kek.current_version() == "2"
    assert kek.key("2") == second
    assert kek.key("1") == first
    assert kek.key("1") == first
    assert fake.calls == [("AccessSecretVersion", f"{SECRET}/versions/latest"),
                          ("AccessSecretVersion", f"{SECRET}/versions/1")]


def test_current_version_is_reread_after_ttl(fake: FakeSecretManager) -> None:
    fake.add_version(SECRET, os.urandom(32))
    clock = Ticker()
    kek = SecretManagerKek(SECRET, fake.client(), current_ttl_s=60, clock=clock)
    assert kek.current_version() == "1"
    fake.add_version(SECRET, os.urandom(32))
    assert kek.current_version() == "1"
    clock.t = 61
    assert kek.current_version() == "2"


@pytest.mark.parametrize("payload", [b"short", b"not base64 at all, and long enough to not be 32"])
def test_bad_payload_is_refused(fake: FakeSecretManager, payload: bytes) -> None:
    fake.add_version(SECRET, payload)
    with pytest.raises(KekUnavailableError, match="32-byte"):
        SecretManagerKek(SECRET, fake.client()).key("1")


def test_missing_and_disabled_versions(fake: FakeSecretManager) -> None:
    with pytest.raises(KekUnavailableError, match="NotFound"):
        SecretManagerKek(SECRET, fake.client()).current_version()
    fake.add_version(SECRET, os.urandom(32))
    fake.disable(SECRET, "1")
    with pytest.raises(KekUnavailableError, match="FailedPrecondition"):
        SecretManagerKek(SECRET, fake.client()).key("1")


def test_vault_rotation_with_secret_manager(fake: FakeSecretManager) -> None:
    fake.add_version(SECRET, os.urandom(32))
    kek = SecretManagerKek(SECRET, fake.client())
    store = MemoryVaultStore()
    vault = Vault(store, kek)
    vault.save("acct-1", registered_state(), 1)
    assert kek.add_version() == "2"
    assert ("AddSecretVersion", SECRET) in fake.calls
    # until re-wrapped, v1 of the account needs KEK version 1: disabling it makes the state unreadable
    fake.disable(SECRET, "1")
    fresh = Vault(store, SecretManagerKek(SECRET, fake.client()))  # no cached key material
    with pytest.raises(NoUsableVersionError, match="KekUnavailableError"):
        fresh.restore("acct-1")
    # the still-running vault has KEK 1 cached: it re-wraps, after which KEK 1 is not needed
    report = vault.rotate_kek("acct-1")
    assert (report.kek_version, report.rewrapped) == ("2", (1,))
    assert fresh.restore("acct-1").version == 1


@pytest.mark.parametrize("version", ["latest", "1/../../other/versions/1", "0", "", "01", "1 "])
def test_version_names_from_data_are_numbers_only(fake: FakeSecretManager, version: str) -> None:
    """Key ids come from stored headers and sealed blobs: none may name another resource or `latest`."""
    fake.add_version(SECRET, os.urandom(32))
    kek = SecretManagerKek(SECRET, fake.client())
    with pytest.raises(KekUnavailableError, match="not a version number"):
        kek.key(version)
    assert fake.calls == []


def test_sealed_blob_naming_latest_is_refused_before_any_secret_access(fake: FakeSecretManager) -> None:
    from shared.errors import SealingError
    from shared.sealing import seal

    fake.add_version(SECRET, os.urandom(32))
    vault = Vault(MemoryVaultStore(), SecretManagerKek(SECRET, fake.client()))
    blob = seal(b"{}", vault.sealing_public_key().public, key_id="latest")
    calls = list(fake.calls)
    with pytest.raises(SealingError, match="not a version number"):
        vault.open_sealed(blob)
    assert fake.calls == calls
