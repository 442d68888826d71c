"""Errors raised by the Signal layer.

Every failure the Signal layer reports, whatever bytes a peer sent and whatever a stored record
holds, is one of these; all of them are :class:`~connector.protocol.errors.ProtocolError`::

    ProtocolError
    └── SignalError                  base class of the Signal layer
        ├── InvalidMessageError      bytes that are not a Signal message (version, protobuf, lengths)
        │   └── InvalidKeyError      a key in a message or bundle is not a 33-byte 0x05 Curve25519 key
        ├── BadMacError              the message's MAC or signature does not verify, or it does not decrypt
        ├── NoSessionError           a ``msg`` from a device we hold no session (or no open session) for
        │   └── NoMatchingSessionError   every session we hold for the device failed ("No matching sessions")
        ├── DuplicateMessageError    the message key was used already ("Key used already or never filled")
        ├── TooFarAheadError         the message is over 2000 keys past the chain ("Over 2000 messages ...")
        ├── ChainClosedError         the message needs keys of a closed chain that were never kept
        ├── PreKeyError              a ``pkmsg`` names a one-time or signed pre-key we do not have
        ├── UntrustedIdentityError   a bundle's signed pre-key signature or identity does not check out
        ├── NoSenderKeyError         an ``skmsg`` from a sender (or key id) we hold no sender key for
        └── InvalidRecordError       a stored record (session, sender key, identity) is malformed

The names follow what Baileys logs (quoted above) so that a failure reads the same on both sides.
The connector maps :class:`DuplicateMessageError` to an ack with error 487 and every other one to a
retry receipt, as Baileys does (SIGNAL.md section 4).
"""

from __future__ import annotations

from connector.protocol.errors import ProtocolError


class SignalError(ProtocolError):
    """Base class of every error the Signal layer raises."""


class InvalidMessageError(SignalError):
    """Raised when bytes are not a well-formed Signal message of the expected kind."""


class InvalidKeyError(InvalidMessageError):
    """Raised when a public key is not a 33-byte ``0x05`` key (or a 32-byte raw one where allowed)."""


class BadMacError(SignalError):
    """Raised when a MAC or signature does not verify, or AES-CBC padding is wrong after it."""


class NoSessionError(SignalError):
    """Raised when a ``msg`` arrives (or an encrypt is asked) for a device without a usable session."""


class NoMatchingSessionError(NoSessionError):
    """Raised when every session held for the device failed to decrypt the message."""


class DuplicateMessageError(SignalError):
    """Raised when the message's key was used already: the message was decrypted before."""


class TooFarAheadError(SignalError):
    """Raised when a message is more than 2000 keys ahead of its chain."""


class ChainClosedError(SignalError):
    """Raised when a message needs a key of a closed chain that was never derived."""


class PreKeyError(SignalError):
    """Raised when a ``pkmsg`` names a pre-key or signed pre-key that this device does not have."""


class UntrustedIdentityError(SignalError):
    """Raised when a bundle's signed pre-key is not signed by its identity key."""


class NoSenderKeyError(SignalError):
    """Raised when an ``skmsg`` comes from a sender or key id with no sender key held."""


class InvalidRecordError(SignalError):
    """Raised when a stored session, sender-key or identity record cannot be read."""
