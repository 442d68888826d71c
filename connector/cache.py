"""A local on-disk cache of each held account's latest auth state.

Why: when the connector process restarts inside the same container (``docker restart``, a crash
under a process supervisor), the newest state may not have reached the vault yet. The cache holds
it, so the account comes back with every key it had, not the last stored version.

When an entry may be used (the fence): only when the account is claimed again at the generation
the entry was written under or the next one. Generations grow by one on every change of owner, so
``claimed == cached + 1`` means nobody else held the account in between and nothing newer than the
cache can exist elsewhere. A larger gap means another connector may have moved the keys on, and
the restore endpoint's state is used instead, unless that state is one this cache itself wrote
(each entry keeps the SHA-256 of the last :data:`LINEAGE_KEPT` states written, the ones this
connector published): then nothing newer than this connector's keys reached the vault, and the
gap was claims whose answers never arrived (a connectorSync answered after the connector's
timeout leaves a generation that nobody served).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.errors import CacheError

_KEY_FILE = "cache.key"
_SUFFIX = ".state"
_AAD_PREFIX = b"keeper.connector.cache.v2|"
_NONCE_LEN = 12
_HASH_LEN = 32
#: How many hashes of written states an entry keeps (its lineage).
LINEAGE_KEPT = 64


def state_digest(state: bytes) -> bytes:
    """SHA-256 of a canonical state (``shared.snapshot.canonical_state_bytes``), as the vault hashes it."""
    return hashlib.sha256(state).digest()


@dataclass(frozen=True)
class CachedState:
    account_id: str
    generation: int
    state: bytes
    #: Digests of the states written for this account, oldest first, this one last.
    lineage: tuple[bytes, ...] = ()


class StateCache:
    """Reads and writes cache entries in ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        #: Accounts whose entry may be older than their last snapshot (write and drop both failed).
        self._distrusted: set[str] = set()
        #: The lineage of each entry written by this process (saves a read before every write).
        self._lineage: dict[str, list[bytes]] = {}
        #: Restored states not yet in a lineage (see note_origin).
        self._origins: dict[str, Callable[[], bytes]] = {}
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
        lineage = self._lineage.get(account_id)
        if lineage is None:
            previous = self.get(account_id)
            lineage = list(previous.lineage) if previous is not None else []
        origin = self._origins.pop(account_id, None)
        for digest in (origin() if origin is not None else None, state_digest(state)):
            if digest is not None and (not lineage or lineage[-1] != digest):
                lineage = [*lineage, digest][-LINEAGE_KEPT:]
        nonce = secrets.token_bytes(_NONCE_LEN)
        body = struct.pack(">QH", generation, len(lineage)) + b"".join(lineage) + state
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
        self._lineage[account_id] = lineage

    def note_origin(self, account_id: str, digest: Callable[[], bytes]) -> None:
        """The account starts from a restored state: its digest joins the lineage on the next write
        (computed then, and only if there is one), since every later state descends from it."""
        self._origins[account_id] = digest

    def get(self, account_id: str) -> CachedState | None:
        """The entry for ``account_id``, or None when there is none or it does not open."""
        try:
            blob = self._path(account_id).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CacheError(f"cache read failed: {exc.strerror}") from exc
        nonce, sealed = blob[:_NONCE_LEN], blob[_NONCE_LEN:]
        try:
            body = self._aead.decrypt(nonce, sealed, _AAD_PREFIX + account_id.encode())
        except (InvalidTag, ValueError):
            return None
        generation, count = struct.unpack(">QH", body[:10])
        end = 10 + count * _HASH_LEN
        lineage = tuple(body[i:i + _HASH_LEN] for i in range(10, end, _HASH_LEN))
        return CachedState(account_id, generation, body[end:], lineage)

    def usable_for(self, account_id: str, claimed_generation: int,
                   vault_digest: Callable[[], bytes | None] | None = None) -> CachedState | None:
        """The entry if the fence in the module docstring allows it for this claim. ``vault_digest``
        gives the digest of the state the restore endpoint handed out (None: none), asked only when
        the generation gap alone does not allow the entry."""
        if account_id in self._distrusted:
            return None
        entry = self.get(account_id)
        if entry is None or claimed_generation < entry.generation:
            return None
        if claimed_generation - entry.generation <= 1:
            return entry
        digest = vault_digest() if vault_digest is not None else None
        return entry if digest is not None and digest in entry.lineage else None

    def delete(self, account_id: str) -> None:
        self._lineage.pop(account_id, None)
        self._origins.pop(account_id, None)
        try:
            self._path(account_id).unlink(missing_ok=True)
        except OSError as exc:
            self._distrusted.add(account_id)
            raise CacheError(f"cache delete failed: {exc.strerror}") from exc
