"""Faults acting on connections: instant ones (drop, stream error, malformed frame) hit the matching
sockets when posted; lasting ones are only recorded in the book, and the rules ask it
(``pings_stopped`` here, refusals at login)."""

from __future__ import annotations

from simulator.core.actions import Action, Send, SendMalformed
from simulator.core.connections import Connection, Phase
from simulator.core.context import Context
from simulator.core.stanzas import stream_error
from simulator.faults import ActiveFault, Fault, FaultKind


def inject(ctx: Context, fault: Fault) -> tuple[ActiveFault, list[Action]]:
    active = ctx.faults.add(fault, ctx.clock())
    if fault.kind.lasting or fault.kind.per_stanza:
        return active, []
    actions: list[Action] = []
    for conn in ctx.conns.matching(fault.target):
        if fault.kind is FaultKind.DROP:
            actions += ctx.conns.close(conn, abrupt=True)
        elif fault.kind is FaultKind.STREAM_ERROR:
            actions += [Send(conn.conn_id, stream_error(fault.code)), *ctx.conns.close(conn)]
        else:
            actions.append(SendMalformed(conn.conn_id, fault.variant))
    return active, actions


def pings_stopped(ctx: Context, conn: Connection) -> bool:
    return conn.phase is Phase.LOGGED_IN and ctx.faults.in_force(
        FaultKind.STOP_PINGS, conn.user, conn.device_id, ctx.clock()
    )


def refused(ctx: Context, user: str | None, device_id: int | None) -> bool:
    """Whether a new socket (of ``user``'s ``device_id``, or anyone's with ``user`` None) is refused."""
    now = ctx.clock()
    if user is None:
        return ctx.faults.refuses_everyone(now)
    return ctx.faults.in_force(FaultKind.REFUSE, user, device_id, now)
