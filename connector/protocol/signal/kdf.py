"""The key derivations and ciphers of Signal as libsignal-node and Baileys run them.

* ``derive_secrets``: libsignal-node's ``deriveSecrets``, plain HKDF-SHA256 (RFC 5869) with a
  32-byte salt, returning up to three 32-byte blocks.
* ``chain_step``: a chain key ``ck`` gives the message seed ``HMAC(ck, 0x01)`` and the next chain key
  ``HMAC(ck, 0x02)``; pairwise and group chains alike.
* ``message_keys``: a pairwise seed gives (cipherKey, macKey, iv) from HKDF "WhisperMessageKeys".
* ``group_message_keys``: a group seed gives (iv, key) from HKDF "WhisperGroup".
* AES-256-CBC with PKCS7 padding for both; a padding error is a :class:`BadMacError` (the bytes
  were not what the key was made for).
"""

from __future__ import annotations

import hmac
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from connector.protocol.signal.errors import BadMacError

ZERO_SALT: Final = bytes(32)
INFO_TEXT: Final = b"WhisperText"
INFO_RATCHET: Final = b"WhisperRatchet"
INFO_MESSAGE_KEYS: Final = b"WhisperMessageKeys"
INFO_GROUP: Final = b"WhisperGroup"
_MESSAGE_SEED: Final = b"\x01"
_CHAIN_SEED: Final = b"\x02"
_BLOCK: Final = 16


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def derive_secrets(material: bytes, salt: bytes, info: bytes, blocks: int = 3) -> list[bytes]:
    """HKDF-SHA256 of ``material``: ``blocks`` (1..3) output blocks of 32 bytes."""
    if len(salt) != 32 or not 1 <= blocks <= 3:
        raise ValueError("derive_secrets takes a 32-byte salt and 1..3 blocks")
    prk = hmac.digest(salt, material, "sha256")
    out = [hmac.digest(prk, info + b"\x01", "sha256")]
    for counter in range(2, blocks + 1):
        out.append(hmac.digest(prk, out[-1] + info + bytes([counter]), "sha256"))
    return out


def chain_step(chain_key: bytes) -> tuple[bytes, bytes]:
    """(message seed, next chain key) of ``chain_key``."""
    return hmac.digest(chain_key, _MESSAGE_SEED, "sha256"), hmac.digest(chain_key, _CHAIN_SEED, "sha256")


def message_keys(seed: bytes) -> tuple[bytes, bytes, bytes]:
    """(cipher key, MAC key, IV) of a pairwise message seed."""
    cipher_key, mac_key, third = derive_secrets(seed, ZERO_SALT, INFO_MESSAGE_KEYS)
    return cipher_key, mac_key, third[:16]


def group_message_keys(seed: bytes) -> tuple[bytes, bytes]:
    """(IV, cipher key) of a sender-key message seed: bytes 0..16 and 16..48 of the HKDF output."""
    first, second = derive_secrets(seed, ZERO_SALT, INFO_GROUP, 2)
    return first[:16], first[16:] + second[:16]


def aes_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    pad = _BLOCK - len(plaintext) % _BLOCK
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(plaintext + bytes([pad]) * pad) + encryptor.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """AES-256-CBC decrypt and strip PKCS7; a bad length or padding is :class:`BadMacError`."""
    if not ciphertext or len(ciphertext) % _BLOCK:
        raise BadMacError("ciphertext is not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    pad = padded[-1]
    if not 1 <= pad <= _BLOCK or padded[-pad:] != bytes([pad]) * pad:
        raise BadMacError("bad PKCS7 padding after AES-CBC")
    return padded[:-pad]
