"""XEdDSA signatures with Curve25519 keys (Signal's ``calculateSignature`` / ``verifySignature``).

The one implementation: the auth state signs and checks its signed pre-keys with it
(:mod:`shared.authstate`) and the protocol core its certificates, pairing and Signal messages
(:mod:`connector.protocol.crypto` re-exports both functions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import xeddsa

KEY_LEN: Final = 32
SIGNATURE_LEN: Final = 64
#: The type byte of Signal's 33-byte serialised Curve25519 public key.
DJB_KEY_TYPE: Final = 0x05


def xeddsa_sign(private: bytes, message: bytes, rand: Callable[[int], bytes]) -> bytes:
    """A 64-byte XEdDSA signature of ``message`` with a Curve25519 private key.

    The key is clamped and negated if needed so that the matching Ed25519 key has sign bit 0; the
    signature's top bit then stays clear, which is what libsignal verifiers expect.
    """
    forced = xeddsa.priv_force_sign(private, False)
    return bytes(xeddsa.ed25519_priv_sign(forced, message, rand(64)))


def xeddsa_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the signature of ``message`` by ``public`` (raw or 0x05-prefixed).

    XEdDSA signers force the Ed25519 sign bit to 0; older signers (curve25519-js, used by
    libsignal-node and so by Baileys) keep it and carry it in the top bit of the signature's last
    byte. Verifiers take it from there, as libsignal does, which accepts both.
    """
    raw = public[1:] if len(public) == KEY_LEN + 1 and public[0] == DJB_KEY_TYPE else public
    if len(raw) != KEY_LEN or len(signature) != SIGNATURE_LEN:
        return False
    sign_bit = bool(signature[-1] & 0x80)
    ed_signature = signature[:-1] + bytes([signature[-1] & 0x7F])
    try:
        ed_public = xeddsa.curve25519_pub_to_ed25519_pub(raw, sign_bit)
        return bool(xeddsa.ed25519_verify(ed_signature, ed_public, message))
    except (xeddsa.XEdDSAException, ValueError):
        return False
