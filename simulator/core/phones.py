"""What the phone's owner does through the control API: create the phone, unlink a device, and the
views of its devices."""

from __future__ import annotations

from shared import signatures
from simulator import crypto
from simulator.core.actions import Action, Send
from simulator.core.context import Context
from simulator.core.stanzas import FAILURE_LOGGED_OUT, stream_error
from simulator.state import LID_SERVER, Phone, PrimaryKeys, SignedPreKey, device_jid, normalize_phone

PRIMARY_PRE_KEY_BATCH = 30  # one-time pre-keys the phone publishes at a time


def create_phone(ctx: Context, phone: str, *, push_name: str = "", business_name: str = "") -> Phone:
    user = normalize_phone(phone)
    private, public = crypto.x25519_keypair(ctx.random)
    created = Phone(user, private, public, _new_lid(ctx), ctx.clock(), push_name, business_name)
    created.primary = _primary_keys(ctx, private)
    ctx.state.add_phone(created)
    ctx.on_change()
    return created


def _primary_keys(ctx: Context, identity_private: bytes) -> PrimaryKeys:
    """The phone's device-0 Signal keys: a registration id, a signed pre-key signed by its identity
    key (over the 0x05-prefixed public key) and a batch of one-time pre-keys."""
    spk_private, spk_public = crypto.x25519_keypair(ctx.random)
    signature = signatures.xeddsa_sign(identity_private, bytes([crypto.DJB_KEY_TYPE]) + spk_public, ctx.random)
    keys = PrimaryKeys(
        registration_id=1 + int.from_bytes(ctx.random(2), "big") % 16380,
        signed_pre_key=SignedPreKey(1, spk_public, signature),
        signed_pre_key_private=spk_private,
    )
    refill_primary_pre_keys(ctx, keys)
    return keys


def refill_primary_pre_keys(ctx: Context, keys: PrimaryKeys) -> None:
    """The phone uploads a new batch when contacts have used up its one-time pre-keys."""
    for _ in range(PRIMARY_PRE_KEY_BATCH - len(keys.pre_keys)):
        private, public = crypto.x25519_keypair(ctx.random)
        keys.pre_keys[keys.next_pre_key_id] = public
        keys.pre_key_privates[keys.next_pre_key_id] = private
        keys.next_pre_key_id += 1
    ctx.on_change()


def ensure_primary(ctx: Context, phone: Phone) -> PrimaryKeys:
    """The phone's device-0 keys, made now for a phone from a state written before phones had them."""
    if phone.primary is None:
        phone.primary = _primary_keys(ctx, phone.identity_private)
    return phone.primary


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
