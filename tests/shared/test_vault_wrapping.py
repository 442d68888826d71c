"""Wrapping data keys for the product's lifetime (issue 16 item 8).

Format 1 wrapped every data key with AES-256-GCM under the KEK itself, with a random 96-bit nonce: at
1,000 busy accounts (a save per 2 s each) one KEK reaches the 2^32-wraps bound of random GCM nonces in
about 100 days. Now each account's data keys are wrapped under its own key derived from the KEK
(HKDF-SHA256, the account id in the info): one account would need a save per 2 s for ~270 years to get
there. Versions stored in format 1 still open, and rotation moves them to the new scheme.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.vault import crypto

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "vault_envelope_v1.json").read_text())


def _legacy() -> tuple[crypto.EnvelopeHeader, bytes, crypto.Binding, bytes]:
    record = {k: (bytes.fromhex(v) if k in ("wrappedKey", "nonce") else v) for k, v in FIXTURE["header"].items()}
    binding = crypto.Binding(FIXTURE["accountId"], FIXTURE["version"], FIXTURE["generation"])
    return (crypto.EnvelopeHeader.from_record(record), bytes.fromhex(FIXTURE["ciphertext"]), binding,
            bytes.fromhex(FIXTURE["kek"]))


def test_a_version_stored_by_the_format_1_vault_still_opens() -> None:
    header, ciphertext, binding, kek = _legacy()
    assert header.wrap_scheme == crypto.WRAP_KEK
    assert crypto.decrypt(header, ciphertext, binding, kek) == FIXTURE["plaintext"].encode()
    assert header.to_record() == {k: (bytes.fromhex(v) if k in ("wrappedKey", "nonce") else v)
                                  for k, v in FIXTURE["header"].items()}, "a format-1 header is written back as is"


def test_new_versions_wrap_under_a_key_of_their_own_account() -> None:
    kek = bytes(range(32))
    prepared = crypto.prepare(b'{"creds":{}}')
    a, b = crypto.Binding("acc_a", 1, 1), crypto.Binding("acc_b", 1, 1)
    header_a, ciphertext_a = crypto.encrypt(prepared, a, "1", kek)
    header_b, _ = crypto.encrypt(prepared, b, "1", kek)
    assert header_a.wrap_scheme == header_b.wrap_scheme == crypto.WRAP_ACCOUNT_KEY
    assert header_a.to_record()["wrap"] == crypto.WRAP_ACCOUNT_KEY
    assert crypto.decrypt(header_a, ciphertext_a, a, kek) == b'{"creds":{}}'
    assert crypto.account_wrapping_key(kek, "acc_a") != crypto.account_wrapping_key(kek, "acc_b")
    nonce, sealed = header_a.wrapped_key[:crypto.NONCE_LEN], header_a.wrapped_key[crypto.NONCE_LEN:]
    with pytest.raises(InvalidTag):  # the KEK itself does not unwrap it: only this account's key does
        AESGCM(kek).decrypt(nonce, sealed, crypto.wrap_aad(a, "1", crypto.WRAP_ACCOUNT_KEY))
    moved = crypto.EnvelopeHeader.from_record(header_a.to_record())
    with pytest.raises(Exception, match="does not unwrap"):  # another account's key does not either
        crypto.decrypt(moved, ciphertext_a, crypto.Binding("acc_b", 1, 1), kek)


def test_a_scheme_edited_in_the_header_does_not_open() -> None:
    kek = bytes(range(32))
    binding = crypto.Binding("acc_a", 1, 1)
    header, ciphertext = crypto.encrypt(crypto.prepare(b"{}"), binding, "1", kek)
    record = header.to_record()
    with pytest.raises(Exception, match="does not unwrap"):
        crypto.decrypt(crypto.EnvelopeHeader.from_record({**record, "wrap": crypto.WRAP_KEK}), ciphertext, binding, kek)
    with pytest.raises(Exception, match="wrap"):
        crypto.EnvelopeHeader.from_record({**record, "wrap": "rot13"})


def test_rewrapping_a_format_1_version_moves_it_to_the_account_key() -> None:
    header, ciphertext, binding, kek = _legacy()
    new_kek = bytes(range(50, 82))
    moved = crypto.rewrap(header, binding, kek, "2", new_kek)
    assert (moved.wrap_scheme, moved.kek_version, moved.nonce) == (crypto.WRAP_ACCOUNT_KEY, "2", header.nonce)
    assert crypto.decrypt(moved, ciphertext, binding, new_kek) == FIXTURE["plaintext"].encode()
