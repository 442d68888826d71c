"""Curve25519 keys as Signal carries them, and the signatures libsignal-node makes and checks.

Signal puts a type byte ``0x05`` in front of a 32-byte X25519 public key; sessions, messages and
records hold that 33-byte form, while key bundles and creds hold the raw 32 bytes
(:func:`public33` turns one into the other). Private keys are 32 raw bytes; X25519 clamps them.

Signatures are XEdDSA. libsignal-node signs with curve25519-js, which leaves the Edwards key's
sign bit in bit 7 of the signature's last byte; :func:`verify` reads it from there, so it accepts
those and strict XEdDSA signatures (bit 0) alike, and :func:`sign` makes strict ones, which
libsignal-node verifies (SIGNAL.md section 1, verified 24/24 both ways).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from connector.protocol import crypto
from connector.protocol.signal.errors import InvalidKeyError
from shared import signatures

KEY_TYPE: Final = 0x05
PUBLIC_KEY_LEN: Final = 33
RAW_KEY_LEN: Final = 32
SIGNATURE_LEN: Final = 64
_KEY_TYPE_BYTE: Final = bytes([KEY_TYPE])


def public33(key: bytes) -> bytes:
    """The 33-byte form of a public key given raw (32) or already prefixed (33 with 0x05)."""
    if len(key) == RAW_KEY_LEN:
        return _KEY_TYPE_BYTE + key
    return check_public(key)


def check_public(key: bytes) -> bytes:
    """``key`` itself if it is a 33-byte ``0x05`` public key; :class:`InvalidKeyError` otherwise."""
    if len(key) != PUBLIC_KEY_LEN or key[0] != KEY_TYPE:
        raise InvalidKeyError(f"a public key must be 33 bytes starting 0x05, got {len(key)} bytes")
    return key


@dataclass(frozen=True, slots=True)
class SignalKeyPair:
    """A Curve25519 key pair in Signal's form: ``public`` 33 bytes (0x05 type byte first), ``private`` 32.

    :class:`connector.protocol.crypto.KeyPair` is the same pair with the raw 32-byte public key.
    """

    public: bytes
    private: bytes

    @classmethod
    def generate(cls, random_bytes: crypto.RandomSource) -> SignalKeyPair:
        pair = crypto.KeyPair.generate(random_bytes)
        return cls(public=_KEY_TYPE_BYTE + pair.public, private=pair.private)

    @classmethod
    def from_raw(cls, public: bytes, private: bytes) -> SignalKeyPair:
        """From creds' or pre-keys' raw halves (public 32 or 33 bytes)."""
        if len(private) != RAW_KEY_LEN:
            raise InvalidKeyError(f"a private key must be 32 bytes, got {len(private)}")
        return cls(public=public33(public), private=private)

    def __repr__(self) -> str:  # never print the private half
        return f"SignalKeyPair(public={self.public.hex()})"


def dh(private: bytes, public: bytes) -> bytes:
    """X25519 of our private key and their 33-byte public key; a low-order point is refused."""
    check_public(public)
    try:
        return X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(public[1:]))
    except ValueError as exc:
        raise InvalidKeyError("X25519 with this public key gives no shared secret") from exc


def sign(private: bytes, message: bytes, random_bytes: crypto.RandomSource) -> bytes:
    """A 64-byte XEdDSA signature of ``message`` (Edwards sign bit forced to 0)."""
    return signatures.xeddsa_sign(private, message, random_bytes)


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public``'s signature of ``message``; the sign bit as explained above."""
    if len(public) not in (RAW_KEY_LEN, PUBLIC_KEY_LEN) or len(signature) != SIGNATURE_LEN:
        return False
    if len(public) == PUBLIC_KEY_LEN and public[0] != KEY_TYPE:
        return False
    return signatures.xeddsa_verify(public, message, signature)
