"""SecretManagerKek through the real google-cloud-secret-manager client against a local gRPC server."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from shared.errors import KekUnavailableError, NoUsableVersionError
from shared.vault import MemoryVaultStore, Vault
from shared.vault.kek import SECRET_MANAGER_CALL_TIMEOUT_S, SecretManagerKek
from testkit.auth_states import registered_state
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
    from shared.vault.kek import sealing_keys

    fake.add_version(SECRET, os.urandom(32))
    keys = sealing_keys(SecretManagerKek(SECRET, fake.client()))
    blob = seal(b"{}", keys.public_key().public, key_id="latest")
    calls = list(fake.calls)
    with pytest.raises(SealingError, match="not a version number"):
        keys.open(blob)
    assert fake.calls == calls


class SlowSecretManager(FakeSecretManager):
    """Answers AccessSecretVersion only once ``release`` is set (or with UNAVAILABLE when ``unavailable``)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.unavailable = False

    def _access(self, request: Any, context: grpc.ServicerContext) -> Any:
        if self.unavailable:
            self.calls.append(("AccessSecretVersion", str(request.name)))
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        self.release.wait(10)
        return super()._access(request, context)


@pytest.fixture
def slow() -> Iterator[SlowSecretManager]:
    server = SlowSecretManager()
    with server:
        try:
            yield server
        finally:
            server.release.set()  # let the hanging handlers finish before the server stops


def timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        call()
    except KekUnavailableError as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def test_default_bound_stays_under_the_connector_sync_timeout() -> None:
    assert SECRET_MANAGER_CALL_TIMEOUT_S <= 5.0 < 8.0


@pytest.mark.parametrize("call", ["current_version", "key"])
def test_hanging_secret_manager_is_unavailable_within_the_bound(slow: SlowSecretManager, call: str) -> None:
    stored = os.urandom(32)
    slow.add_version(SECRET, stored)
    kek = SecretManagerKek(SECRET, slow.client(), call_timeout_s=0.5)
    error, elapsed = timed(kek.current_version if call == "current_version" else lambda: kek.key("1"))
    assert isinstance(error, KekUnavailableError) and 0.4 <= elapsed < 1.5
    slow.release.set()
    assert kek.key("1") == stored  # the same provider works once Secret Manager answers again


def test_unavailable_secret_manager_is_retried_only_within_the_bound(slow: SlowSecretManager) -> None:
    slow.add_version(SECRET, os.urandom(32))
    slow.unavailable = True
    kek = SecretManagerKek(SECRET, slow.client(), call_timeout_s=1.0)
    error, elapsed = timed(kek.current_version)
    assert isinstance(error, KekUnavailableError) and elapsed < 2.0
    assert len(slow.calls) >= 2  # UNAVAILABLE is retried (the client's default would go on for 60 s)


def test_a_caller_queued_behind_a_hanging_call_is_bounded_too(slow: SlowSecretManager) -> None:
    slow.add_version(SECRET, os.urandom(32))
    kek = SecretManagerKek(SECRET, slow.client(), call_timeout_s=0.6)
    results: list[tuple[BaseException | None, float]] = []
    first = threading.Thread(target=lambda: results.append(timed(kek.current_version)))
    first.start()
    time.sleep(0.2)  # the first call holds the lock, waiting on the server
    second = timed(lambda: kek.key("1"))
    first.join(5)
    assert isinstance(second[0], KekUnavailableError) and second[1] < 1.2
    assert isinstance(results[0][0], KekUnavailableError)


def test_a_version_that_does_not_exist_is_unknown_not_unavailable(fake: FakeSecretManager) -> None:
    """Issue 16 item 6: asking again cannot bring back a version that does not exist (or a name that is
    not a version): KekVersionUnknownError, which callers drop instead of retrying."""
    from shared.errors import KekVersionUnknownError

    fake.add_version(SECRET, os.urandom(32))
    kek = SecretManagerKek(SECRET, fake.client())
    with pytest.raises(KekVersionUnknownError, match="NotFound"):
        kek.key("999")
    with pytest.raises(KekVersionUnknownError, match="not a version number"):
        kek.key("abc")
    assert isinstance(KekVersionUnknownError("x"), KekUnavailableError)  # old handlers still catch it
