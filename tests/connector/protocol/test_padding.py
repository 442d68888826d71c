from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector.protocol.crypto import RandomSource
from connector.protocol.errors import MessageFormatError, PaddingError
from connector.protocol.padding import MAX_PAD, pad, unpad


def fixed(byte: int) -> RandomSource:
    return lambda n: bytes([byte]) * n


@pytest.mark.parametrize(("random_byte", "length"), [(0x00, 1), (0x0F, 16), (0xF3, 4), (0x10, 1), (0xFF, 16)])
def test_pad_length_comes_from_the_low_nibble_of_one_random_byte(random_byte: int, length: int) -> None:
    padded = pad(b"hello", fixed(random_byte))
    assert padded == b"hello" + bytes([length]) * length


def test_every_length_from_1_to_16_occurs() -> None:
    lengths = {len(pad(b"", fixed(b))) for b in range(256)}
    assert lengths == set(range(1, MAX_PAD + 1))


@given(st.binary(max_size=300), st.integers(0, 255))
def test_round_trip(plaintext: bytes, random_byte: int) -> None:
    assert unpad(pad(plaintext, fixed(random_byte))) == plaintext


def test_unpad_accepts_other_clients_pads() -> None:
    assert unpad(b"abc" + b"\x01") == b"abc"
    assert unpad(b"\x03\x03\x03") == b""  # the whole plaintext may be padding (an empty Message)
    assert unpad(b"x" + bytes([20]) * 20) == b"x"  # longer than our 16, yet well formed


@pytest.mark.parametrize("padded", [b"", b"abc\x00", b"\x05\x05", b"ab\x02\x03", b"a\x01\x04\x04\x03\x04"])
def test_unpad_refuses_malformed_padding(padded: bytes) -> None:
    with pytest.raises(PaddingError):
        unpad(padded)


def test_padding_error_is_a_message_format_error() -> None:
    assert issubclass(PaddingError, MessageFormatError)


@given(st.binary(max_size=64))
def test_unpad_of_any_bytes_returns_a_prefix_or_raises_padding_error(data: bytes) -> None:
    try:
        stripped = unpad(data)
    except PaddingError:
        return
    length = data[-1]
    assert stripped == data[:-length] and data[-length:] == bytes([length]) * length
