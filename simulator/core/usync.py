"""``iq xmlns=usync``: who is on WhatsApp and which devices they have (Baileys ``executeUSyncQuery``,
whatsmeow ``usync``).

Asked ``<query><devices version=2/><lid/><contact/></query><list><user jid=.../></list>``, the server
answers per user, in the form it was asked (PN or LID):

- ``<devices><device-list><device id=0/><device id=N key-index=K/>...</device-list>
  <key-index-list ts=T/></devices>``: the primary and every linked companion (Baileys clients
  included); companions carry their ADV key index, which clients require for non-zero devices;
- ``<lid val=<lid>@lid/>`` for a PN user (clients learn the LID mapping from it);
- ``<contact type=in|out>`` for a ``<contact>+number</contact>`` lookup.

An unknown user gets an empty device list (and ``contact type=out``), not an error: a client asking
about many users must not lose the answer for all of them to one unknown number.
"""

from __future__ import annotations

from connector.protocol.binary import Node
from simulator.core.actions import Action, Send
from simulator.core.addressing import resolve
from simulator.core.connections import Connection
from simulator.core.context import Context
from simulator.core.stanzas import iq_error, iq_result
from simulator.errors import InvalidRequestError
from simulator.state import Phone, normalize_phone, user_jid


def usync_iq(ctx: Context, conn: Connection, iq: Node) -> list[Action]:
    usync = iq.child("usync")
    query = None if usync is None else usync.child("query")
    users = [] if usync is None else usync.children("list")
    if usync is None or query is None or not users:
        return [Send(conn.conn_id, iq_error(iq, 400, "bad-request"))]
    protocols = {child.tag for child in query.children()}
    answers = [_user(ctx, request, protocols) for request in users[0].children("user")]
    attrs = {k: v for k, v in usync.attrs.items() if k in ("sid", "mode", "context", "index", "last")}
    result = Node("result", {}, [Node(tag, {}) for tag in sorted(protocols)])
    return [Send(conn.conn_id, iq_result(iq, [Node("usync", attrs, [result, Node("list", {}, answers)])]))]


def _user(ctx: Context, request: Node, protocols: set[str]) -> Node:
    jid_text = request.attrs.get("jid", "")
    address = resolve(ctx.state, jid_text) if jid_text else None
    contact = request.child("contact")
    if contact is not None and isinstance(contact.content, bytes):
        try:
            phone = ctx.state.phones.get(normalize_phone(contact.content.decode("utf-8", "replace")))
        except InvalidRequestError:
            phone = None
        jid_text = user_jid(phone.user) if phone is not None else jid_text or "@s.whatsapp.net"
        found: Phone | None = phone
        is_lid = False
    else:
        found = None if address is None else address.phone
        is_lid = address is not None and address.is_lid
    children: list[Node] = []
    if "devices" in protocols:
        children.append(_devices(ctx, found))
    if "lid" in protocols:
        lid = None if found is None or is_lid else found.lid_jid
        children.append(Node("lid", {} if lid is None else {"val": lid}))
    if "contact" in protocols:
        children.append(Node("contact", {"type": "in" if found is not None else "out"}))
    return Node("user", {"jid": jid_text}, children)


def _devices(ctx: Context, phone: Phone | None) -> Node:
    if phone is None:
        return Node("devices", {}, [Node("device-list", {}, [])])
    listed = []
    for device_id in phone.device_ids():
        attrs = {"id": str(device_id)}
        if device_id:
            attrs["key-index"] = str(phone.devices[device_id].key_index)
        listed.append(Node("device", attrs))
    key_index = Node("key-index-list", {"ts": str(int(phone.created_at))})
    return Node("devices", {}, [Node("device-list", {}, listed), key_index])

