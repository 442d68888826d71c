"""Sealing for transit: encrypt to a recipient's X25519 public key so only its holder can open.

The connector seals each snapshot to the vault's public key before it goes on Pub/Sub; the functions
open it with :class:`SealingKeys`, the vault's key pairs (one per KEK version, derived from it:
``shared.vault.kek.sealing_keys``). The restore path uses the same format in the other direction,
sealed to the connector's own key. The vault itself only stores: sealing for transit is here.

Construction (an ECIES in the style of HPKE base mode, with one fresh ephemeral key per message)::

    shared   = X25519(ephemeral_private, recipient_public)
    key      = HKDF-SHA256(ikm=shared, salt=ephemeral_public || recipient_public, info=INFO, 32 bytes)
    sealed   = header || AES-256-GCM(key, nonce, compressed-or-plain, aad=header || caller_aad)

    header   = MAGIC "KSL" | format 0x01 | flags (bit 0: zstd) | key-id length (1 byte) | key id (UTF-8)
               | ephemeral public key (32) | nonce (12)

The header is authenticated (it is part of the GCM associated data), so a blob whose key id, flags
or ephemeral key were changed does not open. ``key id`` names the recipient key (for the vault: the
KEK version its key pair was derived from), so blobs sealed to an older key still find it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from shared.authstate import MAX_STATE_BYTES
from shared.compression import DecompressionError, compress, decompress
from shared.errors import KekUnavailableError, SealingError

MAGIC: Final = b"KSL"
FORMAT_VERSION: Final = 1
FLAG_ZSTD: Final = 0x01
INFO: Final = b"keeper/seal/v1"
PUBLIC_KEY_LEN: Final = 32
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
MAX_KEY_ID_LEN: Final = 255
#: Largest plaintext :func:`open_sealed` inflates to.
MAX_OPENED_BYTES: Final = MAX_STATE_BYTES + 64 * 1024

RandomBytes = Callable[[int], bytes]


@dataclass(frozen=True)
class SealedHeader:
    """The clear part of a sealed blob."""

    key_id: str
    compressed: bool
    ephemeral_public: bytes
    nonce: bytes
    length: int  # bytes of header at the start of the blob


def public_key_bytes(private_key: X25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


_PROBE_KEY = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def is_usable_public_key(public: bytes) -> bool:
    """Whether ``public`` is a 32-byte X25519 key of large order. A low-order point (the all-zero key among
    them) gives the same all-zero shared secret with every private key: whatever is sealed to it opens for
    anyone. X25519 maps every such point to that secret, so one exchange with any key tells."""
    if len(public) != PUBLIC_KEY_LEN:
        return False
    try:
        _PROBE_KEY.exchange(X25519PublicKey.from_public_bytes(public))
    except ValueError:  # the library refuses an all-zero shared secret
        return False
    return True


def _derive_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public + recipient_public, info=INFO)
    return hkdf.derive(shared)


def seal(
    plaintext: bytes,
    recipient_public: bytes,
    key_id: str,
    aad: bytes = b"",
    *,
    compressed: bool = True,
    rand: RandomBytes = secrets.token_bytes,
) -> bytes:
    """Seal ``plaintext`` to ``recipient_public`` (raw 32-byte X25519); ``aad`` must match on open."""
    key_id_bytes = key_id.encode("utf-8")
    if not 0 < len(key_id_bytes) <= MAX_KEY_ID_LEN:
        raise SealingError("key id must be 1..255 bytes of UTF-8")
    if len(recipient_public) != PUBLIC_KEY_LEN:
        raise SealingError("recipient public key must be 32 bytes")
    ephemeral = X25519PrivateKey.from_private_bytes(rand(32))
    ephemeral_public = public_key_bytes(ephemeral)
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    except ValueError as exc:  # low-order point: the shared secret would be all zeros
        raise SealingError("recipient public key is not usable") from exc
    nonce = rand(NONCE_LEN)
    flags = FLAG_ZSTD if compressed else 0
    header = (
        MAGIC + bytes([FORMAT_VERSION, flags, len(key_id_bytes)]) + key_id_bytes + ephemeral_public + nonce
    )
    body = compress(plaintext) if compressed else plaintext
    key = _derive_key(shared, ephemeral_public, recipient_public)
    return header + AESGCM(key).encrypt(nonce, body, header + aad)


def read_header(blob: bytes) -> SealedHeader:
    """Parse the clear header (to find which key opens the blob); nothing in it is trusted yet."""
    fixed = len(MAGIC) + 3
    if len(blob) < fixed or blob[: len(MAGIC)] != MAGIC:
        raise SealingError("not a sealed blob")
    version, flags, key_id_len = blob[len(MAGIC)], blob[len(MAGIC) + 1], blob[len(MAGIC) + 2]
    if version != FORMAT_VERSION:
        raise SealingError(f"sealed blob format {version} is not supported")
    if flags & ~FLAG_ZSTD:
        raise SealingError("sealed blob has unknown flags")
    end = fixed + key_id_len + PUBLIC_KEY_LEN + NONCE_LEN
    if len(blob) < end + TAG_LEN:
        raise SealingError("sealed blob is truncated")
    try:
        key_id = blob[fixed : fixed + key_id_len].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SealingError("sealed blob key id is not UTF-8") from exc
    ephemeral_public = blob[fixed + key_id_len : fixed + key_id_len + PUBLIC_KEY_LEN]
    nonce = blob[end - NONCE_LEN : end]
    return SealedHeader(key_id=key_id, compressed=bool(flags & FLAG_ZSTD),
                        ephemeral_public=ephemeral_public, nonce=nonce, length=end)


def open_sealed(blob: bytes, private_key: X25519PrivateKey, aad: bytes = b"") -> bytes:
    """Open a blob sealed to ``private_key``'s public key; any tampering is a :class:`SealingError`."""
    header = read_header(blob)
    recipient_public = public_key_bytes(private_key)
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(header.ephemeral_public))
    except ValueError as exc:
        raise SealingError("sealed blob carries an unusable ephemeral key") from exc
    key = _derive_key(shared, header.ephemeral_public, recipient_public)
    try:
        body = AESGCM(key).decrypt(header.nonce, blob[header.length :], blob[: header.length] + aad)
    except InvalidTag as exc:
        raise SealingError(
            f"sealed blob does not open with key {header.key_id!r}: altered, truncated, "
            "wrong key or wrong associated data"
        ) from exc
    if not header.compressed:
        return body
    try:
        return decompress(body, MAX_OPENED_BYTES)
    except DecompressionError as exc:
        raise SealingError(f"sealed blob does not decompress: {exc}") from exc


@dataclass(frozen=True)
class SealingKey:
    """A recipient's current public key and its key id (for the vault: the KEK version)."""

    key_id: str
    public: bytes


class SealingKeys:
    """A recipient's key pairs by key id: the current one to hand out, any one to open with.

    ``private_key(key_id)`` may raise :class:`~shared.errors.KekUnavailableError` (the vault's keys
    are derived from KEK versions); opening then fails as a :class:`~shared.errors.SealingError`.
    Keys are derived once per process."""

    def __init__(self, current_key_id: Callable[[], str], private_key: Callable[[str], X25519PrivateKey]) -> None:
        self._current_key_id = current_key_id
        self._private_key = private_key
        self._keys: dict[str, X25519PrivateKey] = {}

    @classmethod
    def of(cls, private_key: X25519PrivateKey, key_id: str = "") -> SealingKeys:
        """One fixed key pair (opens blobs of any key id with it)."""
        return cls(lambda: key_id, lambda _: private_key)

    def _key(self, key_id: str) -> X25519PrivateKey:
        key = self._keys.get(key_id)
        if key is None:
            key = self._keys[key_id] = self._private_key(key_id)
        return key

    def public_key(self) -> SealingKey:
        """The key to seal to now (it rotates with the KEK)."""
        key_id = self._current_key_id()
        return SealingKey(key_id, public_key_bytes(self._key(key_id)))

    def open(self, blob: bytes, aad: bytes = b"") -> bytes:
        """Open a blob sealed to any of these keys (the header names which)."""
        header = read_header(blob)
        try:
            private = self._key(header.key_id)
        except KekUnavailableError as exc:
            raise SealingError(f"sealed to key {header.key_id!r}, which is not available: {exc}") from exc
        return open_sealed(blob, private, aad)
