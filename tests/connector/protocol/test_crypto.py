from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from connector.protocol import crypto
from connector.protocol.crypto import KeyPair
from connector.protocol.errors import CryptoError
from shared import signatures
from testkit.protocol.seeded import SeededRandom


def test_hkdf_matches_rfc5869_case_1() -> None:
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    expected = bytes.fromhex(
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    assert crypto.hkdf_sha256(ikm, 42, salt=salt, info=info) == expected


def test_hkdf_without_salt_matches_cryptography() -> None:
    ikm = b"shared secret material"
    reference = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"adv_secret").derive(ikm)
    assert crypto.hkdf_sha256(ikm, 64, info=b"adv_secret") == reference


def test_x25519_matches_rfc7748_vector() -> None:
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob_public = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert crypto.x25519(crypto.clamp(alice), bob_public) == shared


def test_x25519_rejects_low_order_point() -> None:
    pair = KeyPair.generate(SeededRandom())
    with pytest.raises(CryptoError):
        crypto.x25519(pair.private, bytes(32))


def test_xeddsa_signature_verifies_with_raw_and_prefixed_key() -> None:
    rand = SeededRandom("sig")
    for _ in range(8):  # both signs of the Edwards key must work
        pair = KeyPair.generate(rand)
        signature = signatures.xeddsa_sign(pair.private, b"message", rand)
        assert signature[63] & 0x80 == 0
        assert signatures.xeddsa_verify(pair.public, b"message", signature)
        assert signatures.xeddsa_verify(crypto.signal_public_key(pair.public), b"message", signature)
        assert not signatures.xeddsa_verify(pair.public, b"messagE", signature)
        tampered = bytes([signature[0] ^ 1]) + signature[1:]
        assert not signatures.xeddsa_verify(pair.public, b"message", tampered)


def test_xeddsa_rejects_wrong_sizes() -> None:
    pair = KeyPair.generate(SeededRandom())
    assert not signatures.xeddsa_verify(pair.public, b"m", b"\x00" * 63)
    assert not signatures.xeddsa_verify(b"\x01" * 31, b"m", b"\x00" * 64)


def test_aes_gcm_detects_tampering() -> None:
    key, iv = bytes(32), bytes(12)
    sealed = crypto.aes_gcm_encrypt(key, iv, b"hello", b"aad")
    assert crypto.aes_gcm_decrypt(key, iv, sealed, b"aad") == b"hello"
    with pytest.raises(CryptoError):
        crypto.aes_gcm_decrypt(key, iv, sealed, b"other")


def test_keypair_repr_hides_private_key() -> None:
    pair = KeyPair.generate(SeededRandom())
    assert pair.private.hex() not in repr(pair)
