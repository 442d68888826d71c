"""``<receipt>`` from a device: it confirms messages in the device's own queue, is acknowledged, and
is routed to the message's sender.

What a receiving device sends (Baileys ``sendReceipt`` / ``sendRetryRequest``)::

    <receipt id to=<chat or sender device> [participant=<group author>] [recipient] [type] [t]>
      [<list><item id/>...</list>]                         more message ids
      [<retry count id t v/><registration/>[<keys/>]]      type=retry

Routing, in the form the receipt named its target (PN or LID):

- delivery (no type), ``inactive``, ``read``, ``read-self``, ``played``: to every device of the
  sender's account, as ``<receipt from=<receiving account> participant=<receiving companion> id t
  [type]>`` (``participant`` absent for the primary; groups: ``from=<group>
  participant=<receiving device>``);
- ``retry``: to the one device that sent the message (``to`` in 1:1, ``participant`` in groups),
  with its ``<retry>``/``<registration>``/``<keys>`` children, so that device can re-encrypt;
- ``sender``, ``peer_msg``, ``hist_sync`` (a device's own bookkeeping): not routed.

Receipts for an offline device wait in its queue like messages (``simulator.core.offline``). The
receiving device gets ``<ack class=receipt id from=<to> [type]>``.
"""

from __future__ import annotations

from connector.protocol.binary import Jid, Node
from connector.protocol.errors import JidError
from simulator.core import offline
from simulator.core.actions import Action, Send
from simulator.core.addressing import account_jid, device_address, resolve
from simulator.core.connections import Connection
from simulator.core.context import Context
from simulator.state import GROUP_SERVER, LID_SERVER, USER_SERVER, Phone

ROUTED_TYPES = frozenset({None, "inactive", "read", "read-self", "played", "retry"})


def receipt(ctx: Context, conn: Connection, node: Node) -> list[Action]:
    assert conn.user is not None and conn.device_id is not None
    phone = ctx.state.phones[conn.user]
    message_id = node.attrs.get("id", "")
    ids = [message_id] + [item.attrs.get("id", "") for item in _items(node)]
    offline.confirm(ctx, phone, conn.device_id, "message", ids)
    kind = node.attrs.get("type")
    to_text = node.attrs.get("to", "")
    ack_attrs = {"class": "receipt", "id": message_id, "from": to_text}
    if kind is not None:
        ack_attrs["type"] = kind
    actions: list[Action] = [Send(conn.conn_id, Node("ack", ack_attrs))]
    if kind not in ROUTED_TYPES or not message_id:
        return actions
    return route(ctx, phone, conn.device_id, node, to_text=to_text, kind=kind) + actions


def _items(node: Node) -> list[Node]:
    listed = node.child("list")
    return [] if listed is None else listed.children("item")


def route(ctx: Context, phone: Phone, device_id: int, node: Node, *, to_text: str, kind: str | None) -> list[Action]:
    """Forward a receipt of ``phone``'s ``device_id`` to the message's sender (see module docstring)."""
    try:
        to = Jid.parse(to_text)
    except JidError:
        return []
    attrs = {"id": node.attrs["id"], "t": node.attrs.get("t") or str(int(ctx.clock()))}
    if kind is not None:
        attrs["type"] = kind
    if to.server == GROUP_SERVER:
        author = resolve(ctx.state, node.attrs.get("participant", ""))
        if author is None or to.user not in ctx.state.groups:
            return []
        attrs["from"] = to_text
        attrs["participant"] = device_address(phone, device_id, author.server)
    else:
        author = resolve(ctx.state, to_text)
        if author is None:
            return []
        # The account as ``from``, the device as ``participant`` (Baileys looks the message up by
        # chat and re-encrypts for the participant device alone)
        server = LID_SERVER if author.is_lid else USER_SERVER
        attrs["from"] = account_jid(phone, server)
        if device_id:
            attrs["participant"] = device_address(phone, device_id, server)
    if kind == "retry":  # the device that sent the message, with what it needs to re-encrypt
        content = [c for c in node.children() if c.tag != "list"]
        devices = [author.device_id or 0]
    else:  # every device of the sender's account, with the other message ids
        content = [c for c in node.children() if c.tag == "list"]
        devices = author.phone.device_ids()
    forwarded = Node("receipt", attrs, content or None)
    actions: list[Action] = []
    for target in devices:
        if (author.phone.user, target) == (phone.user, device_id) or not author.phone.has_device(target):
            continue
        actions += offline.deliver(ctx, author.phone, target, forwarded)
    return actions
