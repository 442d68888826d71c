"""Property tests: BufferJSON round trips, canonical form stability, and fail-closed decryption."""

from __future__ import annotations

import os
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.bufferjson import JsonValue, dumps, revive
from shared.errors import IntegrityError, SealingError
from shared.sealing import open_sealed, public_key_bytes, seal
from shared.vault import crypto

# Object keys without digits and without "type": such objects could read back as Buffer forms.
keys = st.text(alphabet="abcdefghij-_@.:", min_size=1, max_size=8)
scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20) | st.binary(max_size=40)
json_values: Any = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=20
)


@given(json_values)
def test_bufferjson_round_trip(value: JsonValue) -> None:
    assert revive(dumps(value)) == value
    assert revive(dumps(value, canonical=True)) == value


@given(st.dictionaries(keys, scalars, max_size=8))
def test_canonical_form_ignores_insertion_order(value: dict[str, JsonValue]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert dumps(value, canonical=True) == dumps(reordered, canonical=True)


RECIPIENT = X25519PrivateKey.generate()
SEALED = seal(b"state bytes " * 20, public_key_bytes(RECIPIENT), "3", b"acct")
KEK = os.urandom(32)
BINDING = crypto.Binding("acct", 2, 1)
HEADER, CIPHERTEXT = crypto.encrypt(crypto.prepare(b'{"creds":{}}' * 30), BINDING, "1", KEK)


@settings(max_examples=100)
@given(st.integers(0, len(SEALED) - 1), st.integers(1, 255))
def test_any_altered_sealed_byte_fails_closed(index: int, flip: int) -> None:
    altered = bytearray(SEALED)
    altered[index] ^= flip
    try:
        open_sealed(bytes(altered), RECIPIENT, b"acct")
    except SealingError:
        return
    raise AssertionError(f"altered byte {index} still opened")


@settings(max_examples=100)
@given(st.integers(0, len(CIPHERTEXT) - 1), st.integers(1, 255))
def test_any_altered_ciphertext_byte_fails_closed(index: int, flip: int) -> None:
    altered = bytearray(CIPHERTEXT)
    altered[index] ^= flip
    try:
        crypto.decrypt(HEADER, bytes(altered), BINDING, KEK)
    except IntegrityError:
        return
    raise AssertionError(f"altered byte {index} still decrypted")


@given(st.integers(0, crypto.WRAPPED_KEY_LEN - 1), st.integers(1, 255))
def test_any_altered_wrapped_key_byte_fails_closed(index: int, flip: int) -> None:
    from dataclasses import replace

    altered = bytearray(HEADER.wrapped_key)
    altered[index] ^= flip
    try:
        crypto.decrypt(replace(HEADER, wrapped_key=bytes(altered)), CIPHERTEXT, BINDING, KEK)
    except IntegrityError:
        return
    raise AssertionError(f"altered wrapped-key byte {index} still decrypted")
