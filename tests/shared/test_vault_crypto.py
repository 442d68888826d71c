"""Envelope encryption: bindings, wrapping, rotation and damage detection."""

from __future__ import annotations

import os

import pytest

from shared.errors import IntegrityError
from shared.vault import crypto

KEK_A = os.urandom(32)
KEK_B = os.urandom(32)
BINDING = crypto.Binding("acct-1", 4, 2)
PLAINTEXT = b'{"creds":{"x":1}}' * 50


def sealed() -> tuple[crypto.EnvelopeHeader, bytes]:
    return crypto.encrypt(crypto.prepare(PLAINTEXT), BINDING, "1", KEK_A)


def test_round_trip_and_header_contents() -> None:
    header, ciphertext = sealed()
    assert crypto.decrypt(header, ciphertext, BINDING, KEK_A) == PLAINTEXT
    assert header.raw_size == len(PLAINTEXT)
    assert len(ciphertext) == header.compressed_size + crypto.TAG_LEN
    assert crypto.EnvelopeHeader.from_record(header.to_record()) == header


@pytest.mark.parametrize(
    "binding",
    [crypto.Binding("acct-2", 4, 2), crypto.Binding("acct-1", 5, 2), crypto.Binding("acct-1", 4, 3)],
)
def test_moved_blob_does_not_open(binding: crypto.Binding) -> None:
    header, ciphertext = sealed()
    with pytest.raises(IntegrityError):
        crypto.decrypt(header, ciphertext, binding, KEK_A)


def test_wrong_kek_truncation_and_alteration() -> None:
    header, ciphertext = sealed()
    with pytest.raises(IntegrityError, match="KEK"):
        crypto.decrypt(header, ciphertext, BINDING, KEK_B)
    with pytest.raises(IntegrityError, match="truncated"):
        crypto.decrypt(header, ciphertext[:-1], BINDING, KEK_A)
    altered = bytearray(ciphertext)
    altered[5] ^= 0x40
    with pytest.raises(IntegrityError, match="authenticate"):
        crypto.decrypt(header, bytes(altered), BINDING, KEK_A)


def test_edited_header_fields_do_not_open() -> None:
    header, ciphertext = sealed()
    from dataclasses import replace

    for edited in (replace(header, sha256=bytes(32)), replace(header, raw_size=header.raw_size + 1),
                   replace(header, kek_version="2")):
        with pytest.raises(IntegrityError):
            crypto.decrypt(edited, ciphertext, BINDING, KEK_A)


def test_rewrap_changes_only_the_wrapped_key() -> None:
    header, ciphertext = sealed()
    rotated = crypto.rewrap(header, BINDING, KEK_A, "2", KEK_B)
    assert (rotated.kek_version, rotated.nonce, rotated.sha256) == ("2", header.nonce, header.sha256)
    assert crypto.decrypt(rotated, ciphertext, BINDING, KEK_B) == PLAINTEXT
    with pytest.raises(IntegrityError):
        crypto.decrypt(rotated, ciphertext, BINDING, KEK_A)


def test_malformed_header_record() -> None:
    record = sealed()[0].to_record()
    for key, value in (("format", 9), ("wrappedKey", b"x"), ("sha256", "zz"), ("compression", "gzip")):
        with pytest.raises(IntegrityError):
            crypto.EnvelopeHeader.from_record({**record, key: value})
    with pytest.raises(IntegrityError):
        crypto.EnvelopeHeader.from_record({k: v for k, v in record.items() if k != "nonce"})
