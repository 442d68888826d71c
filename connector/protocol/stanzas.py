"""Builders and readers of the stanzas the client exchanges after the handshake.

Shapes follow Baileys (``socket.ts``, ``stanza-ack.ts``) and whatsmeow (``keepalive.go``, ``prekeys.go``,
``receipt.go``). Builders return ``Node`` values without ids; ``Client._query`` assigns ids to iqs it
expects answers for.
"""

from __future__ import annotations

from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.errors import MessageFormatError
from connector.protocol.events import EncryptedPayload, IncomingMessage


def iq(kind: str, xmlns: str, *children: Node) -> Node:
    return Node("iq", {"to": S_WHATSAPP_NET, "type": kind, "xmlns": xmlns}, list(children))


def ping() -> Node:
    """Keepalive (whatsmeow ``sendKeepAlive``): ``<iq xmlns="w:p" type="get"><ping/></iq>``."""
    return iq("get", "w:p", Node("ping"))


def pre_key_count() -> Node:
    return iq("get", "encrypt", Node("count"))


def key_digest() -> Node:
    return iq("get", "encrypt", Node("digest"))


def set_active() -> Node:
    return iq("set", "passive", Node("active"))


def remove_companion_device(device_jid: str) -> Node:
    """Logout: the companion asks to be unlinked (Baileys ``logout``, whatsmeow ``Logout``):
    ``<iq xmlns="md" type="set"><remove-companion-device jid=<own device> reason="user_initiated"/></iq>``."""
    return iq("set", "md", Node("remove-companion-device", {"jid": device_jid, "reason": "user_initiated"}))


def iq_result(request: Node) -> Node:
    """The empty ``result`` that acknowledges a server iq."""
    return Node("iq", {"to": request.attrs.get("from", S_WHATSAPP_NET), "id": request.attrs.get("id", ""),
                       "type": "result"})


def iq_error(request_id: str, code: int, text: str) -> Node:
    return Node("iq", {"to": S_WHATSAPP_NET, "type": "error", "id": request_id},
                [Node("error", {"code": str(code), "text": text})])


def offline_batch(count: int = 100) -> Node:
    """Asks for the next batch of messages queued while offline (Baileys, on ``offline_preview``)."""
    return Node("ib", {}, [Node("offline_batch", {"count": str(count)})])


def ack_for(node: Node, me: str | None) -> Node:
    """``<ack>`` for a received stanza (Baileys ``buildAckStanza``)."""
    attrs = {"id": node.attrs.get("id", ""), "to": node.attrs.get("from", S_WHATSAPP_NET), "class": node.tag}
    for name in ("participant", "recipient", "type"):
        if node.attrs.get(name):
            attrs[name] = node.attrs[name]
    if node.tag == "message" and me:
        attrs["from"] = me
    return Node("ack", attrs)


def delivery_receipt(message: IncomingMessage) -> Node:
    attrs = {"id": message.id, "to": message.sender}
    if message.participant:
        attrs["participant"] = message.participant
    return Node("receipt", attrs)


def count_value(node: Node) -> int | None:
    """The ``value`` of a ``<count>`` child, as in pre-key count answers and notifications."""
    count = node.child("count")
    value = count.attrs.get("value", "") if count is not None else ""
    return int(value) if value.isdigit() else None


def incoming_message(node: Node) -> IncomingMessage:
    """Read a ``<message>`` stanza; its ``<enc>`` payloads stay opaque ciphertext."""
    attrs = node.attrs
    if not attrs.get("id") or not attrs.get("from"):
        raise MessageFormatError("message stanza lacks id or from")
    payloads = tuple(
        EncryptedPayload(type=enc.attrs.get("type", ""), version=enc.attrs.get("v", ""), ciphertext=enc.content)
        for enc in node.children("enc")
        if isinstance(enc.content, bytes)
    )
    timestamp = attrs.get("t", "")
    return IncomingMessage(
        id=attrs["id"],
        sender=attrs["from"],
        participant=attrs.get("participant"),
        recipient=attrs.get("recipient"),
        timestamp=int(timestamp) if timestamp.isdigit() else None,
        type=attrs.get("type"),
        payloads=payloads,
        node=node,
    )
