"""Contacts' messages: sent as opaque ciphertext to every linked device, kept per device until it
sends ``<ack class=message id/>``, sent again after each login (``simulator.core.login``)."""

from __future__ import annotations

from connector.protocol.binary import Node
from simulator.core.actions import Action, Send
from simulator.core.connections import Connection, Phase
from simulator.core.context import Context
from simulator.errors import ConflictError, InvalidRequestError
from simulator.state import PendingMessage, normalize_phone, user_jid

ENC_TYPES = ("msg", "pkmsg", "skmsg")


def message_node(message: PendingMessage) -> Node:
    attrs = {
        "from": message.sender,
        "id": message.message_id,
        "t": str(message.timestamp),
        "type": message.type,
    }
    return Node("message", attrs, [Node("enc", {"v": "2", "type": message.enc_type}, message.ciphertext)])


def deliver_message(
    ctx: Context,
    phone: str,
    sender: str,
    *,
    message_id: str | None = None,
    message_type: str = "text",
    enc_type: str = "msg",
    ciphertext: bytes | None = None,
) -> tuple[PendingMessage, list[int], list[Action]]:
    """A contact sends the account a message: every linked device gets it and keeps it pending
    until it acknowledges it; returns the message, the device ids it was sent to now, and actions."""
    owner = ctx.state.phone(phone)
    if enc_type not in ENC_TYPES:
        raise InvalidRequestError("encType must be msg, pkmsg or skmsg")
    message = PendingMessage(
        message_id=message_id or "3EB0" + ctx.random(8).hex().upper(),
        sender=user_jid(normalize_phone(sender)),
        timestamp=int(ctx.clock()),
        type=message_type,
        enc_type=enc_type,
        ciphertext=ciphertext if ciphertext is not None else ctx.random(64),
    )
    for device in owner.devices.values():
        if any(m.message_id == message.message_id for m in device.pending_messages):
            raise ConflictError(f"message {message.message_id} is already pending")
    sent_to: list[int] = []
    actions: list[Action] = []
    for device_id, device in sorted(owner.devices.items()):
        device.pending_messages.append(message)
        live = ctx.conns.live.get((owner.user, device_id))
        if live is not None:
            sent_to.append(device_id)
            actions.append(Send(live, message_node(message)))
    ctx.on_change()
    return message, sent_to, actions


def message_acked(ctx: Context, conn: Connection, message_id: str) -> None:
    if conn.phase is not Phase.LOGGED_IN:
        return
    device = ctx.device_of(conn)
    kept = [m for m in device.pending_messages if m.message_id != message_id]
    if len(kept) != len(device.pending_messages):
        device.pending_messages = kept
        ctx.on_change()


def pending_messages(ctx: Context, phone: str, device_id: int) -> list[PendingMessage]:
    return list(ctx.state.phone(phone).device(device_id).pending_messages)
