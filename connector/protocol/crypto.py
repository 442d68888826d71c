"""Cryptographic primitives of the WhatsApp protocol, over ``cryptography``.

XEdDSA signatures are :mod:`shared.signatures` (one implementation for the auth state and the protocol).

Keys are raw bytes: Curve25519 private keys are 32 clamped bytes, public keys 32 bytes. Signal's
serialized form of a public key carries a 0x05 type prefix (``signal_public_key``); functions that take a
public key accept both forms. Randomness is always passed in (``RandomSource``) so the protocol core stays
deterministic under test.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connector.protocol.errors import CryptoError

RandomSource = Callable[[int], bytes]
"""A function returning n random bytes (``os.urandom`` in production, seeded in tests)."""

KEY_SIZE = 32
SIGNATURE_SIZE = 64
SIGNAL_KEY_TYPE = 0x05
"""Type byte Signal puts in front of a Curve25519 public key (``KEY_BUNDLE_TYPE`` in Baileys)."""


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A Curve25519 key pair; ``private`` is clamped, ``public`` is the raw 32-byte u-coordinate.

    The key pair the protocol core computes with (Noise, pairing, certificates). The stored form is
    :class:`shared.authstate.StoredKeyPair`; the Signal layer's is
    :class:`~connector.protocol.signal.keys.SignalKeyPair`.
    """

    private: bytes
    public: bytes

    def __repr__(self) -> str:  # never print private key material
        return f"KeyPair(public={self.public.hex()})"

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        if len(private) != KEY_SIZE:
            raise CryptoError(f"private key must be {KEY_SIZE} bytes, got {len(private)}")
        clamped = clamp(private)
        public = X25519PrivateKey.from_private_bytes(clamped).public_key().public_bytes_raw()
        return cls(private=clamped, public=public)

    @classmethod
    def generate(cls, rand: RandomSource) -> KeyPair:
        return cls.from_private(rand(KEY_SIZE))


def clamp(private: bytes) -> bytes:
    """Clamp a Curve25519 scalar (RFC 7748 section 5), as libsignal does when it generates keys."""
    scalar = bytearray(private)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return bytes(scalar)


def raw_public_key(public: bytes) -> bytes:
    """Return the 32-byte form of a public key given raw or 0x05-prefixed."""
    if len(public) == KEY_SIZE + 1 and public[0] == SIGNAL_KEY_TYPE:
        return public[1:]
    if len(public) != KEY_SIZE:
        raise CryptoError(f"public key must be {KEY_SIZE} bytes (or 33 with 0x05), got {len(public)}")
    return public


def signal_public_key(public: bytes) -> bytes:
    """Return Signal's 33-byte serialized public key (0x05 + raw key)."""
    return bytes([SIGNAL_KEY_TYPE]) + raw_public_key(public)


def x25519(private: bytes, public: bytes) -> bytes:
    """Diffie-Hellman over Curve25519. Rejects low-order points (all-zero shared secret)."""
    try:
        key = X25519PrivateKey.from_private_bytes(private)
        return key.exchange(X25519PublicKey.from_public_bytes(raw_public_key(public)))
    except ValueError as exc:
        raise CryptoError(f"x25519 failed: {exc}") from exc


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def hkdf_sha256(ikm: bytes, length: int, *, salt: bytes | None = None, info: bytes = b"") -> bytes:
    """HKDF-SHA256 (RFC 5869). An absent salt means 32 zero bytes, as the RFC says."""
    if length > 255 * 32:
        raise CryptoError("HKDF output too long")
    prk = hmac_sha256(salt if salt else bytes(32), ikm)
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int, length: int = 32) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password, salt, iterations, length)


def aes_gcm_encrypt(key: bytes, iv: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes:
    """AES-GCM; the 16-byte tag is appended to the ciphertext."""
    return AESGCM(key).encrypt(iv, plaintext, aad or None)


def aes_gcm_decrypt(key: bytes, iv: bytes, ciphertext: bytes, aad: bytes | None = None) -> bytes:
    try:
        return AESGCM(key).decrypt(iv, ciphertext, aad or None)
    except InvalidTag as exc:
        raise CryptoError("AES-GCM authentication failed") from exc


def aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CTR with a 16-byte initial counter block; the same call encrypts and decrypts."""
    if len(iv) != 16:
        raise CryptoError("AES-CTR needs a 16-byte IV")
    transform = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return transform.update(data) + transform.finalize()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
