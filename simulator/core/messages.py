"""``<message>`` from a device: fanned out, queued per device, acknowledged to the sender.

What a sender's stanza looks like (Baileys ``relayMessage``, whatsmeow ``sendDM``/``sendGroup``)::

    <message id to type [phash] [category] [participant] [recipient] [addressing_mode]>
      <participants><to jid="user:N@server"><enc v=2 type=pkmsg|msg/></to>...</participants>
      [<enc v=2 type=skmsg/>]            groups: one sender-key ciphertext for every member device
      [<enc v=2 type=.../>]              a resend for one device (to / participant names it)
      [<device-identity/>]               with any pkmsg: passed through to the devices that get one
    </message>

Rules (each recipient device gets only what is meant for it):

- 1:1 (``to`` a PN or LID user): each ``<to>`` names a device of the recipient or another device of
  the sender; that device gets ``<message from=<sender device> id t type notify>`` with its ``<enc>``,
  in the addressing the sender used (``sender_lid`` / ``sender_pn`` carry the other form). The
  sender's own devices get ``recipient=<chat>`` as well. The sending device gets nothing.
- Groups (``to`` ``<id>@g.us``): every device of every member except the sending one gets
  ``<message from=<group> participant=<sender device> addressing_mode>`` with its pairwise ``<enc>``
  (the sender-key distribution) if the sender made one, then the ``skmsg``.
- A resend after a retry receipt names one device (``to`` a device JID, or ``participant`` in a
  group): only that device gets it; it replaces the queued original.
- ``category=peer`` (to the sender's own phone): the ``<enc>`` goes to that device.

The sender gets ``<ack class=message id from=<to> t [phash]>``; a stanza the server cannot route gets
the ack with ``error``: 400 (malformed: no ``to``, bad JID, nothing to deliver), 404 (no such user or
group), 403 (the sender is not a member of the group).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from connector.protocol.binary import Jid, Node
from connector.protocol.errors import JidError
from connector.protocol.message_ids import participant_hash
from simulator.core import offline
from simulator.core.actions import Action, Send
from simulator.core.addressing import Address, account_jid, alternate_server, device_address, resolve
from simulator.core.connections import Connection
from simulator.core.context import Context
from simulator.state import GROUP_SERVER, LID_SERVER, USER_SERVER, Group, Phone

log = logging.getLogger(__name__)

ERROR_BAD_STANZA = 400
ERROR_NOT_MEMBER = 403
ERROR_UNKNOWN = 404
#: attributes of the sender's stanza the recipients see as they are
_PASSED_ATTRS = ("type", "category", "edit", "expiration", "mediatype", "push_priority")

Targets = dict[tuple[str, int], list[Node]]


def ack(to: str, message_id: str, t: int, *, error: int | None = None, phash: str | None = None) -> Node:
    attrs = {"class": "message", "id": message_id, "from": to, "t": str(t)}
    if phash is not None:
        attrs["phash"] = phash
    if error is not None:
        attrs["error"] = str(error)
    return Node("ack", attrs)


@dataclass(frozen=True)
class Origin:
    """The device a stanza comes from, and the connection its server ack goes to (None: the phone
    itself sent it, through the control API)."""

    phone: Phone
    device_id: int
    conn_id: int | None

    def answer(self, node: Node) -> list[Action]:
        return [] if self.conn_id is None else [Send(self.conn_id, node)]


def relay(ctx: Context, conn: Connection, node: Node) -> list[Action]:
    assert conn.user is not None and conn.device_id is not None
    return relay_from(ctx, Origin(ctx.state.phones[conn.user], conn.device_id, conn.conn_id), node)


def relay_from(ctx: Context, origin: Origin, node: Node) -> list[Action]:
    sender = origin.phone
    message_id = node.attrs.get("id", "")
    to_text = node.attrs.get("to", "")
    now = int(ctx.clock())

    def refused(code: int) -> list[Action]:
        log.info("message %s from %s:%s refused with %d", message_id, sender.user, origin.device_id, code)
        return origin.answer(ack(to_text, message_id, now, error=code))

    if not message_id or not to_text:
        return refused(ERROR_BAD_STANZA)
    try:
        to = Jid.parse(to_text)
    except JidError:
        return refused(ERROR_BAD_STANZA)
    if to.server == GROUP_SERVER:
        group = ctx.state.groups.get(to.user)
        if group is None:
            return refused(ERROR_UNKNOWN)
        if sender.user not in group.participants:
            return refused(ERROR_NOT_MEMBER)
        return _relay_group(ctx, origin, group, node=node, now=now)
    destination = resolve(ctx.state, to_text)
    if destination is None:
        return refused(ERROR_UNKNOWN)
    return _relay_direct(ctx, origin, destination, node=node, now=now)


def _pairwise(ctx: Context, node: Node, allowed: set[str]) -> Targets:
    """The ``<participants><to jid>`` entries that name an existing device of an allowed account."""
    targets: Targets = {}
    participants = node.child("participants")
    for to in [] if participants is None else participants.children("to"):
        address = resolve(ctx.state, to.attrs.get("jid", ""))
        if address is None or address.phone.user not in allowed:
            continue
        device_id = address.device_id or 0
        if address.phone.has_device(device_id):
            targets.setdefault((address.phone.user, device_id), []).extend(to.children("enc"))
    return targets


def _direct_encs(node: Node) -> list[Node]:
    return [enc for enc in node.children("enc") if enc.attrs.get("type") != "skmsg"]


def _relay_direct(ctx: Context, origin: Origin, destination: Address, *, node: Node, now: int) -> list[Action]:
    sender = origin.phone
    server = destination.server
    targets = _pairwise(ctx, node, {sender.user, destination.phone.user})
    direct = _direct_encs(node)
    if direct:  # a resend to one device, or a peer message to the sender's own phone
        targets.setdefault((destination.phone.user, destination.device_id or 0), []).extend(direct)
    targets.pop((sender.user, origin.device_id), None)
    if not targets:
        return origin.answer(ack(node.attrs["to"], node.attrs["id"], now, error=ERROR_BAD_STANZA))
    chat = node.attrs.get("recipient") or destination.user_jid()
    actions: list[Action] = []
    for (user, device_id), encs in sorted(targets.items()):
        attrs = _common_attrs(node, sender, now)
        attrs["from"] = device_address(sender, origin.device_id, server)
        if user == sender.user and destination.phone.user != sender.user:
            attrs["recipient"] = chat
        alt = "sender_pn" if server == LID_SERVER else "sender_lid"
        attrs[alt] = account_jid(sender, alternate_server(server))
        actions += _deliver(ctx, user, device_id, Node("message", attrs, _content(node, encs)))
    return [*actions, *origin.answer(ack(node.attrs["to"], node.attrs["id"], now))]


def _relay_group(ctx: Context, origin: Origin, group: Group, *, node: Node, now: int) -> list[Action]:
    sender = origin.phone
    server = LID_SERVER if group.addressing_mode == "lid" else USER_SERVER
    members = set(group.participants)
    pairwise = _pairwise(ctx, node, members)
    skmsg = [enc for enc in node.children("enc") if enc.attrs.get("type") == "skmsg"]
    devices = [
        (user, device_id)
        for user in sorted(members)
        if (phone := ctx.state.phones.get(user)) is not None
        for device_id in phone.device_ids()
    ]
    only = node.attrs.get("participant")
    if only is not None:  # a resend after a retry receipt: that device alone
        address = resolve(ctx.state, only)
        if address is None:
            return origin.answer(ack(group.jid, node.attrs["id"], now, error=ERROR_UNKNOWN))
        key = (address.phone.user, address.device_id or 0)
        devices = [key] if key in devices else []
        pairwise.setdefault(key, []).extend(_direct_encs(node))
    actions: list[Action] = []
    fanned: list[Jid] = []
    for user, device_id in devices:
        if (user, device_id) == (sender.user, origin.device_id):
            continue
        encs = pairwise.get((user, device_id), []) + skmsg
        if not encs:
            continue
        attrs = _common_attrs(node, sender, now)
        attrs["from"] = group.jid
        attrs["participant"] = device_address(sender, origin.device_id, server)
        alt = "participant_pn" if server == LID_SERVER else "participant_lid"
        attrs[alt] = account_jid(sender, alternate_server(server))
        attrs["addressing_mode"] = group.addressing_mode
        fanned.append(Jid.parse(device_address(ctx.state.phones[user], device_id, server)))
        actions += _deliver(ctx, user, device_id, Node("message", attrs, _content(node, encs)))
    phash = participant_hash(fanned) if only is None else None
    return [*actions, *origin.answer(ack(group.jid, node.attrs["id"], now, phash=phash))]


def _common_attrs(node: Node, sender: Phone, now: int) -> dict[str, str]:
    attrs = {"id": node.attrs["id"], "t": str(now)}
    attrs.update({k: node.attrs[k] for k in _PASSED_ATTRS if k in node.attrs})
    attrs.setdefault("type", "text")
    if sender.push_name:
        attrs["notify"] = sender.push_name
    return attrs


def _content(node: Node, encs: list[Node]) -> list[Node]:
    """A recipient's children: its ciphertexts, and the sender's device identity when one of them
    starts a session (a pkmsg)."""
    content = list(encs)
    identity = node.child("device-identity")
    if identity is not None and any(enc.attrs.get("type") == "pkmsg" for enc in encs):
        content.append(identity)
    return content


def _deliver(ctx: Context, user: str, device_id: int, node: Node) -> list[Action]:
    ctx.relayed_total += 1
    return offline.deliver(ctx, ctx.state.phones[user], device_id, node)
