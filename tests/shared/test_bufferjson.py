"""BufferJSON: the forms Baileys writes and the older forms its reviver still reads."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.bufferjson import JsonValue, dumps, revive, to_plain
from shared.errors import BaileysFormatError


def test_bytes_are_written_as_base64_buffer_objects() -> None:
    assert dumps({"k": b"\x00\xff"}) == '{"k":{"type":"Buffer","data":"AP8="}}'


def test_revive_reads_base64_form() -> None:
    assert revive('{"k":{"type":"Buffer","data":"AP8="}}') == {"k": b"\x00\xff"}


def test_revive_reads_node_int_array_form() -> None:
    assert revive('{"type":"Buffer","data":[1,2,255]}') == b"\x01\x02\xff"


def test_revive_reads_stringified_uint8array_form() -> None:
    assert revive('{"a":{"0":7,"1":8,"2":9}}') == {"a": b"\x07\x08\x09"}


def test_revive_leaves_lookalike_objects_alone() -> None:
    # sender-key-memory maps jids to booleans; gaps in the indices are not a byte array
    assert revive('{"0":true}') == {"0": True}
    assert revive('{"0":1,"2":3}') == {"0": 1, "2": 3}
    assert revive('{"type":"Buffer"}') == {"type": "Buffer"}


def test_revive_accepts_unpadded_and_urlsafe_base64() -> None:
    assert revive('{"type":"Buffer","data":"_-8"}') == b"\xff\xef"


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"Buffer","data":"***"}',
        '{"type":"Buffer","data":[256]}',
        '{"type":"Buffer","data":7}',
        "{nope",
    ],
)
def test_malformed_input_is_a_format_error(text: str) -> None:
    with pytest.raises(BaileysFormatError):
        revive(text)


def test_canonical_form_is_sorted_compact_and_stable() -> None:
    a = dumps({"b": 1, "a": {"z": b"x", "y": "é"}}, canonical=True)
    b = dumps({"a": {"y": "é", "z": b"x"}, "b": 1}, canonical=True)
    assert a == b == '{"a":{"y":"é","z":{"data":"eA==","type":"Buffer"}},"b":1}'


def test_round_trip_and_plain_copy() -> None:
    value: JsonValue = {"x": [b"\x01", {"y": b""}], "n": None, "t": True, "f": 1.5}
    assert revive(dumps(value)) == value
    assert to_plain(value) == {
        "x": [{"type": "Buffer", "data": "AQ=="}, {"y": {"type": "Buffer", "data": ""}}],
        "n": None, "t": True, "f": 1.5,
    }


@given(st.binary(max_size=64))
def test_every_base64_spelling_node_accepts_revives_to_the_same_bytes(data: bytes) -> None:
    # Canonical base64 takes a fast strict path; the other spellings the lenient one: same bytes.
    padded = base64.b64encode(data).decode("ascii")
    spellings = {padded, padded.rstrip("="), base64.urlsafe_b64encode(data).decode("ascii"),
                 base64.urlsafe_b64encode(data).decode("ascii").rstrip("="), f" {padded}\n"}
    for text in spellings:
        assert revive(json.dumps({"type": "Buffer", "data": text})) == data


@pytest.mark.parametrize("text", ["AP8=AP8=", "AP8*", "A"])
def test_base64_that_node_would_not_read_as_written_is_refused(text: str) -> None:
    with pytest.raises(BaileysFormatError):
        revive(json.dumps({"type": "Buffer", "data": text}))


def test_bytes_like_values_other_than_bytes_are_written_as_buffers_too() -> None:
    assert dumps({"a": bytearray(b"\x01"), "b": memoryview(b"\x02")}, canonical=True) == (
        '{"a":{"data":"AQ==","type":"Buffer"},"b":{"data":"Ag==","type":"Buffer"}}')
    with pytest.raises(TypeError):
        dumps({"a": {1, 2}})
