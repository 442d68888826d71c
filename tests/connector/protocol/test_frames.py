from __future__ import annotations

import pytest

from connector.protocol.errors import FrameError
from connector.protocol.frames import (
    WA_INTRO_HEADER,
    FrameDecoder,
    edge_routing_intro,
    encode_frame,
)


def test_intro_header_is_wa_magic_and_dictionary_version() -> None:
    assert WA_INTRO_HEADER == b"WA\x06\x03"


def test_encode_frame_prefixes_length_and_intro() -> None:
    assert encode_frame(b"abc") == b"\x00\x00\x03abc"
    assert encode_frame(b"abc", intro=WA_INTRO_HEADER) == b"WA\x06\x03\x00\x00\x03abc"


def test_decoder_reassembles_frames_split_anywhere() -> None:
    stream = encode_frame(b"first") + encode_frame(b"") + encode_frame(b"x" * 70000)
    for cut in range(1, 12):
        decoder = FrameDecoder()
        frames = []
        for start in range(0, len(stream), cut * 997):
            frames += decoder.feed(stream[start : start + cut * 997])
        assert frames == [b"first", b"", b"x" * 70000]
        assert decoder.buffered == 0


def test_server_side_decoder_strips_intro() -> None:
    decoder = FrameDecoder(expect_intro=True)
    data = encode_frame(b"hello", intro=WA_INTRO_HEADER) + encode_frame(b"again")
    assert decoder.feed(data[:2]) == []
    assert decoder.feed(data[2:]) == [b"hello", b"again"]
    assert decoder.intro_header == WA_INTRO_HEADER
    assert decoder.routing_info is None


def test_server_side_decoder_reads_edge_routing_header() -> None:
    decoder = FrameDecoder(expect_intro=True)
    data = encode_frame(b"hello", intro=edge_routing_intro(b"\x08\x02routing"))
    frames = [f for i in range(len(data)) for f in decoder.feed(data[i : i + 1])]
    assert frames == [b"hello"]
    assert decoder.routing_info == b"\x08\x02routing"


def test_server_side_decoder_rejects_missing_intro() -> None:
    with pytest.raises(FrameError):
        FrameDecoder(expect_intro=True).feed(encode_frame(b"hello"))


def test_oversized_frames_are_refused() -> None:
    with pytest.raises(FrameError):
        encode_frame(b"\x00" * (1 << 24))
    with pytest.raises(FrameError):
        FrameDecoder(max_frame_size=10).feed(b"\x00\x00\x0b")
