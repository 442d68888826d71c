from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol import stanzas
from connector.protocol.binary import Jid, Node, decode_node, encode_node
from connector.protocol.errors import MessageFormatError, ProtocolError
from connector.protocol.receipts import (
    DUPLICATE,
    FAILURE,
    OneTimePreKeyPublic,
    RetryKeys,
    ServerAck,
    SignedPreKeyPublic,
    delivery_type,
    message_receipt,
    nack,
    parse_receipt,
    parse_server_ack,
    receipt,
    retry_keys,
    retry_receipt,
)
from connector.protocol.signal.types import PreKeyBundle
from shared.authstate import PRE_KEY, AuthState, StoredKeyPair
from shared.authstore import MemoryAuthStore
from testkit.protocol.seeded import SeededRandom
from tests.connector.protocol.stanza_fuzz import mutated, nodes

ME = "4915550009:2@s.whatsapp.net"
DM = stanzas.incoming_message(Node("message", {"id": "3EB0A1", "from": "4915550001@s.whatsapp.net",
                                               "t": "1764800000", "type": "text"}))
GROUP = stanzas.incoming_message(Node("message", {"id": "3EB0A2", "from": "120363000000000001@g.us",
                                                  "participant": "4915550001:3@s.whatsapp.net", "t": "1764800001"}))
OWN_DEVICE = stanzas.incoming_message(Node("message", {"id": "3EB0A3", "from": "4915550009@s.whatsapp.net",
                                                       "recipient": "4915550001@s.whatsapp.net", "t": "5"}))
KEYS = RetryKeys(identity=b"\x11" * 32, pre_key=OneTimePreKeyPublic(0x000102, b"\x22" * 32),
                 signed_pre_key=SignedPreKeyPublic(7, b"\x33" * 32, b"\x44" * 64), device_identity=b"\x0a\x01x")


def test_message_receipts_go_back_the_way_the_message_came() -> None:
    assert message_receipt(DM).attrs == {"id": "3EB0A1", "to": "4915550001@s.whatsapp.net"}
    assert message_receipt(GROUP).attrs == {"id": "3EB0A2", "to": "120363000000000001@g.us",
                                            "participant": "4915550001:3@s.whatsapp.net"}
    assert message_receipt(OWN_DEVICE, receipt_type="sender").attrs == {
        "id": "3EB0A3", "to": "4915550009@s.whatsapp.net", "recipient": "4915550001@s.whatsapp.net", "type": "sender"}
    read = message_receipt(DM, receipt_type="read", now_s=1764800100, extra_ids=["3EB0B1", "3EB0B2"])
    assert read.attrs == {"id": "3EB0A1", "to": "4915550001@s.whatsapp.net", "type": "read", "t": "1764800100"}
    assert [i.attrs["id"] for i in read.children("list")[0].children("item")] == ["3EB0B1", "3EB0B2"]
    with pytest.raises(MessageFormatError):
        message_receipt(DM, receipt_type="read")
    with pytest.raises(MessageFormatError):
        receipt("", "x@s.whatsapp.net")


def test_our_own_devices_messages_get_sender_receipts() -> None:
    me, my_lid = Jid.parse(ME), Jid.parse("99999:2@lid")
    assert delivery_type(OWN_DEVICE, me, my_lid) == "sender"
    assert delivery_type(DM, me, my_lid) is None and delivery_type(GROUP, me, my_lid) is None
    own_in_group = stanzas.incoming_message(Node("message", {"id": "X", "from": "120363000000000001@g.us",
                                                             "participant": "99999:4@lid"}))
    assert delivery_type(own_in_group, me, my_lid) == "sender"
    assert delivery_type(own_in_group, me) is None


def test_first_retry_receipt_has_no_keys() -> None:
    node = retry_receipt(GROUP, 1, 0x3FFF)
    assert node.attrs == {"id": "3EB0A2", "to": "120363000000000001@g.us", "type": "retry",
                          "participant": "4915550001:3@s.whatsapp.net"}
    retry, registration = node.children()
    assert retry.attrs == {"count": "1", "id": "3EB0A2", "v": "1", "error": "0", "t": "1764800001"}
    assert registration.content == b"\x00\x00\x3f\xff"


def test_retry_receipt_with_keys_reads_back_as_a_bundle() -> None:
    node = decode_node(encode_node(retry_receipt(DM, 2, 12345, keys=KEYS)))
    keys = node.child("keys")
    assert keys is not None
    assert [c.tag for c in keys.children()] == ["type", "identity", "key", "skey", "device-identity"]
    assert keys.child_bytes("type") == b"\x05"
    parsed = parse_receipt(Node("receipt", {**node.attrs, "from": "4915550009:2@s.whatsapp.net"}, node.content))
    assert parsed.type == "retry" and parsed.retry is not None
    assert (parsed.retry.count, parsed.retry.message_id, parsed.retry.timestamp, parsed.retry.error) == (
        2, "3EB0A1", 1764800000, 0)
    assert parsed.retry.registration_id == 12345
    assert parsed.retry.bundle == PreKeyBundle(registration_id=12345, identity_key=b"\x11" * 32,
                                               signed_pre_key_id=7, signed_pre_key=b"\x33" * 32,
                                               signed_pre_key_signature=b"\x44" * 64, pre_key_id=0x000102,
                                               pre_key=b"\x22" * 32)
    assert parsed.retry.device_identity == b"\x0a\x01x"


def test_retry_keys_hand_out_a_fresh_pre_key_from_the_store() -> None:
    store = MemoryAuthStore(AuthState.generate(SeededRandom("retry")))
    creds = store.get_creds()
    first_free = creds.first_unuploaded_pre_key_id
    keys = retry_keys(store, SeededRandom("retry-2"), b"\x0a\x01x")
    assert keys.pre_key.key_id == first_free
    stored = store.get_keys(PRE_KEY, [str(first_free)])[str(first_free)]
    assert StoredKeyPair.from_json(stored, "pre-key").public == keys.pre_key.public
    after = store.get_creds()
    assert after.first_unuploaded_pre_key_id == first_free + 1 and after.next_pre_key_id >= first_free + 1
    assert keys.identity == creds.signed_identity_key.public
    assert (keys.signed_pre_key.key_id, keys.signed_pre_key.public) == (creds.signed_pre_key.key_id,
                                                                        creds.signed_pre_key.key_pair.public)
    assert retry_keys(store, SeededRandom("retry-3"), b"x").pre_key.key_id == first_free + 1  # never twice
    bundle = parse_receipt(Node("receipt", {"id": "1", "from": "x@s.whatsapp.net", "type": "retry"},
                                retry_receipt(DM, 2, creds.registration_id, keys=keys).content)).retry
    assert bundle is not None and bundle.bundle is not None and bundle.bundle.pre_key == keys.pre_key.public


def test_retry_receipt_bounds() -> None:
    with pytest.raises(MessageFormatError):
        retry_receipt(DM, 0, 1)
    with pytest.raises(MessageFormatError):
        retry_receipt(DM, 1, 1 << 32)
    bad_id = RetryKeys(KEYS.identity, OneTimePreKeyPublic(1 << 24, b"\x22" * 32), KEYS.signed_pre_key, b"x")
    with pytest.raises(MessageFormatError):
        retry_receipt(DM, 2, 1, keys=bad_id)


def test_incoming_delivery_and_read_receipts() -> None:
    delivery = parse_receipt(Node("receipt", {"id": "3EB0C1", "from": "4915550001:3@s.whatsapp.net",
                                              "t": "1764800200"}))
    assert (delivery.ids, delivery.type, delivery.timestamp, delivery.sender) == (
        ("3EB0C1",), None, 1764800200, "4915550001:3@s.whatsapp.net")
    read = parse_receipt(Node("receipt", {"id": "3EB0C1", "from": "120363000000000001@g.us", "type": "read",
                                          "participant": "4915550001@s.whatsapp.net", "t": "9"},
                              [Node("list", {}, [Node("item", {"id": "3EB0C2"}), Node("item", {"id": "3EB0C3"})])]))
    assert (read.id, read.ids, read.type, read.participant) == (
        "3EB0C1", ("3EB0C1", "3EB0C2", "3EB0C3"), "read", "4915550001@s.whatsapp.net")
    for bad in [Node("receipt", {"from": "x@s.whatsapp.net"}), Node("ack", {"id": "1", "from": "x"}),
                Node("receipt", {"id": "1", "from": "x", "type": "retry"}),
                Node("receipt", {"id": "1", "from": "x", "type": "retry"}, [Node("retry", {"count": "x"})]),
                Node("receipt", {"id": "1", "from": "x", "type": "retry"},
                     [Node("retry", {"count": "1"}), Node("registration", {}, b"\x01")]),
                Node("receipt", {"id": "1", "from": "x", "type": "retry"},
                     [Node("retry", {"count": "1"}), Node("keys", {})])]:
        with pytest.raises(MessageFormatError):
            parse_receipt(bad)


def test_server_ack() -> None:
    ack = parse_server_ack(Node("ack", {"id": "3EB0AA", "class": "message", "from": "4915550001@s.whatsapp.net",
                                        "t": "1764800300", "phash": "2:abcdefgh"}))
    assert ack == ServerAck(id="3EB0AA", ack_class="message", sender="4915550001@s.whatsapp.net",
                            timestamp=1764800300, phash="2:abcdefgh", error=None)
    failed = parse_server_ack(Node("ack", {"id": "3EB0AA", "class": "message", "error": "479"}))
    assert failed.error == 479
    for bad in [Node("ack", {"class": "message"}), Node("ack", {"id": "x"}),
                Node("ack", {"id": "x", "class": "message", "error": "oops"})]:
        with pytest.raises(MessageFormatError):
            parse_server_ack(bad)


def test_nacks_carry_the_error_code() -> None:
    node = Node("message", {"id": "3EB0A2", "from": "120363000000000001@g.us",
                            "participant": "4915550001:3@s.whatsapp.net", "type": "text"})
    assert nack(node, ME, DUPLICATE).attrs == {
        "id": "3EB0A2", "to": "120363000000000001@g.us", "class": "message",
        "participant": "4915550001:3@s.whatsapp.net", "type": "text", "from": ME, "error": "487"}
    assert nack(node, ME, FAILURE).attrs["error"] == "500"


REAL_RETRY = retry_receipt(DM, 3, 99, keys=KEYS)
REAL_RETRY.attrs["from"] = REAL_RETRY.attrs.pop("to")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(nodes(), mutated(REAL_RETRY)))
def test_fuzzed_receipts_raise_only_protocol_errors(node: Node) -> None:
    with contextlib.suppress(ProtocolError):
        parse_receipt(node)
    with contextlib.suppress(ProtocolError):
        parse_server_ack(node)


@settings(max_examples=200)
@given(st.binary(max_size=160))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        node = decode_node(b"\x00" + data)
        with contextlib.suppress(ProtocolError):
            parse_receipt(node)
        parse_server_ack(node)
