"""A device's own keys, ``iq xmlns=encrypt``: pre-key count, upload, key digest, signed pre-key
rotation. Fetching other devices' bundles is ``simulator.core.bundles``."""

from __future__ import annotations

import hashlib

from connector.protocol.binary import Node
from simulator import crypto, pairing
from simulator.core import bundles
from simulator.core.actions import Action, Send
from simulator.core.connections import Connection
from simulator.core.context import Context
from simulator.core.stanzas import iq_error, iq_result
from simulator.errors import ClientProtocolError
from simulator.state import CompanionDevice, SignedPreKey

#: ``<id>`` nodes of key digests by pre-key id, shared (only ever encoded): every login asks for the
#: digest, and building its ~800 id nodes anew each time was a fifth of the simulator's CPU.
_ID_NODES: dict[int, Node] = {}


def _id_node(key_id: int) -> Node:
    node = _ID_NODES.get(key_id)
    if node is None:
        node = _ID_NODES[key_id] = Node("id", {}, key_id.to_bytes(3, "big"))
    return node


def encrypt_iq(ctx: Context, conn: Connection, iq: Node, tag: str) -> list[Action]:
    device = ctx.device_of(conn)
    kind = iq.attrs.get("type")
    if kind == "get" and tag == "count":
        return [Send(conn.conn_id, iq_result(iq, [Node("count", {"value": str(len(device.pre_keys))})]))]
    if kind == "get" and tag == "digest":
        return [Send(conn.conn_id, iq_result(iq, [_digest(device)]))]
    if kind == "get" and tag == "key":
        return bundles.fetch_bundles(ctx, conn, iq)
    if kind == "set" and tag == "rotate":
        skey = iq.child("rotate", "skey")
        if skey is None:
            raise ClientProtocolError("rotate without skey")
        return _store_signed_pre_key(ctx, conn, iq, device, skey)
    if kind == "set" and iq.child("list") is not None:
        return _upload_pre_keys(ctx, conn, iq, device)
    return [Send(conn.conn_id, iq_error(iq, 501, "feature-not-implemented"))]


def _parse_key_node(node: Node, *, signed: bool) -> tuple[int, bytes, bytes | None]:
    key_id = node.child_bytes("id")
    value = node.child_bytes("value")
    signature = node.child_bytes("signature")
    public = None if value is None else crypto.raw_public_key(value)
    if (
        key_id is None
        or len(key_id) != 3
        or public is None
        or (signed and (signature is None or len(signature) != 64))
    ):
        raise ClientProtocolError(f"malformed <{node.tag}> in pre-key upload")
    return int.from_bytes(key_id, "big"), public, signature


def _upload_pre_keys(ctx: Context, conn: Connection, iq: Node, device: CompanionDevice) -> list[Action]:
    identity = iq.child_bytes("identity")
    identity = None if identity is None else crypto.raw_public_key(identity)
    if identity is None or not crypto.constant_time_equal(identity, device.identity_public):
        return [Send(conn.conn_id, iq_error(iq, 406, "not-acceptable"))]
    keys = [_parse_key_node(k, signed=False) for k in iq.children("list")[0].children("key")]
    skey = iq.child("skey")
    if skey is not None:
        key_id, public, signature = _parse_key_node(skey, signed=True)
        assert signature is not None
        if not pairing.signed_pre_key_valid(device.identity_public, public, signature):
            return [Send(conn.conn_id, iq_error(iq, 406, "not-acceptable"))]
        device.signed_pre_key = SignedPreKey(key_id, public, signature)
    for key_id, public, _ in keys:
        device.pre_keys[key_id] = public
    ctx.on_change()
    return [Send(conn.conn_id, iq_result(iq))]


def _store_signed_pre_key(
    ctx: Context, conn: Connection, iq: Node, device: CompanionDevice, skey: Node
) -> list[Action]:
    key_id, public, signature = _parse_key_node(skey, signed=True)
    assert signature is not None
    if not pairing.signed_pre_key_valid(device.identity_public, public, signature):
        return [Send(conn.conn_id, iq_error(iq, 406, "not-acceptable"))]
    device.signed_pre_key = SignedPreKey(key_id, public, signature)
    ctx.on_change()
    return [Send(conn.conn_id, iq_result(iq))]


def _digest(device: CompanionDevice) -> Node:
    """The server's view of the key bundle; ``hash`` is SHA-1 over identity, signed pre-key,
    its signature and the one-time pre-keys in id order."""
    ids = sorted(device.pre_keys)
    spk = device.signed_pre_key
    digest = hashlib.sha1(usedforsecurity=False)
    for part in (device.identity_public, spk.public, spk.signature, *(device.pre_keys[i] for i in ids)):
        digest.update(part)
    return Node(
        "digest",
        {},
        [
            Node("type", {}, bytes([crypto.DJB_KEY_TYPE])),
            Node("registration", {}, device.registration_id.to_bytes(4, "big")),
            Node("identity", {}, device.identity_public),
            bundles.key_node("skey", spk.key_id, spk.public, spk.signature),
            Node("list", {}, [_id_node(i) for i in ids]),
            Node("hash", {}, digest.digest()),
        ],
    )
