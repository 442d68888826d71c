"""Errors raised by the WhatsApp protocol core.

Every error the core raises for bad peer input, failed cryptography or misuse derives from
``ProtocolError``, so the driver can catch one class at its boundary::

    ProtocolError
    ├── FrameError               a frame is too large or the intro header is wrong
    ├── CryptoError              an AEAD tag does not verify, a key has the wrong shape, a DH is degenerate
    ├── NoiseError               a Noise handshake or transport message does not decrypt or parse
    ├── CertificateError         the server certificate chain does not verify against the root key
    ├── NodeCodecError           a binary node cannot be encoded or decoded
    │   └── JidError             a JID string or binary JID is malformed
    ├── MessageFormatError       a protobuf or a stanza lacks required parts
    │   └── PaddingError         a decrypted plaintext's random padding is malformed
    ├── IqError                  the server answered an iq with type="error" (its code and text kept)
    ├── PairingError             pairing data fails a check (HMAC, signature, key bundle, code)
    └── IllegalTransitionError   the client state machine was asked for a transition it does not allow
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error raised by ``connector.protocol``."""


class FrameError(ProtocolError):
    """Raised by the frame codec: oversized frame, bad intro header."""


class CryptoError(ProtocolError):
    """Raised by ``crypto``: AES-GCM authentication failure, malformed key, low-order X25519 point."""


class NoiseError(ProtocolError):
    """Raised when a Noise message fails to authenticate/decrypt or is incomplete."""


class CertificateError(ProtocolError):
    """Raised when the server's certificate chain is missing parts, is badly signed or out of date."""


class NodeCodecError(ProtocolError):
    """Raised when bytes are not a valid binary node, or a node cannot be encoded."""


class JidError(NodeCodecError):
    """Raised when a JID cannot be parsed or encoded."""


class MessageFormatError(ProtocolError):
    """Raised when a protobuf message or a stanza lacks a required field or child."""


class PaddingError(MessageFormatError):
    """Raised by ``padding.unpad``: pad length zero or beyond the data, or pad bytes not all equal."""


class IqError(ProtocolError):
    """Raised by the readers of iq answers (usync, pre-key bundles) when the server refused the query."""

    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(f"server refused the query: {code} {text}".rstrip())
        self.code = code
        self.text = text


class PairingError(ProtocolError):
    """Raised when pairing data fails verification (HMAC, account signature, key bundle, code)."""


class IllegalTransitionError(ProtocolError):
    """Raised by the client state machine on a transition its table does not allow; state is unchanged."""
