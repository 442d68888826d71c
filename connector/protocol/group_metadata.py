"""The group metadata iq: who is in a group, which is what a sender needs to fan a message out.

Query (Baileys ``groupMetadata``, whatsmeow ``getGroupInfo``)::

    <iq xmlns="w:g2" type="get" to="<group>@g.us"><query request="interactive"/></iq>

Reply::

    <iq type="result"><group id subject creator creation addressing_mode size ...>
      <participant jid [phone_number | lid] [type="admin|superadmin"]/>...</group></iq>

A participant's ``jid`` is its address in the group's addressing mode (a phone number JID, or a LID
JID when ``addressing_mode="lid"``); the members are read as user JIDs (no device).
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.protocol.binary import GROUP_SERVER, Jid, Node
from connector.protocol.errors import JidError, MessageFormatError
from connector.protocol.stanzas import check_iq_result

GROUP_XMLNS = "w:g2"


@dataclass(frozen=True, slots=True)
class GroupMembers:
    group: Jid
    participants: tuple[Jid, ...]
    addressing_mode: str | None = None


def group_metadata_query(group: Jid) -> Node:
    """The metadata query for ``group`` (a ``...@g.us`` JID); raises ``MessageFormatError`` otherwise."""
    if group.server != GROUP_SERVER:
        raise MessageFormatError(f"{group} is no group JID")
    return Node("iq", {"to": str(group), "type": "get", "xmlns": GROUP_XMLNS},
                [Node("query", {"request": "interactive"})])


def parse_group_members(reply: Node) -> GroupMembers:
    """Read the metadata reply; raises ``IqError`` when refused, ``MessageFormatError`` when malformed."""
    check_iq_result(reply)
    group = reply.child("group")
    if group is None:
        raise MessageFormatError("group metadata reply without <group>")
    group_id = group.attrs.get("id", "")
    try:
        group_jid = Jid.parse(group_id if "@" in group_id else f"{group_id}@{GROUP_SERVER}")
        members = tuple(Jid.parse(node.attrs.get("jid", "")).without_device()
                        for node in group.children("participant"))
    except JidError as exc:
        raise MessageFormatError(f"group metadata with a bad JID: {exc}") from None
    if not members:
        raise MessageFormatError("group metadata without participants")
    return GroupMembers(group_jid, members, group.attrs.get("addressing_mode") or None)
