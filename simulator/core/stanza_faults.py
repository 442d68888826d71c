"""Stanza faults in transit (``simulator.faults``): the last step before a stanza goes to a device's
socket. The stanza is already in the device's offline queue, so a dropped or held one is not lost."""

from __future__ import annotations

from connector.protocol.binary import Node
from simulator.core.actions import Action, Send, SendLater
from simulator.core.context import Context
from simulator.faults import FaultKind
from simulator.state import Phone


def transit(ctx: Context, user: str, device_id: int, conn_id: int, node: Node) -> list[Action]:
    key = (user, device_id)
    fault = ctx.faults.take_stanza_fault(user, device_id, node.tag)
    actions: list[Action]
    if fault is None:
        actions = [Send(conn_id, node)]
    elif fault.kind is FaultKind.DROP_STANZA:
        actions = []
    elif fault.kind is FaultKind.DELAY_STANZA:
        assert fault.seconds is not None
        actions = [SendLater(conn_id, node, fault.seconds)]
    elif fault.kind is FaultKind.DUPLICATE_STANZA:
        actions = [Send(conn_id, node), Send(conn_id, node)]
    elif fault.kind is FaultKind.REORDER_STANZA:
        ctx.held[key] = (conn_id, node)
        return []
    else:
        actions = [Send(conn_id, corrupted(node))]
    held = ctx.held.pop(key, None)
    if held is not None and held[0] == conn_id:
        actions.append(Send(conn_id, held[1]))
    return actions


#: what acts on stanzas to a phone's own device (0), which has no socket to delay or reorder on
PHONE_KINDS = frozenset({FaultKind.DROP_STANZA, FaultKind.DUPLICATE_STANZA, FaultKind.CORRUPT_CIPHERTEXT})


def to_phone(ctx: Context, phone: Phone, node: Node) -> list[Action]:
    """A stanza for the phone itself, through the faults that apply there."""
    fault = ctx.faults.take_stanza_fault(phone.user, 0, node.tag, PHONE_KINDS)
    if fault is None:
        return ctx.phone_received(phone, node)
    if fault.kind is FaultKind.DROP_STANZA:
        return []
    if fault.kind is FaultKind.DUPLICATE_STANZA:
        return ctx.phone_received(phone, node) + ctx.phone_received(phone, node)
    return ctx.phone_received(phone, corrupted(node))


def corrupted(node: Node) -> Node:
    """``node`` with one byte flipped in the middle of every ciphertext: the MAC (pairwise) or the
    signature (sender key) no longer verifies."""

    def flip(child: Node) -> Node:
        if child.tag == "enc" and isinstance(child.content, bytes) and child.content:
            data = bytearray(child.content)
            data[len(data) // 2] ^= 0x5A
            return Node(child.tag, dict(child.attrs), bytes(data))
        if isinstance(child.content, list):
            return Node(child.tag, dict(child.attrs), [flip(c) for c in child.content])
        return child

    return flip(node)
