"""Sealing for transit: only the private key opens; every tampering fails closed."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from shared.errors import SealingError
from shared.sealing import open_sealed, public_key_bytes, read_header, seal


@pytest.fixture
def recipient() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def test_round_trip_with_key_id_and_aad(recipient: X25519PrivateKey) -> None:
    blob = seal(b"state" * 100, public_key_bytes(recipient), "7", b"acct-1")
    assert read_header(blob).key_id == "7"
    assert open_sealed(blob, recipient, b"acct-1") == b"state" * 100
    assert b"state" not in blob


def test_uncompressed_round_trip(recipient: X25519PrivateKey) -> None:
    blob = seal(b"x", public_key_bytes(recipient), "1", compressed=False)
    assert open_sealed(blob, recipient) == b"x"


def test_each_seal_is_fresh(recipient: X25519PrivateKey) -> None:
    pub = public_key_bytes(recipient)
    assert seal(b"x", pub, "1") != seal(b"x", pub, "1")


def test_wrong_key_wrong_aad_and_tampering_fail(recipient: X25519PrivateKey) -> None:
    blob = seal(b"secret", public_key_bytes(recipient), "1", b"acct-1")
    with pytest.raises(SealingError):
        open_sealed(blob, X25519PrivateKey.generate(), b"acct-1")
    with pytest.raises(SealingError):
        open_sealed(blob, recipient, b"acct-2")
    for index in (3, 6, len(blob) // 2, len(blob) - 1):
        altered = bytearray(blob)
        altered[index] ^= 1
        with pytest.raises(SealingError):
            open_sealed(bytes(altered), recipient, b"acct-1")
    with pytest.raises(SealingError):
        open_sealed(blob[:-5], recipient, b"acct-1")
    with pytest.raises(SealingError):
        open_sealed(b"nonsense", recipient)
