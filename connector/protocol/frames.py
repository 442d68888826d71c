"""Frame codec of the WhatsApp Web socket.

Every websocket message carries one or more frames: a 3-byte big-endian length then that many bytes.
The client's very first websocket message starts with the intro header ``WA 6 <dict version>``, optionally
preceded by an edge-routing header ``ED 0 1 <3-byte length> <routing info>`` (Baileys sends it when it
holds routing info from a previous ``edge_routing`` stanza). Frames may straddle websocket messages, so
the decoder buffers.
"""

from __future__ import annotations

from typing import Final

from connector.protocol.errors import FrameError
from connector.protocol.tokens import DICT_VERSION

WA_MAGIC_VALUE: Final = 6
WA_INTRO_HEADER: Final = bytes([ord("W"), ord("A"), WA_MAGIC_VALUE, DICT_VERSION])
"""``b"WA\\x06\\x03"``: Baileys ``NOISE_WA_HEADER`` / whatsmeow ``WAConnHeader``; also the Noise prologue."""

EDGE_ROUTING_PREFIX: Final = b"ED\x00\x01"
FRAME_LENGTH_SIZE: Final = 3
FRAME_MAX_SIZE: Final = 1 << 24
"""A frame's length must fit in 3 bytes (whatsmeow ``FrameMaxSize``)."""


def edge_routing_intro(routing_info: bytes) -> bytes:
    """The intro for a client that holds routing info: ``ED 0 1 len24 routing_info`` + ``WA_INTRO_HEADER``."""
    if len(routing_info) >= FRAME_MAX_SIZE:
        raise FrameError("routing info too large")
    return EDGE_ROUTING_PREFIX + len(routing_info).to_bytes(3, "big") + routing_info + WA_INTRO_HEADER


def encode_frame(payload: bytes, *, intro: bytes | None = None) -> bytes:
    """Prefix ``payload`` with its 3-byte length, and with ``intro`` when this is the first frame."""
    if len(payload) >= FRAME_MAX_SIZE:
        raise FrameError(f"frame too large: {len(payload)} bytes (max {FRAME_MAX_SIZE - 1})")
    return (intro or b"") + len(payload).to_bytes(FRAME_LENGTH_SIZE, "big") + payload


class FrameDecoder:
    """Splits a byte stream into frame payloads.

    With ``expect_intro=True`` (the server side) the stream must begin with the intro header, optionally
    preceded by the edge-routing header; the intro is checked, stripped and the routing info kept in
    ``routing_info``. ``intro_header`` is the dictionary-versioned header that was received.
    """

    def __init__(self, *, expect_intro: bool = False, max_frame_size: int = FRAME_MAX_SIZE) -> None:
        self._buffer = bytearray()
        self._awaiting_intro = expect_intro
        self._max_frame_size = max_frame_size
        self.routing_info: bytes | None = None
        self.intro_header: bytes | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every frame payload now complete, in order."""
        self._buffer += data
        frames: list[bytes] = []
        if self._awaiting_intro and not self._consume_intro():
            return frames
        while len(self._buffer) >= FRAME_LENGTH_SIZE:
            length = int.from_bytes(self._buffer[:FRAME_LENGTH_SIZE], "big")
            if length > self._max_frame_size:
                raise FrameError(f"frame too large: {length} bytes")
            end = FRAME_LENGTH_SIZE + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[FRAME_LENGTH_SIZE:end]))
            del self._buffer[:end]
        return frames

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buffer)

    def _consume_intro(self) -> bool:
        buffer = self._buffer
        offset = 0
        if buffer[:2] == EDGE_ROUTING_PREFIX[:2]:
            if len(buffer) < 7:
                return False
            if bytes(buffer[:4]) != EDGE_ROUTING_PREFIX:
                raise FrameError("bad edge-routing header")
            routing_length = int.from_bytes(buffer[4:7], "big")
            if len(buffer) < 7 + routing_length:
                return False
            routing_info = bytes(buffer[7 : 7 + routing_length])
            offset = 7 + routing_length
        else:
            routing_info = None
            if len(buffer) >= 2 and bytes(buffer[:2]) != b"WA":
                raise FrameError("stream does not start with the WA intro header")
        if len(buffer) < offset + len(WA_INTRO_HEADER):
            return False
        header = bytes(buffer[offset : offset + len(WA_INTRO_HEADER)])
        if header[:3] != WA_INTRO_HEADER[:3]:
            raise FrameError(f"bad intro header {header.hex()}")
        self.intro_header = header
        self.routing_info = routing_info
        del buffer[: offset + len(WA_INTRO_HEADER)]
        self._awaiting_intro = False
        return True
