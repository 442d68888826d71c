from __future__ import annotations

from connector.protocol.crypto import KeyPair, clamp
from shared.signatures import xeddsa_sign, xeddsa_verify
from testkit.protocol.seeded import SeededRandom as _rand


def test_unclamped_and_clamped_private_keys_sign_alike() -> None:
    private = _rand(b"key")(32)
    message = b"\x05" + b"m" * 32
    assert xeddsa_sign(private, message, _rand(b"n")) == xeddsa_sign(clamp(private), message, _rand(b"n"))


def test_a_33_byte_key_needs_the_signal_type_byte() -> None:
    pair = KeyPair.generate(_rand(b"pair"))
    signature = xeddsa_sign(pair.private, b"hello", _rand(b"n"))
    assert xeddsa_verify(b"\x05" + pair.public, b"hello", signature)
    assert not xeddsa_verify(b"\x06" + pair.public, b"hello", signature)
