"""Token dictionaries of WhatsApp's binary XML encoding, and its type tags.

A string listed in a dictionary is sent as one byte (its index in the single-byte table) or as two bytes
(``DICTIONARY_0 + n`` then its index in double-byte table ``n``). The client announces which dictionary it
speaks in the last byte of its intro header (``WA 06 <version>``, ``frames.WA_INTRO_HEADER``) and both sides
use it for the whole connection. The tables are protocol facts, kept as data: ``v2`` (Baileys 6) and ``v3``
(Baileys 7, whatsmeow, and keeper's own client, ``DICT_VERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from connector.protocol.errors import NodeCodecError
from connector.protocol.tokens import v2, v3

DICT_VERSION: Final = 3
"""The dictionary keeper's client speaks (and the codec's default)."""

# Type tags of the binary encoding (whatsmeow token.go / Baileys TAGS); the same in v2 and v3.
LIST_EMPTY: Final = 0
DICTIONARY_0: Final = 236
DICTIONARY_1: Final = 237
DICTIONARY_2: Final = 238
DICTIONARY_3: Final = 239
INTEROP_JID: Final = 245
FB_JID: Final = 246
AD_JID: Final = 247
LIST_8: Final = 248
LIST_16: Final = 249
JID_PAIR: Final = 250
HEX_8: Final = 251
BINARY_8: Final = 252
BINARY_20: Final = 253
BINARY_32: Final = 254
NIBBLE_8: Final = 255

PACKED_MAX: Final = 127
"""Longest string (in characters) that may be sent nibble- or hex-packed."""


@dataclass(frozen=True, slots=True)
class Dictionary:
    """One dictionary version: its tables and the reverse indexes the encoder uses."""

    version: int
    single: tuple[str, ...]
    double: tuple[tuple[str, ...], ...]
    single_index: dict[str, int] = field(init=False, repr=False, compare=False)
    double_index: dict[str, tuple[int, int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.single) > DICTIONARY_0 or len(self.double) > DICTIONARY_3 - DICTIONARY_0 + 1:
            raise ValueError(f"dictionary {self.version} overlaps the type tags")
        # Index 0 is the empty string, which is never sent as a token.
        single_index = {token: index for index, token in enumerate(self.single) if token}
        double_index: dict[str, tuple[int, int]] = {}
        for number, tokens in enumerate(self.double):
            for index, token in enumerate(tokens):
                double_index.setdefault(token, (number, index))
        object.__setattr__(self, "single_index", single_index)
        object.__setattr__(self, "double_index", double_index)


DICTIONARIES: Final[dict[int, Dictionary]] = {
    2: Dictionary(2, v2.SINGLE_BYTE_TOKENS, v2.DOUBLE_BYTE_TOKENS),
    3: Dictionary(3, v3.SINGLE_BYTE_TOKENS, v3.DOUBLE_BYTE_TOKENS),
}
"""Every dictionary version the codec speaks, by the number in the intro header."""


def dictionary(version: int) -> Dictionary:
    """The dictionary of ``version``; raises ``NodeCodecError`` for one the codec does not speak."""
    try:
        return DICTIONARIES[version]
    except KeyError:
        raise NodeCodecError(f"unknown dictionary version {version}") from None
