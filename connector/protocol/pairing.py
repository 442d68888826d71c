"""The cryptography of linking a companion device, for both halves.

These are what keeper (the linked device) runs; the phone's half is the simulator's (``simulator.pairing``,
``simulator.adv``) and, for tests of this module, ``tests.support.phone_pairing``. Facts from whatsmeow ``pair.go`` /
``pair-code.go`` and Baileys ``validate-connection.ts`` / ``messages-recv.ts``:

Pairing by code
    The companion picks an 8-character code (5 random bytes in Crockford-like base32), derives
    ``PBKDF2-SHA256(code, salt, 131072 iterations)`` and sends its ephemeral public key wrapped as
    ``salt(32) | iv(16) | AES-CTR(key, iv, public)`` in ``companion_hello``. The phone answers with its own
    ephemeral key wrapped the same way and its identity key. The companion then sends ``companion_finish``:
    ``salt(32) | nonce(12) | AES-GCM(k, companion identity | primary identity | random(32))`` where
    ``k = HKDF(ECDH(ephemerals), salt, "link_code_pairing_key_bundle_encryption_key")``; both sides derive
    ``adv_secret = HKDF(ECDH(ephemerals) | ECDH(identities) | random, info="adv_secret")``.

Pairing by QR
    The QR text is ``https://wa.me/settings/linked_devices#ref,noise,identity,adv_secret,platform`` (base64
    keys); the phone learns the adv secret from it.

Pair success (ADV)
    The phone sends ``ADVSignedDeviceIdentityHMAC``: ``details`` is a serialized
    ``ADVSignedDeviceIdentity`` and ``hmac = HMAC-SHA256(adv_secret, details)``. Inside, the account
    signature covers ``6,0 | device details | companion identity key``; the companion adds its device
    signature over ``6,1 | device details | companion identity key | account signature key`` and replies
    with the identity minus the account signature key. Hosted accounts use prefixes 6,5 / 6,6.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final, TypeVar

from google.protobuf.message import DecodeError, Message

from connector.protocol import crypto
from connector.protocol.crypto import KeyPair, RandomSource
from connector.protocol.errors import CryptoError, PairingError
from connector.protocol.proto import wa_pb2
from shared import signatures

PAIRING_CODE_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"
PAIRING_CODE_LENGTH: Final = 8
LINK_CODE_PBKDF2_ITERATIONS: Final = 2 << 16
LINK_CODE_KEY_BUNDLE_INFO: Final = b"link_code_pairing_key_bundle_encryption_key"
ADV_SECRET_INFO: Final = b"adv_secret"
WRAPPED_EPHEMERAL_SIZE: Final = 80

ADV_ACCOUNT_SIGNATURE_PREFIX: Final = b"\x06\x00"
ADV_DEVICE_SIGNATURE_PREFIX: Final = b"\x06\x01"
ADV_HOSTED_ACCOUNT_SIGNATURE_PREFIX: Final = b"\x06\x05"
ADV_HOSTED_DEVICE_SIGNATURE_PREFIX: Final = b"\x06\x06"

QR_URL_PREFIX: Final = "https://wa.me/settings/linked_devices#"


# ------------------------------------------------------------------------------------ pairing code


def generate_pairing_code(rand: RandomSource) -> str:
    """Eight characters from ``PAIRING_CODE_ALPHABET``, 5 bits each from 5 random bytes."""
    value = int.from_bytes(rand(5), "big")
    return "".join(PAIRING_CODE_ALPHABET[(value >> (35 - 5 * i)) & 31] for i in range(PAIRING_CODE_LENGTH))


def format_pairing_code(code: str) -> str:
    """How the code is shown to a person: ``ABCD-EFGH``."""
    return f"{code[:4]}-{code[4:]}"


def normalize_pairing_code(text: str) -> str:
    """Accept what a person types (``abcd-efgh``) and return the 8-character code; raise ``PairingError``."""
    code = text.replace("-", "").replace(" ", "").upper()
    if len(code) != PAIRING_CODE_LENGTH or any(c not in PAIRING_CODE_ALPHABET for c in code):
        raise PairingError("pairing code must be 8 characters of the pairing alphabet")
    return code


def derive_link_code_key(code: str, salt: bytes) -> bytes:
    return crypto.pbkdf2_sha256(code.encode("ascii"), salt, LINK_CODE_PBKDF2_ITERATIONS, 32)


def wrap_link_code_ephemeral(code: str, ephemeral_public: bytes, rand: RandomSource) -> bytes:
    """``salt | iv | AES-CTR(PBKDF2(code, salt), iv, public)``: 80 bytes, sent by either side."""
    salt = rand(32)
    iv = rand(16)
    return salt + iv + crypto.aes_ctr(derive_link_code_key(code, salt), iv, ephemeral_public)


def unwrap_link_code_ephemeral(code: str, wrapped: bytes) -> bytes:
    """Inverse of ``wrap_link_code_ephemeral``. A wrong code yields a wrong (but well-formed) key."""
    if len(wrapped) < WRAPPED_EPHEMERAL_SIZE:
        raise PairingError(f"wrapped ephemeral key has {len(wrapped)} bytes, expected {WRAPPED_EPHEMERAL_SIZE}")
    salt, iv, encrypted = wrapped[:32], wrapped[32:48], wrapped[48:80]
    return crypto.aes_ctr(derive_link_code_key(code, salt), iv, encrypted)


@dataclass(frozen=True, slots=True)
class LinkCodeFinish:
    wrapped_key_bundle: bytes
    adv_secret: bytes

    def __repr__(self) -> str:
        return "LinkCodeFinish(<secret>)"


def _adv_secret(ephemeral_shared: bytes, identity_shared: bytes, bundle_random: bytes) -> bytes:
    return crypto.hkdf_sha256(ephemeral_shared + identity_shared + bundle_random, 32, info=ADV_SECRET_INFO)


def companion_finish_link_code(
    *,
    companion_ephemeral: KeyPair,
    primary_ephemeral_public: bytes,
    companion_identity: KeyPair,
    primary_identity_public: bytes,
    rand: RandomSource,
) -> LinkCodeFinish:
    """Build the ``link_code_pairing_wrapped_key_bundle`` and derive the adv secret (companion side)."""
    try:
        ephemeral_shared = crypto.x25519(companion_ephemeral.private, primary_ephemeral_public)
        identity_shared = crypto.x25519(companion_identity.private, primary_identity_public)
    except CryptoError as exc:
        raise PairingError(f"bad key from the phone: {exc}") from exc
    bundle_random = rand(32)
    salt = rand(32)
    nonce = rand(12)
    key = crypto.hkdf_sha256(ephemeral_shared, 32, salt=salt, info=LINK_CODE_KEY_BUNDLE_INFO)
    plaintext = companion_identity.public + crypto.raw_public_key(primary_identity_public) + bundle_random
    wrapped = salt + nonce + crypto.aes_gcm_encrypt(key, nonce, plaintext)
    return LinkCodeFinish(wrapped, _adv_secret(ephemeral_shared, identity_shared, bundle_random))


# ------------------------------------------------------------------------------------------------ QR


@dataclass(frozen=True, slots=True)
class QrData:
    ref: str
    noise_public: bytes
    identity_public: bytes
    adv_secret: bytes
    platform_id: str

    def __repr__(self) -> str:
        return f"QrData(ref={self.ref!r}, platform_id={self.platform_id!r})"


def format_qr_data(qr: QrData) -> str:
    fields = [
        qr.ref,
        base64.b64encode(qr.noise_public).decode(),
        base64.b64encode(qr.identity_public).decode(),
        base64.b64encode(qr.adv_secret).decode(),
        qr.platform_id,
    ]
    return QR_URL_PREFIX + ",".join(fields)


def parse_qr_data(text: str) -> QrData:
    """What the phone reads from the QR code; raises ``PairingError`` when it is not a linking QR."""
    body = text.removeprefix(QR_URL_PREFIX)
    parts = body.split(",")
    if len(parts) < 4:
        raise PairingError("QR text does not have ref,noise,identity,adv fields")
    try:
        noise, identity, adv = (base64.b64decode(p, validate=True) for p in parts[1:4])
    except (binascii.Error, ValueError) as exc:
        raise PairingError("QR text has bad base64") from exc
    return QrData(parts[0], noise, identity, adv, parts[4] if len(parts) > 4 else "")


# ----------------------------------------------------------------------------------------------- ADV


@dataclass(frozen=True, slots=True)
class VerifiedDeviceIdentity:
    """Result of checking ``pair-success`` on the companion.

    ``account`` is the full ADVSignedDeviceIdentity with our device signature (to keep in credentials);
    ``reply_identity`` is the same without the account signature key (the ``pair-device-sign`` content).
    """

    account: bytes
    reply_identity: bytes
    account_signature_key: bytes
    key_index: int
    raw_id: int


def companion_verify_device_identity(
    container_bytes: bytes, *, adv_secret: bytes, identity: KeyPair, rand: RandomSource
) -> VerifiedDeviceIdentity:
    """Check HMAC and account signature of ``pair-success``, then sign as the device."""
    container = _parse(wa_pb2.ADVSignedDeviceIdentityHMAC, container_bytes, "device identity container")
    hosted_account = container.HasField("accountType") and container.accountType == wa_pb2.HOSTED
    hmac_prefix = ADV_HOSTED_ACCOUNT_SIGNATURE_PREFIX if hosted_account else b""
    expected = crypto.hmac_sha256(adv_secret, hmac_prefix + container.details)
    if not container.hmac or not crypto.constant_time_equal(expected, container.hmac):
        raise PairingError("device identity HMAC does not match the adv secret")
    signed = _parse(wa_pb2.ADVSignedDeviceIdentity, container.details, "signed device identity")
    details = _parse(wa_pb2.ADVDeviceIdentity, signed.details, "device identity details")
    if len(signed.accountSignatureKey) != 32 or len(signed.accountSignature) != 64:
        raise PairingError("account signature or key has the wrong size")
    hosted_device = details.deviceType == wa_pb2.HOSTED
    prefix = ADV_HOSTED_ACCOUNT_SIGNATURE_PREFIX if hosted_device else ADV_ACCOUNT_SIGNATURE_PREFIX
    if not signatures.xeddsa_verify(
        signed.accountSignatureKey, prefix + signed.details + identity.public, signed.accountSignature
    ):
        raise PairingError("account signature does not verify")
    device_message = ADV_DEVICE_SIGNATURE_PREFIX + signed.details + identity.public + signed.accountSignatureKey
    signed.deviceSignature = signatures.xeddsa_sign(identity.private, device_message, rand)
    account = signed.SerializeToString()
    signed.ClearField("accountSignatureKey")
    return VerifiedDeviceIdentity(
        account=account,
        reply_identity=signed.SerializeToString(),
        account_signature_key=wa_pb2.ADVSignedDeviceIdentity.FromString(account).accountSignatureKey,
        key_index=details.keyIndex,
        raw_id=details.rawId,
    )


_M = TypeVar("_M", bound=Message)


def _parse(cls: type[_M], data: bytes, what: str) -> _M:
    message = cls()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise PairingError(f"{what} does not parse") from exc
    return message
