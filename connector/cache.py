"""A local on-disk cache of each held account's latest auth state.

Why: when the connector process restarts inside the same container (``docker restart``, a crash
under a process supervisor), the newest state may not have reached the vault yet. The cache holds
it, so the account comes back with every key it had, not the last stored version.

When an entry may be used (the fence): only when the account is claimed again at the generation
the entry was written under or the next one. Generations grow by one on every change of owner, so
``claimed == cached + 1`` means nobody else held the account in between and nothing newer than the
cache can exist elsewhere. Any larger gap means another connector may have moved the keys on, and
the restore endpoint's state is used instead.

Which wins when both are usable: the cache. Every snapshot this connector publishes is written to
the cache first, so within the fence the entry is at least as new as any version the vault can hold
(the restored version can only be one of those snapshots, or older), and it also has what Pub/Sub
had not delivered yet, which the functions now refuse as an older generation. That holds only while
the entry is never older than the last snapshot published: a failed write drops the entry, and if
even that fails, this process stops offering it.

At rest: the directory is 0700 and every file 0600; entries are AES-256-GCM encrypted under a key
kept in the same directory, with the account id as associated data, so an entry copied to another
account's name does not open. That stops casual reads of a copied file, not an attacker who can
read the whole directory; the vault remains the place of record.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.errors import CacheError

_KEY_FILE = "cache.key"
_SUFFIX = ".state"
_AAD_PREFIX = b"keeper.connector.cache.v1|"
_NONCE_LEN = 12


@dataclass(frozen=True)
class CachedState:
    account_id: str
    generation: int
    state: bytes


class StateCache:
    """Reads and writes cache entries in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        #: Accounts whose entry may be older than their last snapshot (write and drop both failed).
        self._distrusted: set[str] = set()
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
            self._aead = AESGCM(self._load_or_create_key())
        except OSError as exc:
            raise CacheError(f"cache directory {self.directory} is not usable: {exc.strerror}") from exc

    def _load_or_create_key(self) -> bytes:
        path = self.directory / _KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes()
            if len(key) != 32:
                raise CacheError(f"{path} is not a 32-byte key") from None
            return key
        key = AESGCM.generate_key(bit_length=256)
        with os.fdopen(fd, "wb") as out:
            out.write(key)
        return key

    def _path(self, account_id: str) -> Path:
        # Account ids come from Firestore document ids; hash them so no id can name a path.
        return self.directory / (hashlib.sha256(account_id.encode()).hexdigest()[:32] + _SUFFIX)

    def put(self, account_id: str, generation: int, state: bytes) -> None:
        """Write (atomically replace) the entry for ``account_id``. When that fails, the older entry
        is dropped (or, failing that too, no longer offered by this process) and CacheError raised."""
        nonce = secrets.token_bytes(_NONCE_LEN)
        body = struct.pack(">Q", generation) + state
        blob = nonce + self._aead.encrypt(nonce, body, _AAD_PREFIX + account_id.encode())
        path = self._path(account_id)
        tmp = path.with_suffix(f".tmp{secrets.token_hex(4)}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(blob)
            os.replace(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            try:
                path.unlink(missing_ok=True)
            except OSError:
                self._distrusted.add(account_id)
            raise CacheError(f"cache write failed: {exc.strerror}") from exc
        self._distrusted.discard(account_id)

    def get(self, account_id: str) -> CachedState | None:
        """The entry for ``account_id``, or None when there is none or it does not open."""
        try:
            blob = self._path(account_id).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"cache read failed: {exc.strerror}") from exc
        try:
            body = self._aead.decrypt(blob[:_NONCE_LEN], blob[_NONCE_LEN:], _AAD_PREFIX + account_id.encode())
        except (InvalidTag, ValueError):
            return None
        (generation,) = struct.unpack(">Q", body[:8])
        return CachedState(account_id, generation, body[8:])

    def usable_for(self, account_id: str, claimed_generation: int) -> CachedState | None:
        """The entry if the fence in the module docstring allows it for this claim."""
        if account_id in self._distrusted:
            return None
        entry = self.get(account_id)
        if entry is None or claimed_generation - entry.generation not in (0, 1):
            return None
        return entry

    def delete(self, account_id: str) -> None:
        try:
            self._path(account_id).unlink(missing_ok=True)
        except OSError as exc:
            self._distrusted.add(account_id)
            raise CacheError(f"cache delete failed: {exc.strerror}") from exc
