"""Builders and readers of the stanzas the client exchanges after the handshake.

Shapes follow Baileys (``socket.ts``, ``stanza-ack.ts``) and whatsmeow (``keepalive.go``, ``prekeys.go``,
``receipt.go``). Builders return ``Node`` values without ids; ``Client._query`` assigns ids to iqs it
expects answers for.
"""

from __future__ import annotations

from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.errors import IqError, MessageFormatError
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


def check_iq_result(reply: Node) -> None:
    """Raise ``IqError`` when ``reply`` is an iq ``type="error"`` (its ``<error code text>`` kept), and
    ``MessageFormatError`` when it is no iq result at all."""
    if reply.tag != "iq":
        raise MessageFormatError(f"expected an iq answer, got <{reply.tag}>")
    kind = reply.attrs.get("type")
    if kind == "error":
        error = reply.child("error")
        code = uint_attr(error.attrs.get("code")) if error is not None else None
        text = error.attrs.get("text", "") if error is not None else ""
        raise IqError(code, text)
    if kind != "result":
        raise MessageFormatError(f"iq answer of type {kind!r}")


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


def uint_attr(value: str | None) -> int | None:
    """A decimal attribute as an int, or None when absent or not plain ASCII digits (``"²"`` is no count)."""
    if not value or not value.isascii() or not value.isdigit():
        return None
    return int(value)


def count_value(node: Node) -> int | None:
    """The ``value`` of a ``<count>`` child, as in pre-key count answers and notifications."""
    count = node.child("count")
    return uint_attr(count.attrs.get("value")) if count is not None else None


def incoming_message(node: Node) -> IncomingMessage:
    """Read a ``<message>`` stanza; its ``<enc>`` payloads stay opaque ciphertext, in stanza order.

    Attributes as Baileys reads them (``decode-wa-message.ts``): ``notify`` is the push name; in ``lid``
    addressing the alternative (PN) author is ``participant_pn``, ``sender_pn`` or ``peer_recipient_pn``
    and the recipient's ``recipient_pn``; in ``pn`` addressing the ``_lid`` forms.
    """
    attrs = node.attrs
    if not attrs.get("id") or not attrs.get("from"):
        raise MessageFormatError("message stanza lacks id or from")
    payloads = tuple(
        EncryptedPayload(type=enc.attrs.get("type", ""), version=enc.attrs.get("v", ""), ciphertext=enc.content,
                         count=uint_attr(enc.attrs.get("count")), media_type=enc.attrs.get("mediatype"))
        for enc in node.children("enc")
        if isinstance(enc.content, bytes)
    )
    author = attrs.get("participant") or attrs["from"]
    mode = attrs.get("addressing_mode") or ("lid" if author.endswith("lid") else "pn")
    other = "pn" if mode == "lid" else "lid"
    sender_alt = (attrs.get(f"participant_{other}") or attrs.get(f"sender_{other}")
                  or attrs.get(f"peer_recipient_{other}"))
    return IncomingMessage(
        id=attrs["id"],
        sender=attrs["from"],
        participant=attrs.get("participant"),
        recipient=attrs.get("recipient"),
        timestamp=uint_attr(attrs.get("t")),
        type=attrs.get("type"),
        payloads=payloads,
        node=node,
        push_name=attrs.get("notify") or None,
        addressing_mode=mode,
        sender_alt=sender_alt or None,
        recipient_alt=attrs.get(f"recipient_{other}") or None,
        category=attrs.get("category"),
    )
