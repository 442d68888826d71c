"""Groups: created and changed by a member's device (``iq xmlns=w:g2``, Baileys ``groups.ts``) or by
a phone's owner through the control API; their metadata is what a sender needs to fan a message out
(``simulator.core.messages``).

iqs served (``to`` is ``@g.us`` or the group's JID):

=====================================  ============================================================
``get <query request=interactive>``    ``<group id subject creator creation s_t s_o addressing_mode
                                       size><participant jid phone_number|lid type/>...</group>``
``get @g.us <participating>``          ``<groups>`` with every group the account is in
``set @g.us <create subject>``         a new group with the creator (superadmin) and the listed users
``set <add|remove|promote|demote>``    one ``<participant jid [error]/>`` per user asked for
``set <subject>``, ``set <leave>``     result
=====================================  ============================================================

Every change is announced to every device of every member (and of those just removed) with
``<notification type=w:gp2 from=<group> participant=<actor>>`` holding ``<create>`` (the metadata),
``<add|remove|promote|demote|leave>`` (the participants) or ``<subject>``; like messages, it waits in
each device's queue until the device acknowledges it (``<ack class=notification>``).

Participants are listed in the group's addressing mode: ``lid`` (what WhatsApp uses for new groups
and what Baileys 7 assumes): ``jid=<lid>@lid phone_number=<pn>@s.whatsapp.net``; ``pn``: the reverse.
Only members may read or change a group (403 otherwise); unknown groups are 404.
"""

from __future__ import annotations

import logging

from connector.protocol.binary import Jid, Node
from connector.protocol.errors import JidError
from simulator.core import offline
from simulator.core.actions import Action, Send
from simulator.core.addressing import account_jid, alternate_server, resolve
from simulator.core.connections import Connection
from simulator.core.context import Context
from simulator.core.stanzas import iq_error, iq_result
from simulator.errors import InvalidRequestError, NotFoundError
from simulator.state import GROUP_SERVER, LID_SERVER, USER_SERVER, Group, Phone

log = logging.getLogger(__name__)

MAX_SUBJECT_CHARS = 100
ROLE_SUPERADMIN = "superadmin"
ROLE_ADMIN = "admin"


def create_group(ctx: Context, creator: Phone, subject: str, members: list[Phone]) -> Group:
    subject = subject.strip()
    if not subject or len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidRequestError(f"subject must be 1-{MAX_SUBJECT_CHARS} characters")
    while True:
        group_id = "1203630" + str(int.from_bytes(ctx.random(6), "big") % 10**11).zfill(11)
        if group_id not in ctx.state.groups:
            break
    now = int(ctx.clock())
    group = Group(group_id, subject, creator.user, now, {creator.user: ROLE_SUPERADMIN}, now)
    for member in members:
        group.participants.setdefault(member.user, "")
    ctx.state.groups[group_id] = group
    ctx.on_change()
    log.info("group %s created by %s with %d members", group_id, creator.user, len(group.participants))
    return group


def change_participants(ctx: Context, group: Group, action: str, users: list[str]) -> dict[str, int]:
    """add / remove / promote / demote; returns a status per user (200, or 404 not a member, 409 a
    member already)."""
    if action not in ("add", "remove", "promote", "demote"):
        raise InvalidRequestError(f"unknown participant action {action!r}")
    statuses: dict[str, int] = {}
    for user in users:
        present = user in group.participants
        if action == "add":
            statuses[user] = 409 if present else 200
            group.participants.setdefault(user, "")
        elif not present:
            statuses[user] = 404
        elif action == "remove":
            del group.participants[user]
            statuses[user] = 200
        else:
            group.participants[user] = ROLE_ADMIN if action == "promote" else ""
            statuses[user] = 200
    ctx.on_change()
    return statuses


def notify(ctx: Context, group: Group, actor: Phone, change: Node, *, also: list[str] = ()) -> list[Action]:
    """``<notification type=w:gp2 from=<group> participant=<actor>>`` with ``change`` to every device of
    every member (and of ``also``: members just removed), queued like messages until acknowledged."""
    server = LID_SERVER if group.addressing_mode == "lid" else USER_SERVER
    attrs = {
        "from": group.jid,
        "type": "w:gp2",
        "id": ctx.new_id(),
        "t": str(int(ctx.clock())),
        "participant": account_jid(actor, server),
        "participant_pn" if server == LID_SERVER else "participant_lid": account_jid(actor, alternate_server(server)),
    }
    node = Node("notification", attrs, [change])
    actions: list[Action] = []
    for user in [*group.participants, *also]:
        phone = ctx.state.phones.get(user)
        for device_id in [] if phone is None else phone.device_ids():
            actions += offline.deliver(ctx, phone, device_id, node)
    return actions


def participant_nodes(ctx: Context, group: Group, users: list[str]) -> list[Node]:
    server = LID_SERVER if group.addressing_mode == "lid" else USER_SERVER
    alt_attr = "phone_number" if server == LID_SERVER else "lid"
    nodes = []
    for user in users:
        phone = ctx.state.phones.get(user)
        if phone is not None:
            nodes.append(Node("participant", {"jid": account_jid(phone, server),
                                              alt_attr: account_jid(phone, alternate_server(server))}))
    return nodes


def metadata_node(ctx: Context, group: Group) -> Node:
    server = LID_SERVER if group.addressing_mode == "lid" else USER_SERVER
    other = alternate_server(server)
    alt_attr = "phone_number" if server == LID_SERVER else "lid"
    creator = ctx.state.phones.get(group.creator)
    attrs = {
        "id": group.group_id,
        "subject": group.subject,
        "creation": str(group.created_at),
        "s_t": str(group.subject_time),
        "addressing_mode": group.addressing_mode,
        "size": str(len(group.participants)),
    }
    if creator is not None:
        attrs["creator"] = attrs["s_o"] = account_jid(creator, server)
        attrs["creator_pn" if server == LID_SERVER else "creator_lid"] = account_jid(creator, other)
    participants = []
    for user, role in group.participants.items():
        phone = ctx.state.phones.get(user)
        if phone is None:
            continue
        p_attrs = {"jid": account_jid(phone, server), alt_attr: account_jid(phone, other)}
        if role:
            p_attrs["type"] = role
        participants.append(Node("participant", p_attrs))
    return Node("group", attrs, participants)


def group_iq(ctx: Context, conn: Connection, iq: Node) -> list[Action]:
    assert conn.user is not None
    phone = ctx.state.phones[conn.user]
    first = next(iter(iq.children()), None)
    tag = "" if first is None else first.tag
    kind = iq.attrs.get("type")
    to = iq.attrs.get("to", "")

    def answer(content: list[Node] | None = None) -> list[Action]:
        return [Send(conn.conn_id, iq_result(iq, content))]

    def error(code: int, text: str) -> list[Action]:
        return [Send(conn.conn_id, iq_error(iq, code, text))]

    if first is None:
        return error(400, "bad-request")
    if to == "@" + GROUP_SERVER:
        if kind == "get" and tag == "participating":
            mine = [metadata_node(ctx, g) for _, g in sorted(ctx.state.groups.items()) if phone.user in g.participants]
            return answer([Node("groups", {}, mine)])
        if kind == "set" and tag == "create":
            members = _phones(ctx, first.children("participant"))
            try:
                group = create_group(ctx, phone, first.attrs.get("subject", ""), members)
            except InvalidRequestError:
                return error(400, "bad-request")
            created = Node("create", {"type": "new", "key": first.attrs.get("key", "")}, [metadata_node(ctx, group)])
            return [*answer([metadata_node(ctx, group)]), *notify(ctx, group, phone, created)]
        if kind == "set" and tag == "leave":
            actions: list[Action] = []
            for child in first.children("group"):
                group = ctx.state.groups.get(child.attrs.get("id", "").removesuffix("@" + GROUP_SERVER))
                if group is not None and group.participants.pop(phone.user, None) is not None:
                    ctx.on_change()
                    left = Node("leave", {}, participant_nodes(ctx, group, [phone.user]))
                    actions += notify(ctx, group, phone, left, also=[phone.user])
            return [*answer(), *actions]
        return error(501, "feature-not-implemented")
    try:
        group = ctx.state.group(Jid.parse(to).user)
    except (JidError, NotFoundError):
        return error(404, "item-not-found")
    if phone.user not in group.participants:
        return error(403, "forbidden")
    if kind == "get" and tag == "query":
        return answer([metadata_node(ctx, group)])
    if kind == "set" and tag in ("add", "remove", "promote", "demote"):
        requested = first.children("participant")
        users = [p.user for p in _phones(ctx, requested)]
        statuses = change_participants(ctx, group, tag, users)
        result = []
        for request in requested:
            address = resolve(ctx.state, request.attrs.get("jid", ""))
            attrs = {"jid": request.attrs.get("jid", "")}
            status = 404 if address is None else statuses.get(address.phone.user, 404)
            if status != 200:
                attrs["error"] = str(status)
            result.append(Node("participant", attrs))
        done = [user for user, status in statuses.items() if status == 200]
        changed = Node(tag, {}, participant_nodes(ctx, group, done))
        removed = done if tag == "remove" else []
        return [*answer([Node(tag, {}, result)]), *(notify(ctx, group, phone, changed, also=removed) if done else [])]
    if kind == "set" and tag == "subject" and isinstance(first.content, bytes):
        subject = first.content.decode("utf-8", "replace").strip()
        if not subject or len(subject) > MAX_SUBJECT_CHARS:
            return error(400, "bad-request")
        group.subject, group.subject_time = subject, int(ctx.clock())
        ctx.on_change()
        changed = Node("subject", {"subject": subject, "s_t": str(group.subject_time)})
        return [*answer(), *notify(ctx, group, phone, changed)]
    return error(501, "feature-not-implemented")


def _phones(ctx: Context, nodes: list[Node]) -> list[Phone]:
    found = []
    for node in nodes:
        address = resolve(ctx.state, node.attrs.get("jid", ""))
        if address is not None:
            found.append(address.phone)
    return found
