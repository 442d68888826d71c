from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol.binary import Jid, Node, decode_node, encode_node
from connector.protocol.errors import IqError, MessageFormatError, ProtocolError
from connector.protocol.usync import (
    DeviceEntry,
    UserDevices,
    UsyncError,
    device_list_query,
    message_devices,
    parse_device_list,
)
from tests.connector.protocol.stanza_fuzz import mutated, nodes

ME = Jid.parse("4915550009:2@s.whatsapp.net")
MY_LID = Jid.parse("99999:2@lid")


def _reply(*users: Node) -> Node:
    return Node("iq", {"from": "@s.whatsapp.net", "type": "result", "id": "q1"},
                [Node("usync", {"sid": "s1"}, [Node("result", {}), Node("list", {}, list(users))])])


def _user(jid: str, *devices: dict[str, str], lid: str | None = None) -> Node:
    children = [Node("devices", {}, [
        Node("device-list", {}, [Node("device", attrs) for attrs in devices]),
        Node("key-index-list", {"ts": "1764800000"}, b"signed-list")])]
    if lid:
        children.append(Node("lid", {"val": lid}))
    return Node("user", {"jid": jid}, children)


REAL_USERS = (
    _user("4915550001@s.whatsapp.net", {"id": "0"}, {"id": "3", "key-index": "2"}, {"id": "5"},
          {"id": "7", "key-index": "4", "is_hosted": "true"}, lid="11111@lid"),
    _user("4915550009@s.whatsapp.net", {"id": "0"}, {"id": "2", "key-index": "1"}, {"id": "4", "key-index": "3"}),
    Node("user", {"jid": "4915550404@s.whatsapp.net"}, [Node("devices", {}, [
        Node("error", {"code": "404", "text": "item-not-found"})])]),
    _user("22222@lid", {"id": "0"}, {"id": "1", "key-index": "1", "is_hosted": "true"}),
)
REAL_REPLY = _reply(*REAL_USERS)


def test_query_shape_with_and_without_lid() -> None:
    node = device_list_query([Jid.parse("4915550001:3@s.whatsapp.net"), Jid.parse("22222@lid")], "sid-1")
    assert (node.tag, node.attrs) == ("iq", {"to": "@s.whatsapp.net", "type": "get", "xmlns": "usync"})
    usync = node.child("usync")
    assert usync is not None
    assert usync.attrs == {"context": "message", "mode": "query", "sid": "sid-1", "last": "true", "index": "0"}
    query = usync.child("query")
    assert query is not None and [(c.tag, c.attrs) for c in query.children()] == [("devices", {"version": "2"}),
                                                                                 ("lid", {})]
    listing = usync.child("list")
    assert listing is not None
    assert [u.attrs["jid"] for u in listing.children("user")] == ["4915550001@s.whatsapp.net", "22222@lid"]
    bare = device_list_query([Jid.parse("1@s.whatsapp.net")], "s", with_lid=False).child("usync", "query")
    assert bare is not None and [c.tag for c in bare.children()] == ["devices"]
    assert decode_node(encode_node(node)).child("usync", "list") is not None  # encodable
    with pytest.raises(MessageFormatError):
        device_list_query([], "s")


def test_reply_parsing() -> None:
    first, mine, missing, lid_user = parse_device_list(REAL_REPLY)
    assert first.user == Jid.parse("4915550001@s.whatsapp.net") and first.lid == Jid.parse("11111@lid")
    assert first.devices == (DeviceEntry(0), DeviceEntry(3, 2), DeviceEntry(5), DeviceEntry(7, 4, hosted=True))
    assert first.key_index_timestamp == 1764800000 and first.signed_key_index == b"signed-list"
    assert mine.devices[1] == DeviceEntry(2, 1)
    assert missing == UserDevices(user=Jid.parse("4915550404@s.whatsapp.net"),
                                  error=UsyncError(404, "item-not-found"))
    assert lid_user.user.server == "lid"


def test_message_devices_follow_baileys_rules() -> None:
    devices = [str(j) for j in message_devices(parse_device_list(REAL_REPLY), ME, MY_LID)]
    assert devices == [
        "4915550001@s.whatsapp.net", "4915550001:3@s.whatsapp.net",  # device 5 has no key-index: left out
        "4915550001:7@hosted",
        "4915550009@s.whatsapp.net", "4915550009:4@s.whatsapp.net",  # our own device 2 is left out
        "22222@lid", "22222:1@hosted.lid",
    ]
    no_zero = message_devices(parse_device_list(REAL_REPLY), ME, exclude_zero=True)
    assert all(jid.device for jid in no_zero)


def test_own_device_is_excluded_by_lid_too() -> None:
    reply = _reply(_user("99999@lid", {"id": "0"}, {"id": "2", "key-index": "1"}, {"id": "6", "key-index": "2"}))
    assert [str(j) for j in message_devices(parse_device_list(reply), ME, MY_LID)] == ["99999@lid", "99999:6@lid"]


def test_refusals_and_malformed_replies() -> None:
    refused = Node("iq", {"type": "error", "id": "q"}, [Node("error", {"code": "429", "text": "rate-overlimit"})])
    with pytest.raises(IqError) as caught:
        parse_device_list(refused)
    assert (caught.value.code, caught.value.text) == (429, "rate-overlimit")
    for bad in [Node("iq", {"type": "result"}), Node("message", {}),
                _reply(Node("user", {"jid": "not a jid"})),
                _reply(_user("1@s.whatsapp.net", {"id": "x"})), _reply(_user("1@s.whatsapp.net", {"id": "256"}))]:
        with pytest.raises(MessageFormatError):
            parse_device_list(bad)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(nodes(), mutated(REAL_REPLY)))
def test_fuzzed_replies_raise_only_protocol_errors(node: Node) -> None:
    try:
        users = parse_device_list(node)
    except ProtocolError:
        return
    message_devices(users, ME, MY_LID)


@settings(max_examples=200)
@given(st.binary(max_size=120))
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_device_list(decode_node(b"\x00" + data))
