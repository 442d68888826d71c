"""The server certificate chain of the Noise handshake: build one (simulator) and verify one (client).

The chain (``CertChain``) holds an intermediate and a leaf certificate. Each certificate is serialized
``Details`` (serial, issuerSerial, key, notBefore, notAfter) plus an XEdDSA signature over those bytes.
Verification follows whatsmeow ``handshake.go`` ``verifyServerCert``:

1. the intermediate's details are signed by the root key, and its issuerSerial is the root's serial (0);
2. the leaf's details are signed by the intermediate's key, and its issuerSerial is the intermediate's
   serial;
3. the leaf's key is the server static key the handshake decrypted;
4. both certificates are valid at ``now`` (notBefore <= now <= notAfter, when set).

The root public key is configuration: WhatsApp's own by default, the simulator's in dev and tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import DecodeError

from connector.protocol import crypto
from connector.protocol.crypto import KeyPair, RandomSource
from connector.protocol.errors import CertificateError
from connector.protocol.proto import wa_pb2
from shared import signatures

WHATSAPP_ROOT_PUBLIC_KEY: Final = bytes.fromhex("142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b")
"""WhatsApp's long-term root ("WhatsAppLongTerm1"); whatsmeow ``WACertPubKey``, Baileys ``WA_CERT_DETAILS``."""
WHATSAPP_ROOT_SERIAL: Final = 0


@dataclass(frozen=True, slots=True)
class CertificateDetails:
    serial: int
    issuer_serial: int
    key: bytes
    not_before: int
    not_after: int


@dataclass(frozen=True, slots=True)
class VerifiedChain:
    intermediate: CertificateDetails
    leaf: CertificateDetails


def build_cert_chain(
    *,
    root: KeyPair,
    intermediate: KeyPair,
    server_static_public: bytes,
    rand: RandomSource,
    not_before: int,
    not_after: int,
    root_serial: int = WHATSAPP_ROOT_SERIAL,
    intermediate_serial: int = 1,
    leaf_serial: int = 2,
) -> bytes:
    """Serialize a chain root -> intermediate -> leaf(server static key) signed with XEdDSA."""
    intermediate_details = wa_pb2.CertChain.NoiseCertificate.Details(
        serial=intermediate_serial,
        issuerSerial=root_serial,
        key=intermediate.public,
        notBefore=not_before,
        notAfter=not_after,
    ).SerializeToString()
    leaf_details = wa_pb2.CertChain.NoiseCertificate.Details(
        serial=leaf_serial,
        issuerSerial=intermediate_serial,
        key=crypto.raw_public_key(server_static_public),
        notBefore=not_before,
        notAfter=not_after,
    ).SerializeToString()
    chain = wa_pb2.CertChain(
        intermediate=wa_pb2.CertChain.NoiseCertificate(
            details=intermediate_details,
            signature=signatures.xeddsa_sign(root.private, intermediate_details, rand),
        ),
        leaf=wa_pb2.CertChain.NoiseCertificate(
            details=leaf_details,
            signature=signatures.xeddsa_sign(intermediate.private, leaf_details, rand),
        ),
    )
    return chain.SerializeToString()


def verify_cert_chain(
    chain_bytes: bytes,
    server_static_public: bytes,
    *,
    root_public_key: bytes = WHATSAPP_ROOT_PUBLIC_KEY,
    root_serial: int = WHATSAPP_ROOT_SERIAL,
    now: float,
) -> VerifiedChain:
    """Check the chain as described in the module docstring; raise ``CertificateError`` on any failure."""
    chain = wa_pb2.CertChain()
    try:
        chain.ParseFromString(chain_bytes)
    except DecodeError as exc:
        raise CertificateError("certificate chain is not a CertChain protobuf") from exc
    parts = (chain.intermediate.details, chain.intermediate.signature, chain.leaf.details, chain.leaf.signature)
    if not all(parts):
        raise CertificateError("certificate chain is missing parts")
    if not _signed_by(root_public_key, chain.intermediate.details, chain.intermediate.signature):
        raise CertificateError("intermediate certificate is not signed by the root key")
    intermediate = _details(chain.intermediate.details)
    if intermediate.issuer_serial != root_serial:
        raise CertificateError(f"intermediate issuer serial {intermediate.issuer_serial} != root {root_serial}")
    if len(intermediate.key) != crypto.KEY_SIZE:
        raise CertificateError("intermediate certificate key is not 32 bytes")
    if not signatures.xeddsa_verify(intermediate.key, chain.leaf.details, chain.leaf.signature):
        raise CertificateError("leaf certificate is not signed by the intermediate key")
    leaf = _details(chain.leaf.details)
    if leaf.issuer_serial != intermediate.serial:
        raise CertificateError(f"leaf issuer serial {leaf.issuer_serial} != intermediate {intermediate.serial}")
    if not crypto.constant_time_equal(leaf.key, crypto.raw_public_key(server_static_public)):
        raise CertificateError("leaf certificate key is not the server's static key")
    for name, details in (("intermediate", intermediate), ("leaf", leaf)):
        if details.not_before and now < details.not_before:
            raise CertificateError(f"{name} certificate is not valid yet")
        if details.not_after and now > details.not_after:
            raise CertificateError(f"{name} certificate has expired")
    return VerifiedChain(intermediate=intermediate, leaf=leaf)


@functools.lru_cache(maxsize=16)
def _signed_by(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """XEdDSA check, memoised: the root-signed intermediate is the same on every connection for months."""
    return signatures.xeddsa_verify(public_key, message, signature)


def _details(raw: bytes) -> CertificateDetails:
    details = wa_pb2.CertChain.NoiseCertificate.Details()
    try:
        details.ParseFromString(raw)
    except DecodeError as exc:
        raise CertificateError("certificate details do not parse") from exc
    return CertificateDetails(
        serial=details.serial,
        issuer_serial=details.issuerSerial,
        key=details.key,
        not_before=details.notBefore,
        not_after=details.notAfter,
    )
