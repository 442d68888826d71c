"""Auth-state model: generation as Baileys' initAuthCreds, typed views, validation."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from shared.authstate import (
    MAX_STATE_BYTES,
    AuthState,
    Contact,
    Credentials,
    SignedKeyPair,
    StoredKeyPair,
    validate_state,
)
from shared.bufferjson import JsonValue, dumps, revive
from shared.errors import StateTooLargeError, StateValidationError
from shared.signatures import xeddsa_verify


def seeded(seed: int = 1) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


def test_generated_creds_have_baileys_shape_and_valid_signed_pre_key() -> None:
    creds = Credentials.generate(seeded())
    data = creds.as_json()
    assert {"noiseKey", "pairingEphemeralKeyPair", "signedIdentityKey", "signedPreKey", "registrationId",
            "advSecretKey", "nextPreKeyId", "firstUnuploadedPreKeyId", "registered"} <= set(data)
    assert creds.registered is False
    assert 0 <= creds.registration_id <= 0x3FFF
    assert len(creds.adv_secret_key_bytes) == 32
    spk = creds.signed_pre_key
    assert spk.key_id == 1
    assert spk.verify(creds.signed_identity_key.public)
    # the signature covers the 0x05-prefixed key: the raw key must not verify
    assert not xeddsa_verify(creds.signed_identity_key.public, spk.key_pair.public, spk.signature)
    validate_state(AuthState(creds=creds))


def test_generation_is_deterministic_under_injected_randomness() -> None:
    assert Credentials.generate(seeded(5)) == Credentials.generate(seeded(5))
    assert Credentials.generate(seeded(5)) != Credentials.generate(seeded(6))


def test_signature_fails_for_other_identity_key() -> None:
    rand = seeded(2)
    identity, other = StoredKeyPair.generate(rand), StoredKeyPair.generate(rand)
    spk = SignedKeyPair.generate(identity, 7, rand)
    assert spk.verify(identity.public)
    assert not spk.verify(other.public)


def test_unknown_fields_survive_json_round_trip_and_updates() -> None:
    creds = Credentials.generate(seeded()).updated({"lastPropHash": "abc", "futureField": {"a": [1]}})
    state = AuthState(creds=creds, keys={"session": {"4070.0": b"\x01"}, "weird-new": {"x": "y"}})
    back = AuthState.from_json(revive(dumps(state.to_json())))
    assert back.creds == creds
    assert back.keys == state.keys
    assert back.creds.get("futureField") == {"a": [1]}
    assert back.creds.updated({"lastPropHash": None}).get("lastPropHash") is None


def test_registered_state_requires_me() -> None:
    creds = Credentials.generate(seeded()).updated({"registered": True})
    with pytest.raises(StateValidationError, match="'me'"):
        validate_state(AuthState(creds=creds))
    me = Contact(id="40700000001:3@s.whatsapp.net").to_json()
    validate_state(AuthState(creds=creds.updated({"me": me})))


@pytest.mark.parametrize(
    "field", ["noiseKey", "signedIdentityKey", "signedPreKey", "registrationId", "advSecretKey"]
)
def test_each_required_credential_is_checked(field: str) -> None:
    creds = Credentials.generate(seeded()).updated({field: None})
    with pytest.raises(StateValidationError, match=field):
        validate_state(AuthState(creds=creds))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"noiseKey": {"public": b"short", "private": b"\x00" * 32}}, "noiseKey.public"),
        ({"registrationId": 70000}, "registrationId"),
        ({"advSecretKey": "AAAA"}, "advSecretKey"),
        ({"signedPreKey": {"keyPair": None}}, "signedPreKey"),
    ],
)
def test_malformed_credentials_are_refused(changes: dict[str, JsonValue], message: str) -> None:
    creds = Credentials.generate(seeded()).updated(changes)
    with pytest.raises(StateValidationError, match=message):
        validate_state(AuthState(creds=creds))


def test_size_limit() -> None:
    with pytest.raises(StateTooLargeError):
        validate_state(AuthState.generate(seeded()), serialised_size=MAX_STATE_BYTES + 1)


def test_account_accepts_protobufjs_base64_text() -> None:
    creds = Credentials.generate(seeded()).updated(
        {"account": {"details": "AQI=", "accountSignatureKey": b"\x03", "accountSignature": "BA==",
                     "deviceSignature": "BQ=="}}
    )
    account = creds.account
    assert account is not None
    assert (account.details, account.account_signature_key) == (b"\x01\x02", b"\x03")


def test_repr_never_shows_private_keys() -> None:
    pair = StoredKeyPair.generate(seeded())
    assert pair.private.hex() not in repr(pair)
    state = AuthState.generate(seeded())
    assert state.creds.noise_key.private.hex() not in repr(state)


# Signatures made by libsignal-node 6.0.0 (curve25519-js), the signer Baileys uses: (identity key,
# signed message = 0x05-prefixed pre-key, signature). The first carries the Ed25519 sign bit in the top
# bit of its last byte, as curve25519-js does; the second has it clear.
LIBSIGNAL_NODE_VECTORS = [
    ("0506a02b0f282dbdb7478ad4aa32f92f4fc2a2a5ac501175014ca2c1cbf1452836",
     "05ad949ca8f9c9afcf0c166f6c738fce36e63e1257c7c41e522b39fc1a65a79a7e",
     "2524711e6793a3c78edbe18caaea56ce5075851d3feb8333b76a923bf4a23fb5"
     "a5a15ed09a6bd3a62c6b386ca54b0b3df12c73d843839a05e9380548a80d7688"),
    ("05f1d0da65e9dfd83b36781641bd0708765bf3752850b282416e1bf6dbda450a3b",
     "050ada0c9d2879270683ffc848a61bf01898c64f53201bbdd7c292da3c4fc3720e",
     "6172666bdc45ad09a5c1013ff3a0c5a676bbf58fba1b692c747e779805ed51f5"
     "bcd8db5c7fdd022c72a4fe6949c80595384bffd06741b88a94026d219cd80600"),
]


@pytest.mark.parametrize(("public", "message", "signature"), LIBSIGNAL_NODE_VECTORS)
def test_verifies_libsignal_node_signatures(public: str, message: str, signature: str) -> None:
    pub, msg, sig = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert xeddsa_verify(pub, msg, sig)
    assert xeddsa_verify(pub[1:], msg, sig)  # raw 32-byte form of the same key
    assert not xeddsa_verify(pub, msg[:-1] + bytes([msg[-1] ^ 1]), sig)
    assert not xeddsa_verify(pub, msg, sig[:-1] + bytes([sig[-1] ^ 0x80]))
