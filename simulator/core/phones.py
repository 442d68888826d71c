"""What the phone's owner does through the control API: create the phone, unlink a device, and the
views of its devices."""

from __future__ import annotations

from simulator import crypto
from simulator.core.actions import Action, Send
from simulator.core.context import Context
from simulator.core.stanzas import FAILURE_LOGGED_OUT, stream_error
from simulator.state import LID_SERVER, Phone, device_jid, normalize_phone


def create_phone(ctx: Context, phone: str, *, push_name: str = "", business_name: str = "") -> Phone:
    user = normalize_phone(phone)
    private, public = crypto.x25519_keypair(ctx.random)
    created = Phone(user, private, public, _new_lid(ctx), ctx.clock(), push_name, business_name)
    ctx.state.add_phone(created)
    ctx.on_change()
    return created


def unlink_device(ctx: Context, phone: str, device_id: int) -> list[Action]:
    """The phone removes a linked device: its socket gets 401 device_removed."""
    owner = ctx.state.phone(phone)
    owner.unlink(device_id)
    ctx.on_change()
    conn = ctx.conns.live_conn(owner.user, device_id)
    if conn is None:
        return []
    return [Send(conn.conn_id, stream_error(FAILURE_LOGGED_OUT, "device_removed")), *ctx.conns.close(conn)]


def live_sockets(ctx: Context, user: str, device_id: int) -> int:
    return int(ctx.conns.live_conn(user, device_id) is not None)


def devices_view(ctx: Context, phone: str) -> list[dict[str, object]]:
    owner = ctx.state.phone(phone)
    return [
        {
            "device": d.device_id,
            "jid": device_jid(owner.user, d.device_id),
            "lid": device_jid(owner.lid_user, d.device_id, LID_SERVER),
            "platform": d.platform,
            "linkedAt": d.linked_at,
            "liveSockets": live_sockets(ctx, owner.user, d.device_id),
            "loginCount": d.login_count,
            "lastLoginAt": d.last_login_at,
            "replacedCount": ctx.conns.replaced.get((owner.user, d.device_id), 0),
            "preKeyCount": len(d.pre_keys),
            "pendingMessages": len(d.pending_messages),
        }
        for _, d in sorted(owner.devices.items())
    ]


def _new_lid(ctx: Context) -> str:
    while True:
        lid = str(10**14 + int.from_bytes(ctx.random(8), "big") % (9 * 10**14))
        if not ctx.state.lid_taken(lid):
            return lid
