"""Login of a linked device, and its logout.

A login is accepted when the device is linked and the socket's Noise key is the one it registered:
``<success t lid creation .../>``, the messages still pending for it, then ``<ib><offline count=N/>``.
An older socket of the same device gets ``<stream:error><conflict type=replaced/>`` (440).
"""

from __future__ import annotations

import logging

from connector.protocol.binary import S_WHATSAPP_NET, Node
from simulator import crypto
from simulator.core import offline
from simulator.core.actions import Action, Send
from simulator.core.connections import Connection, Phase
from simulator.core.context import Context
from simulator.core.stanzas import FAILURE_LOGGED_OUT, failure, iq_result, stream_error
from simulator.payloads import LoginHello
from simulator.state import LID_SERVER, device_jid

log = logging.getLogger(__name__)


def login(ctx: Context, conn: Connection, hello: LoginHello) -> list[Action]:
    phone = ctx.state.phones.get(hello.user)
    device = None if phone is None else phone.devices.get(hello.device_id)
    if phone is None or device is None or not crypto.constant_time_equal(device.noise_public, conn.noise_public):
        log.info("login refused for %s device %s: not linked", hello.user, hello.device_id)
        return [Send(conn.conn_id, failure(FAILURE_LOGGED_OUT)), *ctx.conns.close(conn)]
    actions: list[Action] = []
    key = (phone.user, device.device_id)
    old = ctx.conns.live_conn(*key)
    if old is not None:
        log.info("device %s:%s logged in again: replacing the older socket", *key)
        ctx.conns.replaced[key] = ctx.conns.replaced.get(key, 0) + 1
        actions += [Send(old.conn_id, stream_error(None, "replaced")), *ctx.conns.close(old)]
    now = ctx.clock()
    conn.move(Phase.LOGGED_IN)
    conn.user, conn.device_id = phone.user, device.device_id
    ctx.conns.live[key] = conn.conn_id
    device.login_count += 1
    device.last_login_at = now
    ctx.conns.logins_total += 1
    ctx.on_change()
    success = Node(
        "success",
        {
            "t": str(int(now)),
            "props": "1",
            "abprops": "1",
            "location": "sim",
            "creation": str(int(device.linked_at)),
            "lid": device_jid(phone.lid_user, device.device_id, LID_SERVER),
        },
    )
    # Messages that arrived while the device was away (or were never acknowledged) come first,
    # then <ib><offline count=N/> tells the client the backlog is done.
    ctx.held.pop(key, None)  # a stanza held back by the reorder fault is in the backlog anyway
    backlog = [Send(conn.conn_id, node) for node in offline.backlog(phone, device.device_id)]
    done = Node("ib", {"from": S_WHATSAPP_NET}, [Node("offline", {"count": str(len(backlog))})])
    return [*actions, Send(conn.conn_id, success), *backlog, Send(conn.conn_id, done)]


def remove_self(ctx: Context, conn: Connection, iq: Node) -> list[Action]:
    """``<remove-companion-device>`` from the device itself: unlinked, then 401 device_removed."""
    assert conn.user is not None and conn.device_id is not None
    ctx.state.phones[conn.user].unlink(conn.device_id)
    ctx.on_change()
    log.info("%s device %s logged itself out", conn.user, conn.device_id)
    return [
        Send(conn.conn_id, iq_result(iq)),
        Send(conn.conn_id, stream_error(FAILURE_LOGGED_OUT, "device_removed")),
        *ctx.conns.close(conn),
    ]
