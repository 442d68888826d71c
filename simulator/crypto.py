"""The primitives the simulated server and phones need, written against the public facts only.

Deliberately independent of ``connector.protocol.crypto``: the simulator checks the client's
cryptography instead of sharing its code, so a shared bug cannot hide on both sides of the wire.

Signatures are Signal's XEdDSA over Curve25519 keys: the verifier rebuilds the Ed25519 key from
the Montgomery key using the sign bit stored in bit 7 of the last signature byte (libsignal's
convention); signatures made here always carry sign bit 0, which every verifier accepts.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
from collections.abc import Callable

import xeddsa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RandomBytes = Callable[[int], bytes]

KEY_SIZE = 32
SIGNATURE_SIZE = 64
DJB_KEY_TYPE = 5  # Signal's type byte for Curve25519 public keys


def x25519_public(private: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def clamp(private: bytes) -> bytes:
    """Clamp a Curve25519 scalar (RFC 7748 section 5), as libsignal stores private keys."""
    scalar = bytearray(private)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    return bytes(scalar)


def x25519_keypair(random_bytes: RandomBytes) -> tuple[bytes, bytes]:
    """Return (private, public) from 32 bytes of the given randomness."""
    private = clamp(random_bytes(KEY_SIZE))
    return private, x25519_public(private)


def raw_public_key(public: bytes) -> bytes | None:
    """The 32-byte key from a raw or 0x05-prefixed public key; None for any other shape."""
    if len(public) == KEY_SIZE + 1 and public[0] == DJB_KEY_TYPE:
        return public[1:]
    return public if len(public) == KEY_SIZE else None


def x25519(private: bytes, public: bytes) -> bytes:
    return X25519PrivateKey.from_private_bytes(private).exchange(X25519PublicKey.from_public_bytes(public))


def xeddsa_sign(private: bytes, message: bytes, random_bytes: RandomBytes) -> bytes:
    # XEdDSA signs with the private scalar whose Ed25519 public key has sign bit 0.
    positive = xeddsa.priv_force_sign(private, False)
    return bytes(xeddsa.ed25519_priv_sign(positive, message, random_bytes(xeddsa.NONCE_SIZE)))


def xeddsa_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    if len(public) != KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    sign_bit = bool(signature[63] & 0x80)
    cleared = signature[:63] + bytes([signature[63] & 0x7F])
    try:
        ed_public = xeddsa.curve25519_pub_to_ed25519_pub(public, sign_bit)
        return bool(xeddsa.ed25519_verify(cleared, ed_public, message))
    except xeddsa.XEdDSAException:
        return False


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return _hmac.new(key, data, hashlib.sha256).digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return _hmac.compare_digest(a, b)


def hkdf_sha256(key_material: bytes, length: int, *, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(key_material)


def pbkdf2_sha256(password: bytes, salt: bytes, iterations: int, length: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password, salt, iterations, length)


def aes_ctr(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-CTR encrypt or decrypt (the same operation)."""
    cipher = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes | None = None) -> bytes:
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes | None = None) -> bytes:
    """Raises cryptography's InvalidTag when the ciphertext or key is wrong."""
    return AESGCM(key).decrypt(nonce, ciphertext, aad)
