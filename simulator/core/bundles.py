"""Pre-key bundles of other devices, as contacts starting sessions fetch them: each fetch consumes
one one-time pre-key (lowest id first); a device left with fewer than ``PRE_KEY_LOW_WATERMARK`` is
sent ``<notification type=encrypt><count value=N/>``."""

from __future__ import annotations

import logging

from connector.protocol.binary import S_WHATSAPP_NET, Jid, Node
from connector.protocol.errors import JidError
from simulator import crypto
from simulator.core.actions import Action, Send
from simulator.core.connections import Connection
from simulator.core.context import Context
from simulator.core.stanzas import iq_result
from simulator.errors import InvalidRequestError, NotFoundError
from simulator.state import CompanionDevice, Phone

log = logging.getLogger(__name__)

PRE_KEY_LOW_WATERMARK = 5  # whatsmeow MinPreKeyCount: under this a client uploads more


def key_node(tag: str, key_id: int, public: bytes, signature: bytes | None = None) -> Node:
    children = [Node("id", {}, key_id.to_bytes(3, "big")), Node("value", {}, public)]
    if signature is not None:
        children.append(Node("signature", {}, signature))
    return Node(tag, {}, children)


def fetch_bundles(ctx: Context, conn: Connection, iq: Node) -> list[Action]:
    """``iq get encrypt <key><user jid/>...``: a bundle (or a 404) per user asked for."""
    users: list[Node] = []
    actions: list[Action] = []
    key = iq.child("key")
    requests = [] if key is None else key.children("user")
    for request in requests:
        jid_text = request.attrs.get("jid", "")
        try:
            jid = Jid.parse(jid_text)
            phone = ctx.state.phones[jid.user]
            device = phone.device(jid.device or 0)
        except (JidError, KeyError, NotFoundError):
            error = Node("error", {"code": "404", "text": "item-not-found"})
            users.append(Node("user", {"jid": jid_text}, [error]))
            continue
        pre_key, more = consume(ctx, phone, device, 1)
        actions += more
        spk = device.signed_pre_key
        children = [
            Node("registration", {}, device.registration_id.to_bytes(4, "big")),
            Node("type", {}, bytes([crypto.DJB_KEY_TYPE])),
            Node("identity", {}, device.identity_public),
        ]
        if pre_key:
            children.append(key_node("key", pre_key[0][0], pre_key[0][1]))
        children.append(key_node("skey", spk.key_id, spk.public, spk.signature))
        users.append(Node("user", {"jid": jid_text}, children))
    return [Send(conn.conn_id, iq_result(iq, [Node("list", {}, users)])), *actions]


def consume(
    ctx: Context, phone: Phone, device: CompanionDevice, count: int
) -> tuple[list[tuple[int, bytes]], list[Action]]:
    """Take ``count`` one-time pre-keys (lowest ids first), as contacts starting sessions do."""
    before = len(device.pre_keys)
    taken = [(key_id, device.pre_keys.pop(key_id)) for key_id in sorted(device.pre_keys)[:count]]
    after = len(device.pre_keys)
    if taken:
        ctx.on_change()
    live = ctx.conns.live.get((phone.user, device.device_id))
    if live is None or not taken or after >= PRE_KEY_LOW_WATERMARK:
        return taken, []
    attrs = {
        "from": S_WHATSAPP_NET,
        "type": "encrypt",
        "id": ctx.new_id(),
        "t": str(int(ctx.clock())),
    }
    log.info("%s device %s has %d pre-keys left (had %d)", phone.user, device.device_id, after, before)
    return taken, [Send(live, Node("notification", attrs, [Node("count", {"value": str(after)})]))]


def consume_pre_keys(ctx: Context, phone: str, device_id: int, count: int) -> tuple[int, list[Action]]:
    """Contacts fetch ``count`` bundles of a device; returns the pre-keys left."""
    owner = ctx.state.phone(phone)
    device = owner.device(device_id)
    if count < 1:
        raise InvalidRequestError("count must be at least 1")
    _, actions = consume(ctx, owner, device, count)
    return len(device.pre_keys), actions
