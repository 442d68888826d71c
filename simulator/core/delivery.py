"""Contacts' messages posted through the control API (``POST /v1/phones/{phone}/messages`` with
``from``): opaque ciphertext sent to every linked device through the offline queue
(``simulator.core.offline``), kept until the device confirms it."""

from __future__ import annotations

from connector.protocol.binary import Node
from simulator.core import offline
from simulator.core.actions import Action
from simulator.core.connections import Connection, Phase
from simulator.core.context import Context
from simulator.errors import ConflictError, InvalidRequestError
from simulator.state import QueuedStanza, normalize_phone, user_jid

ENC_TYPES = ("msg", "pkmsg", "skmsg")


def deliver_message(
    ctx: Context,
    phone: str,
    sender: str,
    *,
    message_id: str | None = None,
    message_type: str = "text",
    enc_type: str = "msg",
    ciphertext: bytes | None = None,
) -> tuple[QueuedStanza, list[int], list[Action]]:
    """A contact sends the account a message: every linked device gets it and keeps it pending
    until it confirms it; returns the message, the device ids it was sent to now, and actions."""
    owner = ctx.state.phone(phone)
    if enc_type not in ENC_TYPES:
        raise InvalidRequestError("encType must be msg, pkmsg or skmsg")
    attrs = {
        "from": user_jid(normalize_phone(sender)),
        "id": message_id or "3EB0" + ctx.random(8).hex().upper(),
        "t": str(int(ctx.clock())),
        "type": message_type,
    }
    body = ciphertext if ciphertext is not None else ctx.random(64)
    node = Node("message", attrs, [Node("enc", {"v": "2", "type": enc_type}, body)])
    for device in owner.devices.values():
        if any(m.klass == "message" and m.stanza_id == attrs["id"] for m in device.pending_messages):
            raise ConflictError(f"message {attrs['id']} is already pending")
    sent_to: list[int] = []
    actions: list[Action] = []
    for device_id in sorted(owner.devices):
        if ctx.conns.live.get((owner.user, device_id)) is not None:
            sent_to.append(device_id)
        actions += offline.deliver(ctx, owner, device_id, node)
    return QueuedStanza(node), sent_to, actions


def message_acked(ctx: Context, conn: Connection, node: Node) -> None:
    """``<ack class=message|receipt id>`` from a device: it is done with that stanza."""
    if conn.phase is not Phase.LOGGED_IN or conn.user is None or conn.device_id is None:
        return
    klass = node.attrs.get("class", "")
    peer = node.attrs.get("to") if klass == "receipt" else None
    participant = node.attrs.get("participant") if klass == "receipt" else None
    # a notification's id is the server's own, unique: the id alone names it
    phone = ctx.state.phones[conn.user]
    offline.confirm(ctx, phone, conn.device_id, klass, [node.attrs.get("id", "")], peer=peer, participant=participant)


def pending_messages(ctx: Context, phone: str, device_id: int) -> list[QueuedStanza]:
    owner = ctx.state.phone(phone)
    if not owner.has_device(device_id):
        owner.device(device_id)  # raises NotFoundError
    return [q for q in owner.queue(device_id) if q.klass == "message"]
