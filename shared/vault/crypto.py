"""Envelope encryption of one stored version.

::

    plaintext    = canonical state bytes (shared.snapshot)
    body         = zstd(plaintext)
    data key     = 32 fresh random bytes, one per version
    ciphertext   = AES-256-GCM(data key, nonce, body, aad = data_aad(binding, header))
    wrapping key = HKDF-SHA256(KEK, info = "keeper/vault/wrap-key/v2" 0x00 accountId)     (wrap "account-key")
                 | the KEK itself                                        (no "wrap" field: format-1 versions)
    wrappedKey   = wrap nonce (12) || AES-256-GCM(wrapping key, wrap nonce, data key,
                                                  aad = wrap_aad(binding, kekVersion, wrap))

The data AAD binds the account id, version, generation, format, plaintext hash and sizes, so a blob
moved to another account or version, or a header edited in place, does not open. The KEK version and
the wrap scheme are bound only into the wrap, so rotating the KEK re-wraps the 60-byte data key and
leaves the payload untouched (:func:`rewrap`).

Why a key per account: wraps use random 96-bit GCM nonces, safe for about 2^32 encryptions under one key.
Under the KEK itself that is every save of the fleet (1,000 busy accounts, a save each per 2 s: ~100
days); under a per-account key it is one account's saves (a save per 2 s for ~270 years). Versions
written before (wrapped under the KEK) still open; a rotation re-wraps them under the account key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.authstate import MAX_STATE_BYTES
from shared.compression import DecompressionError, compress, decompress
from shared.errors import IntegrityError, StateTooLargeError
from shared.snapshot import canonical_bytes

FORMAT_VERSION: Final = 1
COMPRESSION: Final = "zstd"
KEY_LEN: Final = 32
NONCE_LEN: Final = 12
TAG_LEN: Final = 16
WRAPPED_KEY_LEN: Final = NONCE_LEN + KEY_LEN + TAG_LEN

RandomBytes = Callable[[int], bytes]

#: How a version's data key is wrapped (the header's ``wrap`` field; absent in format-1 versions).
WRAP_KEK: Final = "kek"
WRAP_ACCOUNT_KEY: Final = "account-key"
_WRAP_SCHEMES: Final = frozenset({WRAP_KEK, WRAP_ACCOUNT_KEY})
_ACCOUNT_KEY_INFO: Final = b"keeper/vault/wrap-key/v2\x00"


@dataclass(frozen=True)
class Binding:
    """Where a version lives: what its ciphertext is bound to."""

    account_id: str
    version: int
    generation: int


@dataclass(frozen=True)
class EnvelopeHeader:
    """The clear metadata of one stored version (no key material in clear: the data key is wrapped)."""

    format_version: int
    kek_version: str
    wrapped_key: bytes
    nonce: bytes
    sha256: bytes
    raw_size: int
    compressed_size: int
    compression: str = COMPRESSION
    wrap_scheme: str = WRAP_KEK

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "format": self.format_version,
            "kekVersion": self.kek_version,
            "wrappedKey": self.wrapped_key,
            "nonce": self.nonce,
            "sha256": self.sha256.hex(),
            "rawSize": self.raw_size,
            "compressedSize": self.compressed_size,
            "compression": self.compression,
        }
        if self.wrap_scheme != WRAP_KEK:  # a format-1 header is written back exactly as it was
            record["wrap"] = self.wrap_scheme
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> EnvelopeHeader:
        try:
            header = cls(
                format_version=int(record["format"]),
                kek_version=str(record["kekVersion"]),
                wrapped_key=bytes(record["wrappedKey"]),
                nonce=bytes(record["nonce"]),
                sha256=bytes.fromhex(str(record["sha256"])),
                raw_size=int(record["rawSize"]),
                compressed_size=int(record["compressedSize"]),
                compression=str(record.get("compression", COMPRESSION)),
                wrap_scheme=str(record.get("wrap", WRAP_KEK)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"version header is malformed ({exc.__class__.__name__}: {exc})") from exc
        if header.format_version != FORMAT_VERSION:
            raise IntegrityError(f"version format {header.format_version} is not supported")
        if header.compression != COMPRESSION:
            raise IntegrityError(f"compression {header.compression!r} is not supported")
        if header.wrap_scheme not in _WRAP_SCHEMES:
            raise IntegrityError(f"wrap scheme {header.wrap_scheme[:40]!r} is not supported")
        if len(header.wrapped_key) != WRAPPED_KEY_LEN or len(header.nonce) != NONCE_LEN:
            raise IntegrityError("version header carries a wrapped key or nonce of the wrong size")
        if len(header.sha256) != hashlib.sha256().digest_size:
            raise IntegrityError("version header carries a malformed hash")
        return header


def data_aad(binding: Binding, header: EnvelopeHeader) -> bytes:
    return b"keeper/vault/data/v1\x00" + canonical_bytes({
        "account": binding.account_id,
        "version": binding.version,
        "generation": binding.generation,
        "format": header.format_version,
        "compression": header.compression,
        "sha256": header.sha256.hex(),
        "rawSize": header.raw_size,
        "compressedSize": header.compressed_size,
    })


def wrap_aad(binding: Binding, kek_version: str, wrap_scheme: str = WRAP_KEK) -> bytes:
    fields: dict[str, Any] = {"account": binding.account_id, "version": binding.version, "kekVersion": kek_version}
    if wrap_scheme != WRAP_KEK:  # format-1 wraps keep the AAD they were made with
        fields["wrap"] = wrap_scheme
    return b"keeper/vault/wrap/v1\x00" + canonical_bytes(fields)


def account_wrapping_key(kek: bytes, account_id: str) -> bytes:
    """The key that wraps one account's data keys under one KEK version."""
    info = _ACCOUNT_KEY_INFO + account_id.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_LEN, salt=None, info=info).derive(kek)


def _wrapping_key(kek: bytes, account_id: str, wrap_scheme: str) -> bytes:
    return account_wrapping_key(kek, account_id) if wrap_scheme == WRAP_ACCOUNT_KEY else kek


def _wrap(data_key: bytes, kek: bytes, binding: Binding, kek_version: str, rand: RandomBytes) -> bytes:
    nonce = rand(NONCE_LEN)
    key = _wrapping_key(kek, binding.account_id, WRAP_ACCOUNT_KEY)
    return nonce + AESGCM(key).encrypt(nonce, data_key, wrap_aad(binding, kek_version, WRAP_ACCOUNT_KEY))


def _unwrap(header: EnvelopeHeader, kek: bytes, binding: Binding) -> bytes:
    nonce, sealed = header.wrapped_key[:NONCE_LEN], header.wrapped_key[NONCE_LEN:]
    key = _wrapping_key(kek, binding.account_id, header.wrap_scheme)
    try:
        return AESGCM(key).decrypt(nonce, sealed, wrap_aad(binding, header.kek_version, header.wrap_scheme))
    except InvalidTag as exc:
        raise IntegrityError(
            f"account {binding.account_id} v{binding.version}: data key does not unwrap under KEK "
            f"version {header.kek_version} (wrong KEK, altered header, or moved from another account/version)"
        ) from exc


@dataclass(frozen=True)
class Prepared:
    """A state compressed and hashed once, ready to be encrypted for any binding."""

    plaintext_sha256: bytes
    raw_size: int
    body: bytes


def prepare(plaintext: bytes) -> Prepared:
    if len(plaintext) > MAX_STATE_BYTES:
        raise StateTooLargeError(len(plaintext), MAX_STATE_BYTES)
    return Prepared(hashlib.sha256(plaintext).digest(), len(plaintext), compress(plaintext))


def encrypt(
    prepared: Prepared, binding: Binding, kek_version: str, kek: bytes,
    *, rand: RandomBytes = secrets.token_bytes,
) -> tuple[EnvelopeHeader, bytes]:
    """Encrypt a prepared state for ``binding`` under a fresh data key wrapped by ``kek``."""
    data_key = rand(KEY_LEN)
    header = EnvelopeHeader(
        format_version=FORMAT_VERSION,
        kek_version=kek_version,
        wrapped_key=_wrap(data_key, kek, binding, kek_version, rand),
        nonce=rand(NONCE_LEN),
        sha256=prepared.plaintext_sha256,
        raw_size=prepared.raw_size,
        compressed_size=len(prepared.body),
        wrap_scheme=WRAP_ACCOUNT_KEY,
    )
    ciphertext = AESGCM(data_key).encrypt(header.nonce, prepared.body, data_aad(binding, header))
    return header, ciphertext


def decrypt(header: EnvelopeHeader, ciphertext: bytes, binding: Binding, kek: bytes) -> bytes:
    """Decrypt, decompress and check one version; any mismatch is an :class:`IntegrityError`."""
    where = f"account {binding.account_id} v{binding.version}"
    if header.raw_size > MAX_STATE_BYTES:
        raise IntegrityError(f"{where}: header claims {header.raw_size} bytes, over the state limit")
    if len(ciphertext) != header.compressed_size + TAG_LEN:
        raise IntegrityError(
            f"{where}: ciphertext is {len(ciphertext)} bytes, header says {header.compressed_size + TAG_LEN}"
            " (truncated or extended)"
        )
    data_key = _unwrap(header, kek, binding)
    try:
        body = AESGCM(data_key).decrypt(header.nonce, ciphertext, data_aad(binding, header))
    except InvalidTag as exc:
        raise IntegrityError(
            f"{where}: ciphertext does not authenticate (altered, or moved from another account, "
            "version or generation)"
        ) from exc
    try:
        plaintext = decompress(body, header.raw_size)
    except DecompressionError as exc:
        raise IntegrityError(f"{where}: payload does not decompress: {exc}") from exc
    if not hmac.compare_digest(hashlib.sha256(plaintext).digest(), header.sha256):
        raise IntegrityError(f"{where}: plaintext hash does not match the header")
    return plaintext


def rewrap(
    header: EnvelopeHeader, binding: Binding, old_kek: bytes, new_kek_version: str, new_kek: bytes,
    *, rand: RandomBytes = secrets.token_bytes,
) -> EnvelopeHeader:
    """The same header with its data key re-wrapped under another KEK version, with the account key scheme
    (a format-1 version moves to it here); payload unchanged."""
    data_key = _unwrap(header, old_kek, binding)
    wrapped = _wrap(data_key, new_kek, binding, new_kek_version, rand)
    return replace(header, kek_version=new_kek_version, wrapped_key=wrapped, wrap_scheme=WRAP_ACCOUNT_KEY)
