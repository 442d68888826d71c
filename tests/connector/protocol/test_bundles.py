from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol.binary import Jid, Node, decode_node, encode_node
from connector.protocol.bundles import (
    BundleError,
    BundleRequest,
    FetchedBundle,
    bundle_node,
    bundle_query,
    parse_bundles,
    read_bundle,
)
from connector.protocol.errors import IqError, MessageFormatError, ProtocolError
from connector.protocol.signal.types import PreKeyBundle
from tests.connector.protocol.stanza_fuzz import mutated, nodes

PHONE = Jid.parse("4915550001@s.whatsapp.net")
LAPTOP = Jid.parse("4915550001:3@s.whatsapp.net")
LID_DEVICE = Jid.parse("11111:4@lid")
BUNDLE = PreKeyBundle(registration_id=0x01020304, identity_key=bytes(range(32)), signed_pre_key_id=0x00ABCD,
                      signed_pre_key=bytes(range(32, 64)), signed_pre_key_signature=bytes(range(64)),
                      pre_key_id=0x0F0001, pre_key=bytes(range(64, 96)))
NO_ONE_TIME = PreKeyBundle(registration_id=7, identity_key=b"\x01" * 32, signed_pre_key_id=1,
                           signed_pre_key=b"\x02" * 32, signed_pre_key_signature=b"\x03" * 64)


def _reply(*users: Node) -> Node:
    return Node("iq", {"type": "result", "id": "q", "from": "@s.whatsapp.net"}, [Node("list", {}, list(users))])


def _wrapped_in_keys(device: Jid, bundle: PreKeyBundle) -> Node:
    flat = bundle_node(device, bundle)
    children = flat.children()
    return Node("user", flat.attrs, [children[0], Node("keys", {}, children[1:])])


REAL_REPLY = _reply(bundle_node(PHONE, BUNDLE), _wrapped_in_keys(LAPTOP, NO_ONE_TIME),
                    Node("user", {"jid": str(LID_DEVICE)}, [Node("error", {"code": "406", "text": "not-acceptable"})]))


def test_query_shape() -> None:
    node = bundle_query([BundleRequest(PHONE), BundleRequest(LAPTOP, identity_changed=True)])
    assert (node.tag, node.attrs) == ("iq", {"to": "@s.whatsapp.net", "type": "get", "xmlns": "encrypt"})
    key = node.child("key")
    assert key is not None
    assert [u.attrs for u in key.children("user")] == [{"jid": "4915550001@s.whatsapp.net"},
                                                       {"jid": "4915550001:3@s.whatsapp.net", "reason": "identity"}]
    with pytest.raises(MessageFormatError):
        bundle_query([])


def test_reply_gives_one_outcome_per_device() -> None:
    reply = decode_node(encode_node(REAL_REPLY))  # through the wire codec, as the server's reply comes
    assert parse_bundles(reply) == (
        FetchedBundle(PHONE, bundle=BUNDLE),
        FetchedBundle(LAPTOP, bundle=NO_ONE_TIME),
        FetchedBundle(LID_DEVICE, error=BundleError(406, "not-acceptable")),
    )


def test_a_misshapen_device_entry_costs_only_that_device() -> None:
    broken = bundle_node(LAPTOP, BUNDLE)
    assert isinstance(broken.content, list)
    broken.content[2] = Node("identity", {}, b"\x01" * 31)
    phone, laptop = parse_bundles(_reply(bundle_node(PHONE, BUNDLE), broken))
    assert phone.bundle == BUNDLE
    assert laptop.bundle is None and laptop.error is not None and "identity" in laptop.error.text


@pytest.mark.parametrize("tag", ["registration", "identity", "skey"])
def test_required_parts(tag: str) -> None:
    node = bundle_node(PHONE, BUNDLE)
    assert isinstance(node.content, list)
    node.content = [c for c in node.content if c.tag != tag]
    with pytest.raises(MessageFormatError):
        read_bundle(node)


def test_wrong_key_type_and_refusal() -> None:
    node = bundle_node(PHONE, BUNDLE)
    assert isinstance(node.content, list)
    node.content[1] = Node("type", {}, b"\x06")
    with pytest.raises(MessageFormatError):
        read_bundle(node)
    with pytest.raises(IqError):
        parse_bundles(Node("iq", {"type": "error"}, [Node("error", {"code": "500"})]))
    with pytest.raises(MessageFormatError):
        parse_bundles(Node("iq", {"type": "result"}))


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**24 - 1), st.one_of(st.none(), st.integers(0, 2**24 - 1)),
       st.binary(min_size=32, max_size=32))
def test_bundle_round_trip(registration: int, signed_id: int, one_time_id: int | None, key: bytes) -> None:
    bundle = PreKeyBundle(registration_id=registration, identity_key=key, signed_pre_key_id=signed_id,
                          signed_pre_key=key[::-1], signed_pre_key_signature=key + key, pre_key_id=one_time_id,
                          pre_key=key if one_time_id is not None else None)
    assert read_bundle(decode_node(encode_node(bundle_node(LAPTOP, bundle)))) == bundle


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(nodes(), mutated(REAL_REPLY)))
def test_fuzzed_replies_raise_only_protocol_errors(node: Node) -> None:
    with contextlib.suppress(ProtocolError):
        parse_bundles(node)


@settings(max_examples=200)
@given(st.binary(max_size=160))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_bundles(decode_node(b"\x00" + data))
