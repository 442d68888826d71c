from __future__ import annotations

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from connector.protocol import pairing
from connector.protocol.crypto import KeyPair
from connector.protocol.errors import PairingError
from connector.protocol.proto import wa_pb2
from testkit.protocol.seeded import SeededRandom
from tests.support import phone_pairing


def test_pairing_code_alphabet_and_bit_layout() -> None:
    assert pairing.generate_pairing_code(bytes) == "11111111"
    assert pairing.generate_pairing_code(lambda n: b"\xff" * n) == "ZZZZZZZZ"
    # 0x0842108421 = 00001 00001 ... in 5-bit groups -> every character is alphabet[1]
    assert pairing.generate_pairing_code(lambda n: bytes.fromhex("0842108421")) == "22222222"
    code = pairing.generate_pairing_code(SeededRandom("code"))
    assert len(code) == 8 and set(code) <= set(pairing.PAIRING_CODE_ALPHABET)
    assert not set("0OIU") & set(pairing.PAIRING_CODE_ALPHABET)
    assert pairing.format_pairing_code("ABCDEFGH") == "ABCD-EFGH"
    assert pairing.normalize_pairing_code("abcd-efgh") == "ABCDEFGH"
    with pytest.raises(PairingError):
        pairing.normalize_pairing_code("ABCD-EFG0")


def test_link_code_key_is_pbkdf2_sha256_with_131072_iterations() -> None:
    salt = bytes(range(32))
    reference = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=131072).derive(b"ABCD1234")
    assert pairing.LINK_CODE_PBKDF2_ITERATIONS == 131072
    assert pairing.derive_link_code_key("ABCD1234", salt) == reference


def test_code_pairing_both_sides_agree_on_the_adv_secret() -> None:
    rand = SeededRandom("link")
    code = pairing.generate_pairing_code(rand)
    companion_ephemeral, companion_identity = KeyPair.generate(rand), KeyPair.generate(rand)
    primary_ephemeral, primary_identity = KeyPair.generate(rand), KeyPair.generate(rand)

    hello = pairing.wrap_link_code_ephemeral(code, companion_ephemeral.public, rand)
    assert len(hello) == 80
    assert pairing.unwrap_link_code_ephemeral(code, hello) == companion_ephemeral.public  # phone side
    reply = pairing.wrap_link_code_ephemeral(code, primary_ephemeral.public, rand)
    primary_public = pairing.unwrap_link_code_ephemeral(code, reply)
    finish = pairing.companion_finish_link_code(
        companion_ephemeral=companion_ephemeral,
        primary_ephemeral_public=primary_public,
        companion_identity=companion_identity,
        primary_identity_public=primary_identity.public,
        rand=rand,
    )
    opened = phone_pairing.primary_open_key_bundle(
        primary_ephemeral=primary_ephemeral,
        companion_ephemeral_public=companion_ephemeral.public,
        primary_identity=primary_identity,
        wrapped_key_bundle=finish.wrapped_key_bundle,
    )
    assert opened.companion_identity_public == companion_identity.public
    assert opened.adv_secret == finish.adv_secret and len(finish.adv_secret) == 32


def test_wrong_code_means_the_bundle_does_not_open() -> None:
    rand = SeededRandom("wrong")
    companion_ephemeral, companion_identity = KeyPair.generate(rand), KeyPair.generate(rand)
    primary_ephemeral, primary_identity = KeyPair.generate(rand), KeyPair.generate(rand)
    reply = pairing.wrap_link_code_ephemeral("AAAAAAAA", primary_ephemeral.public, rand)
    garbled = pairing.unwrap_link_code_ephemeral("BBBBBBBB", reply)
    assert garbled != primary_ephemeral.public
    finish = pairing.companion_finish_link_code(
        companion_ephemeral=companion_ephemeral, primary_ephemeral_public=garbled,
        companion_identity=companion_identity, primary_identity_public=primary_identity.public, rand=rand,
    )
    with pytest.raises(PairingError):
        phone_pairing.primary_open_key_bundle(
            primary_ephemeral=primary_ephemeral, companion_ephemeral_public=companion_ephemeral.public,
            primary_identity=primary_identity, wrapped_key_bundle=finish.wrapped_key_bundle,
        )


def test_qr_data_roundtrip() -> None:
    qr = pairing.QrData("2@abc", b"n" * 32, b"i" * 32, b"a" * 32, "1")
    text = pairing.format_qr_data(qr)
    assert text.startswith("https://wa.me/settings/linked_devices#2@abc,")
    assert pairing.parse_qr_data(text) == qr
    with pytest.raises(PairingError):
        pairing.parse_qr_data("https://example.com/")


def _pair_success(rand: SeededRandom, *, hosted: bool = False) -> tuple[bytes, bytes, KeyPair, KeyPair]:
    adv_secret = rand(32)
    account, companion = KeyPair.generate(rand), KeyPair.generate(rand)
    container = phone_pairing.primary_sign_device_identity(
        account_identity=account, companion_identity_public=companion.public, adv_secret=adv_secret,
        raw_id=123456, key_index=4, timestamp=1_780_000_000, rand=rand, hosted=hosted,
    )
    return container, adv_secret, account, companion


@pytest.mark.parametrize("hosted", [False, True])
def test_adv_pair_success_verifies_and_reply_carries_device_signature(hosted: bool) -> None:
    rand = SeededRandom("adv")
    container, adv_secret, account, companion = _pair_success(rand, hosted=hosted)
    # HMAC is over the details with the adv secret (independent check with hashlib)
    parsed = wa_pb2.ADVSignedDeviceIdentityHMAC.FromString(container)
    prefix = b"\x06\x05" if hosted else b""
    assert parsed.hmac == hmac.new(adv_secret, prefix + parsed.details, hashlib.sha256).digest()

    verified = pairing.companion_verify_device_identity(container, adv_secret=adv_secret, identity=companion, rand=rand)
    assert verified.key_index == 4 and verified.raw_id == 123456
    assert verified.account_signature_key == account.public
    reply = wa_pb2.ADVSignedDeviceIdentity.FromString(verified.reply_identity)
    assert not reply.HasField("accountSignatureKey") and len(reply.deviceSignature) == 64
    assert wa_pb2.ADVSignedDeviceIdentity.FromString(verified.account).accountSignatureKey == account.public
    assert phone_pairing.primary_verify_device_signature(
        verified.reply_identity, account_signature_key=account.public, companion_identity_public=companion.public
    ) == 4


def test_adv_rejects_wrong_secret_tampered_details_and_foreign_identity() -> None:
    rand = SeededRandom("adv-bad")
    container, adv_secret, account, companion = _pair_success(rand)
    with pytest.raises(PairingError, match="HMAC"):
        pairing.companion_verify_device_identity(container, adv_secret=rand(32), identity=companion, rand=rand)
    with pytest.raises(PairingError, match="account signature"):
        pairing.companion_verify_device_identity(
            container, adv_secret=adv_secret, identity=KeyPair.generate(rand), rand=rand
        )
    with pytest.raises(PairingError):
        pairing.companion_verify_device_identity(b"\xff\xff", adv_secret=adv_secret, identity=companion, rand=rand)
    verified = pairing.companion_verify_device_identity(container, adv_secret=adv_secret, identity=companion, rand=rand)
    with pytest.raises(PairingError, match="device signature"):
        phone_pairing.primary_verify_device_signature(
            verified.reply_identity, account_signature_key=account.public,
            companion_identity_public=KeyPair.generate(rand).public,
        )
