"""What the simulated phone (the primary device) computes when it links a companion. Pure functions.

QR pairing: the companion shows ``ref,noiseKeyB64,identityKeyB64,advSecretB64`` (Baileys; whatsmeow
adds a ``https://wa.me/settings/linked_devices#`` prefix and a fifth client-type field). The phone
scans it and answers with the ADV signed device identity, authenticated with that adv secret.

Pairing by code (``link_code_companion_reg``), the phone's half:

1. companion_hello carries the companion's ephemeral public key wrapped with the 8-character code:
   ``salt(32) | iv(16) | AES-256-CTR(PBKDF2-SHA256(code, salt, 131072 iterations), iv, pub)(32)``.
2. When the user types the code, the phone unwraps that key, makes its own ephemeral key pair and
   sends it back wrapped the same way, with its identity public key (``primary_identity_pub``).
3. companion_finish carries ``salt(32) | nonce(12) | AES-GCM(key, nonce, companionIdentity |
   primaryIdentity | advRandom(32))`` where the key is HKDF-SHA256(X25519(ephemerals), salt,
   "link_code_pairing_key_bundle_encryption_key"). The adv secret is HKDF-SHA256(ephemeral shared |
   X25519(primary identity, companion identity) | advRandom, no salt, "adv_secret").

ADV (account device verification): ``ADVDeviceIdentity{rawId, timestamp, keyIndex}`` is signed by the
account key over ``6,0 | details | companion identity``, wrapped in ``ADVSignedDeviceIdentity`` and
HMAC-SHA256'd with the adv secret (``ADVSignedDeviceIdentityHMAC``). The companion returns the signed
identity with its device signature over ``6,1 | details | companion identity | account key``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag

from shared import signatures
from simulator import crypto
from simulator.errors import InvalidRequestError, PairingError

LINK_CODE_LENGTH = 8
LINK_CODE_PBKDF2_ITERATIONS = 2 << 16  # 131072, whatsmeow pair-code.go / Baileys derivePairingCodeKey
WRAPPED_EPHEMERAL_SIZE = 80
KEY_BUNDLE_INFO = b"link_code_pairing_key_bundle_encryption_key"
ADV_SECRET_INFO = b"adv_secret"
ADV_ACCOUNT_SIGNATURE_PREFIX = bytes([6, 0])
ADV_DEVICE_SIGNATURE_PREFIX = bytes([6, 1])
QR_URL_PREFIX = "https://wa.me/settings/linked_devices#"

_LINK_CODE = re.compile(r"^[0-9A-Z]{8}$")


def normalize_link_code(code: str) -> str:
    """``abcd-efgh`` -> ``ABCDEFGH``; raises InvalidRequestError unless 8 letters/digits remain."""
    cleaned = re.sub(r"[\s\-]", "", code).upper()
    if not _LINK_CODE.match(cleaned):
        raise InvalidRequestError("a pairing code is 8 letters or digits, e.g. ABCD-EFGH")
    return cleaned


@dataclass(frozen=True)
class QrContent:
    ref: bytes
    noise_public: bytes
    identity_public: bytes
    adv_secret: bytes

    def __repr__(self) -> str:  # the adv secret authenticates the pairing: never print it
        return f"QrContent(ref={self.ref!r})"


def parse_qr(qr: str) -> QrContent:
    """Parse a pairing QR string as Baileys or whatsmeow build it."""
    parts = qr.strip().removeprefix(QR_URL_PREFIX).split(",")
    if len(parts) not in (4, 5):
        raise InvalidRequestError("QR must be ref,noiseKeyB64,identityKeyB64,advSecretB64[,clientType]")
    ref, noise_b64, identity_b64, adv_b64 = parts[:4]
    try:
        noise = base64.b64decode(noise_b64, validate=True)
        identity = base64.b64decode(identity_b64, validate=True)
        adv = base64.b64decode(adv_b64, validate=True)
    except binascii.Error:
        raise InvalidRequestError("QR keys are not base64") from None
    if not ref or len(noise) != crypto.KEY_SIZE or len(identity) != crypto.KEY_SIZE or len(adv) != 32:
        raise InvalidRequestError("QR fields have the wrong sizes")
    return QrContent(ref.encode(), noise, identity, adv)


def _link_code_key(code: str, salt: bytes) -> bytes:
    return crypto.pbkdf2_sha256(code.encode("ascii"), salt, LINK_CODE_PBKDF2_ITERATIONS, 32)


def unwrap_ephemeral(code: str, wrapped: bytes) -> bytes:
    """The public key inside a code-wrapped ephemeral (a wrong code yields a wrong key, silently)."""
    if len(wrapped) < WRAPPED_EPHEMERAL_SIZE:
        raise PairingError(
            f"wrapped ephemeral key is {len(wrapped)} bytes, expected {WRAPPED_EPHEMERAL_SIZE}"
        )
    salt, iv, sealed = wrapped[:32], wrapped[32:48], wrapped[48:80]
    return crypto.aes_ctr(_link_code_key(code, salt), iv, sealed)


def wrap_ephemeral(code: str, public: bytes, random_bytes: crypto.RandomBytes) -> bytes:
    salt, iv = random_bytes(32), random_bytes(16)
    return salt + iv + crypto.aes_ctr(_link_code_key(code, salt), iv, public)


@dataclass(frozen=True)
class PrimaryHello:
    """The phone's reply to a typed code: what it keeps, and what it sends to the companion."""

    ephemeral_private: bytes
    companion_ephemeral_public: bytes
    wrapped_primary_ephemeral: bytes

    def __repr__(self) -> str:
        return "PrimaryHello(...)"


def primary_hello(
    code: str, wrapped_companion_ephemeral: bytes, random_bytes: crypto.RandomBytes
) -> PrimaryHello:
    companion_public = unwrap_ephemeral(code, wrapped_companion_ephemeral)
    private, public = crypto.x25519_keypair(random_bytes)
    return PrimaryHello(private, companion_public, wrap_ephemeral(code, public, random_bytes))


def open_key_bundle(
    hello: PrimaryHello,
    wrapped_key_bundle: bytes,
    *,
    phone_identity_private: bytes,
    phone_identity_public: bytes,
    companion_identity_public: bytes,
) -> bytes:
    """Check companion_finish's key bundle and return the adv secret both sides now share.

    Raises PairingError when the bundle does not decrypt (typically: the code typed on the phone
    was not the code the companion showed) or names other identity keys.
    """
    if len(wrapped_key_bundle) < 32 + 12 + 16:
        raise PairingError("key bundle too short")
    salt, nonce, sealed = wrapped_key_bundle[:32], wrapped_key_bundle[32:44], wrapped_key_bundle[44:]
    try:
        ephemeral_shared = crypto.x25519(hello.ephemeral_private, hello.companion_ephemeral_public)
    except ValueError:
        raise PairingError("companion ephemeral key is not a valid key (wrong pairing code?)") from None
    key = crypto.hkdf_sha256(ephemeral_shared, 32, salt=salt, info=KEY_BUNDLE_INFO)
    try:
        bundle = crypto.aes_gcm_decrypt(key, nonce, sealed)
    except InvalidTag:
        raise PairingError("key bundle does not decrypt (wrong pairing code?)") from None
    if len(bundle) != 96:
        raise PairingError(f"key bundle is {len(bundle)} bytes, expected 96")
    companion_identity, primary_identity, adv_random = bundle[:32], bundle[32:64], bundle[64:]
    if not crypto.constant_time_equal(companion_identity, companion_identity_public):
        raise PairingError("key bundle names another companion identity")
    if not crypto.constant_time_equal(primary_identity, phone_identity_public):
        raise PairingError("key bundle names another primary identity")
    identity_shared = crypto.x25519(phone_identity_private, companion_identity)
    return crypto.hkdf_sha256(
        ephemeral_shared + identity_shared + adv_random, 32, salt=None, info=ADV_SECRET_INFO
    )


def signed_pre_key_valid(identity_public: bytes, pre_key_public: bytes, signature: bytes) -> bool:
    """Signal signs the 33-byte serialized key (0x05 prefix) with the identity key."""
    raw = crypto.raw_public_key(pre_key_public)
    if raw is None:
        return False
    return signatures.xeddsa_verify(identity_public, bytes([crypto.DJB_KEY_TYPE]) + raw, signature)
