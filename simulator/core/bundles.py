"""Pre-key bundles of other devices, as contacts starting sessions fetch them: each fetch consumes
one one-time pre-key (lowest id first); a device left with fewer than ``PRE_KEY_LOW_WATERMARK`` is
sent ``<notification type=encrypt><count value=N/>``."""

from __future__ import annotations

import logging

from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.signal.types import PreKeyBundle
from simulator import crypto
from simulator.core.actions import Action, Send
from simulator.core.addressing import resolve
from simulator.core.connections import Connection
from simulator.core.context import Context
from simulator.core.phones import ensure_primary, refill_primary_pre_keys
from simulator.core.stanzas import iq_result
from simulator.errors import InvalidRequestError
from simulator.state import CompanionDevice, Phone, PrimaryKeys

log = logging.getLogger(__name__)

PRE_KEY_LOW_WATERMARK = 5  # whatsmeow MinPreKeyCount: under this a client uploads more


def key_node(tag: str, key_id: int, public: bytes, signature: bytes | None = None) -> Node:
    children = [Node("id", {}, key_id.to_bytes(3, "big")), Node("value", {}, public)]
    if signature is not None:
        children.append(Node("signature", {}, signature))
    return Node(tag, {}, children)


def fetch_bundles(ctx: Context, conn: Connection, iq: Node) -> list[Action]:
    """``iq get encrypt <key><user jid/>...``: a bundle (or a 404) per device asked for, named as asked
    (PN or LID). Device 0 is the phone itself; every other device is a linked companion."""
    users: list[Node] = []
    actions: list[Action] = []
    key = iq.child("key")
    requests = [] if key is None else key.children("user")
    for request in requests:
        jid_text = request.attrs.get("jid", "")
        address = resolve(ctx.state, jid_text)
        device_id = 0 if address is None else address.device_id or 0
        if address is None or not address.phone.has_device(device_id):
            error = Node("error", {"code": "404", "text": "item-not-found"})
            users.append(Node("user", {"jid": jid_text}, [error]))
            continue
        bundle, more = bundle_for(ctx, address.phone, device_id)
        actions += more
        users.append(Node("user", {"jid": jid_text}, _bundle_children(bundle)))
    return [Send(conn.conn_id, iq_result(iq, [Node("list", {}, users)])), *actions]


def bundle_for(ctx: Context, phone: Phone, device_id: int) -> tuple[PreKeyBundle, list[Action]]:
    """A device's published keys as a contact fetches them, consuming one one-time pre-key."""
    actions: list[Action] = []
    if device_id == 0:
        primary = ensure_primary(ctx, phone)
        registration_id, identity, spk = primary.registration_id, phone.identity_public, primary.signed_pre_key
        pre_key = _take_primary_pre_key(ctx, primary)
    else:
        device = phone.device(device_id)
        registration_id, identity, spk = device.registration_id, device.identity_public, device.signed_pre_key
        taken, actions = consume(ctx, phone, device, 1)
        pre_key = taken[0] if taken else None
    bundle = PreKeyBundle(
        registration_id=registration_id,
        identity_key=identity,
        signed_pre_key_id=spk.key_id,
        signed_pre_key=spk.public,
        signed_pre_key_signature=spk.signature,
        pre_key_id=None if pre_key is None else pre_key[0],
        pre_key=None if pre_key is None else pre_key[1],
    )
    return bundle, actions


def _bundle_children(bundle: PreKeyBundle) -> list[Node]:
    children = [
        Node("registration", {}, bundle.registration_id.to_bytes(4, "big")),
        Node("type", {}, bytes([crypto.DJB_KEY_TYPE])),
        Node("identity", {}, bundle.identity_key),
    ]
    if bundle.pre_key_id is not None and bundle.pre_key is not None:
        children.append(key_node("key", bundle.pre_key_id, bundle.pre_key))
    children.append(
        key_node("skey", bundle.signed_pre_key_id, bundle.signed_pre_key, bundle.signed_pre_key_signature)
    )
    return children


def _take_primary_pre_key(ctx: Context, primary: PrimaryKeys) -> tuple[int, bytes] | None:
    """The phone's lowest one-time pre-key; the phone publishes a new batch when few are left (its
    private half stays until a pkmsg uses it)."""
    if not primary.pre_keys:
        return None
    key_id = min(primary.pre_keys)
    taken = (key_id, primary.pre_keys.pop(key_id))
    if len(primary.pre_keys) < PRE_KEY_LOW_WATERMARK:
        refill_primary_pre_keys(ctx, primary)
    ctx.on_change()
    return taken


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
