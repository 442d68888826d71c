from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.protocol import tokens
from connector.protocol.binary import S_WHATSAPP_NET, Jid, Node, decode_node, encode_node
from connector.protocol.errors import JidError, NodeCodecError


def roundtrip(node: Node) -> Node:
    return decode_node(encode_node(node))


def test_ping_iq_has_the_expected_bytes() -> None:
    node = Node("iq", {"id": "1", "to": S_WHATSAPP_NET, "type": "get", "xmlns": "w:p"}, [Node("ping")])
    expected = bytes.fromhex("00" "f80a" "19" "0855" "11fa0003" "0429" "1657" "f801" "f80156")
    assert encode_node(node) == expected
    assert decode_node(expected) == node


@pytest.mark.parametrize("version", sorted(tokens.DICTIONARIES))
def test_single_byte_tokens_roundtrip_as_one_byte(version: int) -> None:
    dictionary = tokens.DICTIONARIES[version]
    for token in dictionary.single[1:]:
        data = encode_node(Node("iq", {"k": token}), dict_version=version)
        assert data[-1] == dictionary.single_index[token] or data[-2] in (tokens.NIBBLE_8, tokens.HEX_8)
        assert decode_node(data, dict_version=version).attrs["k"] == token


@pytest.mark.parametrize("version", sorted(tokens.DICTIONARIES))
def test_every_double_byte_token_roundtrips(version: int) -> None:
    for dictionary, words in enumerate(tokens.DICTIONARIES[version].double):
        attrs = {f"a{i}": word for i, word in enumerate(words)}
        node = Node("n", attrs)
        assert decode_node(encode_node(node, dict_version=version), dict_version=version) == node
        data = encode_node(Node("n", {"k": words[7]}), dict_version=version)
        assert data[-2:] == bytes((tokens.DICTIONARY_0 + dictionary, 7))


def test_each_version_has_its_own_token_bytes() -> None:
    # "iq" is single-byte token 25 in version 3 and 30 in version 2 (Baileys 7 / Baileys 6 constants)
    assert encode_node(Node("iq")) == encode_node(Node("iq"), dict_version=3) == b"\x00\xf8\x01\x19"
    assert encode_node(Node("iq"), dict_version=2) == b"\x00\xf8\x01\x1e"
    # the pair-device iq a v2 client misread when it was sent in version 3 tokens
    pair_device = Node("iq", {"type": "set", "xmlns": "md"}, [Node("pair-device", {}, [Node("ref", {}, b"2@x")])])
    v2 = encode_node(pair_device, dict_version=2)
    assert v2 != encode_node(pair_device)
    assert decode_node(v2, dict_version=2) == pair_device
    assert decode_node(v2) != pair_device


def test_an_unknown_dictionary_version_is_a_codec_error() -> None:
    with pytest.raises(NodeCodecError, match="dictionary version 4"):
        encode_node(Node("iq"), dict_version=4)
    with pytest.raises(NodeCodecError, match="dictionary version 1"):
        decode_node(b"\x00\xf8\x01\x19", dict_version=1)


@pytest.mark.parametrize(
    ("value", "tag"),
    [
        ("1700000000", tokens.NIBBLE_8),
        ("12.5-3", tokens.NIBBLE_8),
        ("12345", tokens.NIBBLE_8),
        ("3EB0A1B2C3D4E5F6", tokens.HEX_8),
        ("ABC", tokens.HEX_8),
    ],
)
def test_packed_strings(value: str, tag: int) -> None:
    data = encode_node(Node("n", {"k": value}))
    assert tag in data
    assert roundtrip(Node("n", {"k": value})).attrs["k"] == value


def test_raw_strings_and_long_packed_candidates() -> None:
    for value in ["hello world", "ünïcödé", "1" * 200, "", "abc@"]:
        assert roundtrip(Node("n", {"k": value})).attrs["k"] == value


@pytest.mark.parametrize(
    "jid",
    [
        "15551234567@s.whatsapp.net",
        "15551234567:3@s.whatsapp.net",
        "1234567890123:12@lid",
        "1234567890123@lid",
        "120363000000000000@g.us",
        "status@broadcast",
        "15551234567:5@hosted",
        "777:2@hosted.lid",
        "@s.whatsapp.net",
        "@g.us",
    ],
)
def test_jids_roundtrip(jid: str) -> None:
    assert roundtrip(Node("message", {"from": jid})).attrs["from"] == jid


def test_device_jid_uses_ad_jid_encoding() -> None:
    data = encode_node(Node("n", {"jid": "1234:7@lid"}))
    index = data.index(tokens.AD_JID)
    assert data[index + 1 : index + 3] == bytes((1, 7))  # domain 1 = lid, device 7


def test_jid_parse_and_format() -> None:
    jid = Jid.parse("15551234567:3@s.whatsapp.net")
    assert (jid.user, jid.device, jid.server) == ("15551234567", 3, "s.whatsapp.net")
    assert str(jid.without_device()) == "15551234567@s.whatsapp.net"
    assert str(Jid.user_jid("1", device=2, server="lid")) == "1:2@lid"
    with pytest.raises(JidError):
        Jid.parse("no-at-sign")
    with pytest.raises(JidError):
        Jid.parse("1:x@s.whatsapp.net")


def test_content_sizes_use_every_binary_length_class() -> None:
    for size in (0, 255, 256, (1 << 20) - 1, 1 << 20):
        node = Node("enc", {"v": "2"}, b"\xab" * size)
        assert roundtrip(node) == node


def test_many_children_use_list16() -> None:
    node = Node("list", {}, [Node("item", {"id": str(i)}) for i in range(300)])
    data = encode_node(node)
    assert tokens.LIST_16 in data[:6]
    assert roundtrip(node) == node


def test_zlib_flagged_stanza_is_inflated() -> None:
    node = Node("iq", {"id": "abc", "type": "result"}, [Node("count", {"value": "42"})])
    compressed = encode_node(node, compress=True)
    assert compressed[0] & 2
    assert decode_node(compressed) == node
    assert decode_node(b"\x02" + zlib.compress(encode_node(node)[1:])) == node


def test_token_content_decodes_as_bytes() -> None:
    # content written as a token (as a server may do) comes back as its UTF-8 bytes
    index = tokens.DICTIONARIES[3].single_index
    data = bytes((0, tokens.LIST_8, 2, index["iq"], index["result"]))
    assert decode_node(data) == Node("iq", {}, b"result")


def test_truncated_and_invalid_input_raise_codec_errors() -> None:
    data = encode_node(Node("iq", {"id": "x1"}, [Node("ping")]))
    for cut in range(1, len(data)):
        with pytest.raises(NodeCodecError):
            decode_node(data[:cut])
    with pytest.raises(NodeCodecError):
        decode_node(b"")
    with pytest.raises(NodeCodecError):
        decode_node(b"\x02not zlib")
    with pytest.raises(NodeCodecError):
        decode_node(bytes((0, tokens.LIST_8, 1, 240)))  # unassigned token


def test_encoder_refuses_bad_values() -> None:
    with pytest.raises(NodeCodecError):
        encode_node(Node("", {}))
    with pytest.raises(NodeCodecError):
        encode_node(Node("n", {"k": 5}))  # type: ignore[dict-item]


def test_repr_does_not_show_content_bytes() -> None:
    assert "secret" not in repr(Node("enc", {}, b"secret"))


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_attr_value = st.one_of(
    _text,
    st.sampled_from([w for d in tokens.DICTIONARIES.values() for w in d.single[1:]]),
    st.sampled_from([w for d in tokens.DICTIONARIES.values() for words in d.double for w in words]),
    st.from_regex(r"[0-9.\-]{1,30}", fullmatch=True),
    st.from_regex(r"[0-9A-F]{1,30}", fullmatch=True),
    st.builds(lambda u, d: f"{u}:{d}@s.whatsapp.net", st.integers(1, 10**15), st.integers(1, 99)),
)
_nodes = st.recursive(
    st.builds(Node, st.text(alphabet="abcdefgh-:", min_size=1, max_size=8),
              st.dictionaries(st.sampled_from(["id", "to", "type", "x", "from", "t"]), _attr_value, max_size=4),
              st.one_of(st.none(), st.binary(max_size=300))),
    lambda children: st.builds(Node, st.sampled_from(["iq", "message", "list", "item"]),
                               st.dictionaries(st.sampled_from(["id", "to"]), _attr_value, max_size=2),
                               st.lists(children, min_size=1, max_size=5)),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(_nodes, st.booleans(), st.sampled_from(sorted(tokens.DICTIONARIES)))
def test_random_nodes_roundtrip(node: Node, compress: bool, version: int) -> None:
    assert decode_node(encode_node(node, compress=compress, dict_version=version), dict_version=version) == node


@pytest.mark.parametrize("value", ["a_1@c.us", "1_1:2@s.whatsapp.net", "5:0@s.whatsapp.net", "x:3@g.us", "1:300@lid"])
def test_unusual_jid_like_strings_roundtrip_exactly(value: str) -> None:
    assert roundtrip(Node("n", {"k": value})).attrs["k"] == value


def test_absurd_nesting_is_a_codec_error_not_a_recursion_error() -> None:
    # each level: a 2-item node (tag "n" as 1 raw byte, then a 1-item child list)
    level = bytes((tokens.LIST_8, 2, tokens.BINARY_8, 1, ord("n"), tokens.LIST_8, 1))
    leaf = bytes((tokens.LIST_8, 1, tokens.BINARY_8, 1, ord("x")))
    with pytest.raises(NodeCodecError, match="nested"):
        decode_node(b"\x00" + level * 2000 + leaf)
    assert decode_node(b"\x00" + level * 10 + leaf).child(*["n"] * 9 + ["x"]) is not None


def test_a_key_digest_list_reads_its_leaves_in_one_step_and_exactly() -> None:
    # ~800 <id> leaves after every login take a fast path; it must read exactly what the general one
    # reads, stop at every other shape, and refuse a leaf cut short.
    ids = [Node("id", {}, i.to_bytes(3, "big")) for i in range(1, 813)]
    mixed = [*ids[:3], Node("id", {"k": "v"}, b"\x01"), Node("id", {}, [Node("x")]), Node("id"),
             Node("id", {}, b"x" * 300), Node("id", {}, b""), Node("not-a-token-tag", {}, b"\x02"), *ids[3:6]]
    for children in (ids, mixed):
        node = Node("iq", {"type": "result"}, [Node("digest", {}, [Node("list", {}, children)])])
        assert decode_node(encode_node(node)) == node
    cut = encode_node(Node("list", {}, ids[:2]))[:-2]
    with pytest.raises(NodeCodecError):
        decode_node(cut)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(sorted(tokens.DICTIONARIES)))
def test_any_bytes_decode_to_a_node_or_a_codec_error(data: bytes, version: int) -> None:
    try:
        node = decode_node(b"\x00" + data, dict_version=version)
    except NodeCodecError:
        return
    assert isinstance(node, Node)


@settings(max_examples=200, deadline=None)
@given(_nodes)
def test_mutated_stanzas_decode_to_a_node_or_a_codec_error(node: Node) -> None:
    data = bytearray(encode_node(node, dict_version=2))
    for i in range(1, len(data), 3):
        mutated = bytes(data[:i]) + bytes([data[i] ^ 0xA5]) + bytes(data[i + 1 :])
        for version in tokens.DICTIONARIES:
            with contextlib.suppress(NodeCodecError):
                decode_node(mutated, dict_version=version)
