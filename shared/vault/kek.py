"""Key-encryption keys (KEKs): where they live and how versions are named.

A KEK is 32 random bytes. Each KEK version also yields the vault's X25519 sealing key pair
(:func:`sealing_private_key`, HKDF with its own info string), so whoever holds the KEK can open
snapshots sealed to the vault, and the sealing key rotates with the KEK.

Providers:

* :class:`SecretManagerKek`: a Secret Manager secret; its versions are the KEK versions. Payload:
  32 raw bytes (or their base64 text). Versions are immutable, so each is fetched once and cached;
  which version is newest is re-read every ``current_ttl_s`` seconds. Every call is bounded (``call_timeout_s``,
  5 s by default, waiting for a concurrent call included, retries of UNAVAILABLE included), so a slow
  Secret Manager surfaces as :class:`KekUnavailableError` before a caller's own request timeout (the
  connector gives ``connectorSync`` 8 s).
* :class:`LocalFileKek`: a JSON file for development, created on first use with mode 0600 (default
  ``$KEEPER_HOME/kek.json``, i.e. ``.keeper/kek.json``). Refuses a file others can read.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.errors import KekUnavailableError, KekVersionUnknownError
from shared.sealing import SealingKeys

log = logging.getLogger(__name__)

KEK_LEN: Final = 32
SEALING_INFO: Final = b"keeper/vault/sealing-x25519/v1"
LOCAL_FILE_MODE: Final = 0o600
CURRENT_VERSION_TTL_S: Final = 60.0
#: Bound on one Secret Manager read, from the call to its answer (below the connector's 8 s sync timeout).
SECRET_MANAGER_CALL_TIMEOUT_S: Final = 5.0
#: KEK version names are positive integers (Secret Manager version ids, local file counters).
_VERSION_RE: Final = re.compile(r"[1-9][0-9]{0,9}")


def check_version(version: str) -> str:
    """Refuse a version name that is not a version number.

    Version names come from stored headers and sealed blobs, i.e. from data: one must not be able
    to name ``latest`` or another resource path of the secret.
    """
    if not _VERSION_RE.fullmatch(version):
        raise KekVersionUnknownError(f"KEK version {version[:40]!r} is not a version number")
    return version


class KekProvider(Protocol):
    """Source of KEK versions."""

    @property
    def description(self) -> str:
        """Where the KEK lives (for `inspect`; never the key)."""
        ...

    def current_version(self) -> str:
        """The newest usable version: new versions are wrapped under it."""
        ...

    def key(self, version: str) -> bytes:
        """The 32-byte KEK of ``version``; :class:`KekUnavailableError` if it cannot be had."""
        ...

    def add_version(self) -> str:
        """Create a new, random KEK version and return its name (for rotation)."""
        ...


def sealing_private_key(kek: bytes) -> X25519PrivateKey:
    """The vault's X25519 sealing key for one KEK version."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEALING_INFO).derive(kek)
    return X25519PrivateKey.from_private_bytes(seed)


def sealing_keys(kek: KekProvider) -> SealingKeys:
    """The vault's transit key pairs: one per KEK version, the current version's handed out."""
    return SealingKeys(kek.current_version, lambda version: sealing_private_key(kek.key(version)))


def _kek_from_payload(payload: bytes, where: str) -> bytes:
    if len(payload) == KEK_LEN:
        return payload
    try:
        decoded = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != KEK_LEN:
        raise KekUnavailableError(f"{where} is not a 32-byte key (raw or base64)")
    return decoded


class LocalFileKek:
    """KEK versions in a local JSON file (development only)."""

    def __init__(self, path: Path, rand: Callable[[int], bytes] = secrets.token_bytes) -> None:
        self._path = path
        self._rand = rand
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"local file {self._path}"

    def _load(self) -> dict[str, Any]:
        if not self._path.exists():
            self._create()
        mode = self._path.stat().st_mode & 0o777
        if mode & 0o077:
            raise KekUnavailableError(
                f"{self._path} is readable by others (mode {mode:o}); run chmod 600 on it"
            )
        try:
            data: dict[str, Any] = json.loads(self._path.read_text("utf-8"))
            versions = data["versions"]
            if not isinstance(versions, dict) or not versions or str(data["current"]) not in versions:
                raise ValueError("no current version")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KekUnavailableError(f"{self._path} is not a keeper KEK file: {exc}") from exc
        return data

    def _write(self, data: dict[str, Any]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._path.with_name(self._path.name + f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, LOCAL_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.chmod(tmp, LOCAL_FILE_MODE)
        os.replace(tmp, self._path)

    def _create(self) -> None:
        log.info("creating local KEK file %s", self._path)
        self._write({"format": 1, "current": "1",
                     "versions": {"1": base64.b64encode(self._rand(KEK_LEN)).decode("ascii")}})

    def current_version(self) -> str:
        with self._lock:
            return str(self._load()["current"])

    def key(self, version: str) -> bytes:
        check_version(version)
        with self._lock:
            encoded = self._load()["versions"].get(version)
        if encoded is None:
            raise KekVersionUnknownError(f"KEK version {version} is not in {self._path}")
        return _kek_from_payload(str(encoded).encode("ascii"), f"KEK version {version} in {self._path}")

    def add_version(self) -> str:
        with self._lock:
            data = self._load()
            version = str(max(int(v) for v in data["versions"]) + 1)
            data["versions"][version] = base64.b64encode(self._rand(KEK_LEN)).decode("ascii")
            data["current"] = version
            self._write(data)
        return version


class SecretManagerKek:
    """KEK versions as the versions of one Secret Manager secret.

    ``secret`` is ``projects/P/secrets/S``. ``client`` is a ``SecretManagerServiceClient`` (made with
    default credentials when omitted).
    """

    def __init__(
        self, secret: str, client: Any = None, *,
        current_ttl_s: float = CURRENT_VERSION_TTL_S, clock: Callable[[], float] = time.monotonic,
        rand: Callable[[int], bytes] = secrets.token_bytes,
        call_timeout_s: float = SECRET_MANAGER_CALL_TIMEOUT_S,
    ) -> None:
        if not secret.startswith("projects/") or "/secrets/" not in secret:
            raise KekUnavailableError(f"secret name {secret!r} is not projects/P/secrets/S")
        self._secret = secret.rstrip("/")
        self._client = client
        self._ttl_s = current_ttl_s
        self._clock = clock
        self._rand = rand
        self._keys: dict[str, bytes] = {}
        self._current: tuple[str, float] | None = None
        self._lock = threading.Lock()
        self._call_timeout_s = call_timeout_s

    @property
    def description(self) -> str:
        return f"Secret Manager {self._secret}"

    def _api(self) -> Any:
        if self._client is None:
            from google.cloud import secretmanager

            self._client = secretmanager.SecretManagerServiceClient()
        return self._client

    def _locked(self, deadline: float) -> None:
        """Take the lock by ``deadline``: a caller queued behind a slow call must not wait beyond its bound."""
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise KekUnavailableError(f"Secret Manager {self._secret}: an earlier call is still waiting for it")

    def _access(self, version: str, deadline: float) -> tuple[str, bytes]:
        from google.api_core import exceptions as gexc
        from google.api_core import retry as gretry

        name = f"{self._secret}/versions/{version}"
        left_s = deadline - time.monotonic()
        if left_s <= 0:
            raise KekUnavailableError(f"Secret Manager did not answer for {name} in time")
        # The client's default retries UNAVAILABLE for up to 60 s, each attempt waiting up to 60 s.
        retry = gretry.Retry(
            initial=0.2, maximum=1.0, multiplier=2.0, timeout=left_s,
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable, gexc.ResourceExhausted),
        )
        try:
            response = self._api().access_secret_version(request={"name": name}, retry=retry, timeout=left_s)
        except (gexc.NotFound, gexc.InvalidArgument) as exc:
            # No such version (or name): permanent, unlike an outage. A disabled version (FailedPrecondition)
            # stays "unavailable": an operator may enable it again.
            raise KekVersionUnknownError(
                f"Secret Manager refused {name}: {exc.__class__.__name__}: {exc.message}"
            ) from exc
        except gexc.GoogleAPICallError as exc:
            raise KekUnavailableError(
                f"Secret Manager refused {name}: {exc.__class__.__name__}: {exc.message}"
            ) from exc
        except gexc.RetryError as exc:
            raise KekUnavailableError(f"Secret Manager did not answer for {name}") from exc
        resolved = str(response.name).rsplit("/", 1)[-1] or version
        payload = bytes(response.payload.data)
        checksum = response.payload.data_crc32c if "data_crc32c" in response.payload else None
        if checksum:
            import google_crc32c

            if int(google_crc32c.value(payload)) != int(checksum):
                raise KekUnavailableError(f"{name}: payload checksum mismatch")
        return resolved, _kek_from_payload(payload, f"secret version {name}")

    def current_version(self) -> str:
        current = self._current
        if current is not None and self._clock() - current[1] < self._ttl_s:
            return current[0]
        deadline = time.monotonic() + self._call_timeout_s
        self._locked(deadline)
        try:
            now = self._clock()
            if self._current is not None and now - self._current[1] < self._ttl_s:
                return self._current[0]
            version, key = self._access("latest", deadline)
            self._keys[version] = key
            self._current = (version, now)
            return version
        finally:
            self._lock.release()

    def key(self, version: str) -> bytes:
        check_version(version)
        cached = self._keys.get(version)  # versions never change: no need to queue behind a slow call
        if cached is not None:
            return cached
        deadline = time.monotonic() + self._call_timeout_s
        self._locked(deadline)
        try:
            cached = self._keys.get(version)
            if cached is not None:
                return cached
            resolved, key = self._access(version, deadline)
            self._keys[resolved] = key
            return key
        finally:
            self._lock.release()

    def add_version(self) -> str:
        from google.api_core import exceptions as gexc

        try:
            response = self._api().add_secret_version(
                request={"parent": self._secret, "payload": {"data": self._rand(KEK_LEN)}}
            )
        except gexc.GoogleAPICallError as exc:
            raise KekUnavailableError(f"Secret Manager refused a new version of {self._secret}: {exc.message}") \
                from exc
        with self._lock:
            self._current = None
        return str(response.name).rsplit("/", 1)[-1]
