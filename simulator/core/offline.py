"""The per-device offline queue: every stanza the server owes a device (messages, receipts) is kept
until the device confirms it, and sent again after each login, marked ``offline``, before
``<ib><offline count=N/>``.

A device confirms a ``<message>`` with its ``<receipt>`` (any type, retry included: the device did get
it) or with ``<ack class=message>`` (what it sends when it cannot use the message), a ``<receipt>``
with ``<ack class=receipt>``, a ``<notification>`` (a group change) with ``<ack class=notification>``.
Stanzas for the phone itself (device 0) go to the phone (``simulator.core.phone_party``) instead of
a socket.
"""

from __future__ import annotations

from collections.abc import Iterable

from connector.protocol.binary import Node
from simulator.core import stanza_faults
from simulator.core.actions import Action
from simulator.core.context import Context
from simulator.state import Phone, QueuedStanza


def _same(a: Node, b: Node) -> bool:
    """Two stanzas are the same delivery when their kind and id match and, for receipts (several
    devices receipt one message id), who sent them."""
    if a.tag != b.tag or a.attrs.get("id") != b.attrs.get("id"):
        return False
    if a.tag in ("message", "notification"):
        return True
    return a.attrs.get("from") == b.attrs.get("from") and a.attrs.get("participant") == b.attrs.get("participant")


def deliver(ctx: Context, phone: Phone, device_id: int, node: Node) -> list[Action]:
    """Queue ``node`` for one device and send it now if the device is online. A stanza with the
    same identity (a resend after a retry receipt) replaces the queued one."""
    queue = phone.queue(device_id)
    queue[:] = [q for q in queue if not _same(q.node, node)]
    queue.append(QueuedStanza(node))
    ctx.on_change()
    if device_id == 0:
        return stanza_faults.to_phone(ctx, phone, node)
    conn_id = ctx.conns.live.get((phone.user, device_id))
    if conn_id is None:
        return []
    return stanza_faults.transit(ctx, phone.user, device_id, conn_id, node)


def confirm(
    ctx: Context,
    phone: Phone,
    device_id: int,
    tag: str,
    ids: Iterable[str],
    *,
    peer: str | None = None,
    participant: str | None = None,
) -> int:
    """The device confirmed stanzas: ``tag`` messages with these ids, or receipts with these ids
    from ``peer`` (and ``participant``). Returns how many left the queue."""
    wanted = set(ids)
    queue = phone.queue(device_id)

    def confirmed(q: QueuedStanza) -> bool:
        if q.node.tag != tag or q.stanza_id not in wanted:
            return False
        if tag in ("message", "notification"):
            return True
        return (peer is None or q.node.attrs.get("from") == peer) and (
            participant is None or q.node.attrs.get("participant") == participant
        )

    kept = [q for q in queue if not confirmed(q)]
    removed = len(queue) - len(kept)
    if removed:
        queue[:] = kept
        ctx.on_change()
    return removed


def backlog(phone: Phone, device_id: int) -> list[Node]:
    """What a device gets right after it logs in: everything it has not confirmed, marked offline."""
    return [Node(q.node.tag, {**q.node.attrs, "offline": "1"}, q.node.content) for q in phone.queue(device_id)]
