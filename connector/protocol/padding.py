"""WhatsApp's random padding of a ``Message`` plaintext before Signal encryption (``enc v="2"``).

The sender appends N bytes, each of value N, with N random in 1..16 (Baileys ``writeRandomPadMax16``;
whatsmeow ``padMessage`` uses 1..15). The receiver strips as many bytes as the last byte says. Unlike
Baileys, which strips blindly, the check here is whatsmeow's: every pad byte must equal N, and N must be
neither zero nor longer than the data, so a plaintext that decrypted to garbage is refused rather than
handed to the protobuf decoder truncated. ``enc v="3"`` payloads are not padded and never come here.
"""

from __future__ import annotations

from typing import Final

from connector.protocol.crypto import RandomSource
from connector.protocol.errors import PaddingError

MAX_PAD: Final = 16
"""Largest pad we write (Baileys' choice). Larger pads from other clients are accepted when well formed."""


def pad(plaintext: bytes, rand: RandomSource) -> bytes:
    """``plaintext`` followed by N bytes of value N, N = 1..16 drawn from one byte of ``rand``."""
    length = (rand(1)[0] & 0x0F) + 1
    return plaintext + bytes((length,)) * length


def unpad(padded: bytes) -> bytes:
    """Strip the padding; raises ``PaddingError`` when it is zero, longer than the data, or uneven."""
    if not padded:
        raise PaddingError("padded plaintext is empty")
    length = padded[-1]
    if length == 0:
        raise PaddingError("pad length is zero")
    if length > len(padded):
        raise PaddingError(f"pad length {length} exceeds the {len(padded)} bytes of data")
    if padded[-length:].count(length) != length:
        raise PaddingError(f"pad bytes are not all {length}")
    return padded[:-length]
