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
    KeyPair,
    SignedKeyPair,
    validate_state,
    xeddsa_verify,
)
from shared.bufferjson import JsonValue, dumps, revive
from shared.errors import StateTooLargeError, StateValidationError


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
    identity, other = KeyPair.generate(rand), KeyPair.generate(rand)
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
    pair = KeyPair.generate(seeded())
    assert pair.private.hex() not in repr(pair)
    state = AuthState.generate(seeded())
    assert state.creds.noise_key.private.hex() not in repr(state)
