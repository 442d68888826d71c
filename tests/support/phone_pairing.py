"""The phone's half of linking, for tests of keeper's (the companion's) half.

``connector.protocol.pairing`` is what keeper runs; a test that plays the phone against it needs the
other side: open ``companion_finish``'s key bundle, sign the device identity for ``pair-success``,
check the ``pair-device-sign`` reply. The simulator's phones have their own implementation
(``simulator.pairing``, ``simulator.adv``), written apart so each side checks the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from connector.protocol import crypto
from connector.protocol.crypto import KeyPair, RandomSource
from connector.protocol.errors import CryptoError, PairingError
from connector.protocol.pairing import (
    ADV_ACCOUNT_SIGNATURE_PREFIX,
    ADV_DEVICE_SIGNATURE_PREFIX,
    ADV_HOSTED_ACCOUNT_SIGNATURE_PREFIX,
    ADV_SECRET_INFO,
    LINK_CODE_KEY_BUNDLE_INFO,
)
from connector.protocol.proto import wa_pb2
from shared import signatures


@dataclass(frozen=True, slots=True)
class OpenedKeyBundle:
    companion_identity_public: bytes
    adv_secret: bytes

    def __repr__(self) -> str:
        return f"OpenedKeyBundle(companion_identity_public={self.companion_identity_public.hex()})"


def primary_open_key_bundle(
    *,
    primary_ephemeral: KeyPair,
    companion_ephemeral_public: bytes,
    primary_identity: KeyPair,
    wrapped_key_bundle: bytes,
) -> OpenedKeyBundle:
    """Open ``companion_finish`` on the phone; checks the bundle names this phone's identity key."""
    if len(wrapped_key_bundle) < 32 + 12 + 16 + 96:
        raise PairingError("wrapped key bundle is too short")
    salt, nonce, encrypted = wrapped_key_bundle[:32], wrapped_key_bundle[32:44], wrapped_key_bundle[44:]
    try:
        ephemeral_shared = crypto.x25519(primary_ephemeral.private, companion_ephemeral_public)
        key = crypto.hkdf_sha256(ephemeral_shared, 32, salt=salt, info=LINK_CODE_KEY_BUNDLE_INFO)
        plaintext = crypto.aes_gcm_decrypt(key, nonce, encrypted)
    except CryptoError as exc:
        raise PairingError("key bundle does not open (wrong code or keys)") from exc
    if len(plaintext) != 96:
        raise PairingError("key bundle has the wrong size")
    companion_identity_public, named_primary, bundle_random = plaintext[:32], plaintext[32:64], plaintext[64:]
    if not crypto.constant_time_equal(named_primary, primary_identity.public):
        raise PairingError("key bundle names another phone identity")
    identity_shared = crypto.x25519(primary_identity.private, companion_identity_public)
    adv_secret = crypto.hkdf_sha256(ephemeral_shared + identity_shared + bundle_random, 32, info=ADV_SECRET_INFO)
    return OpenedKeyBundle(companion_identity_public, adv_secret)


def primary_sign_device_identity(
    *,
    account_identity: KeyPair,
    companion_identity_public: bytes,
    adv_secret: bytes,
    raw_id: int,
    key_index: int,
    timestamp: int,
    rand: RandomSource,
    hosted: bool = False,
) -> bytes:
    """The phone's ``device-identity`` content for ``pair-success``: a serialized ADVSignedDeviceIdentityHMAC."""
    encryption = wa_pb2.HOSTED if hosted else wa_pb2.E2EE
    details = wa_pb2.ADVDeviceIdentity(
        rawId=raw_id, timestamp=timestamp, keyIndex=key_index, accountType=encryption, deviceType=encryption
    ).SerializeToString()
    prefix = ADV_HOSTED_ACCOUNT_SIGNATURE_PREFIX if hosted else ADV_ACCOUNT_SIGNATURE_PREFIX
    message = prefix + details + crypto.raw_public_key(companion_identity_public)
    signed = wa_pb2.ADVSignedDeviceIdentity(
        details=details,
        accountSignatureKey=account_identity.public,
        accountSignature=signatures.xeddsa_sign(account_identity.private, message, rand),
    ).SerializeToString()
    hmac_prefix = ADV_HOSTED_ACCOUNT_SIGNATURE_PREFIX if hosted else b""
    container = wa_pb2.ADVSignedDeviceIdentityHMAC(
        details=signed, hmac=crypto.hmac_sha256(adv_secret, hmac_prefix + signed)
    )
    if hosted:
        container.accountType = wa_pb2.HOSTED
    return container.SerializeToString()


def primary_verify_device_signature(
    reply_identity: bytes, *, account_signature_key: bytes, companion_identity_public: bytes
) -> int:
    """Check the companion's ``pair-device-sign`` reply on the phone; returns its key index."""
    try:
        signed = wa_pb2.ADVSignedDeviceIdentity.FromString(reply_identity)
        details = wa_pb2.ADVDeviceIdentity.FromString(signed.details)
    except DecodeError as exc:
        raise PairingError("signed device identity does not parse") from exc
    message = (
        ADV_DEVICE_SIGNATURE_PREFIX
        + signed.details
        + crypto.raw_public_key(companion_identity_public)
        + crypto.raw_public_key(account_signature_key)
    )
    if not signatures.xeddsa_verify(companion_identity_public, message, signed.deviceSignature):
        raise PairingError("device signature does not verify")
    return details.keyIndex
