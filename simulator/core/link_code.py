"""Pairing by code (``link_code_companion_reg``), the server's and the phone's side.

1. companion_hello (the companion's ephemeral key wrapped with its code) gets a
   ``<link_code_pairing_ref>``; the hello waits for the user.
2. The user types the code on the phone (control API): the phone answers the newest hello of that
   companion's phone, and the companion gets the ``link_code_companion_reg`` notification (stage
   ``primary_hello``) with the phone's wrapped ephemeral key and identity.
3. companion_finish carries the key bundle; if it opens, the result is followed by
   ``<pair-success>`` as for a QR scan (``simulator.core.registration``).
"""

from __future__ import annotations

import logging

from connector.protocol.binary import S_WHATSAPP_NET, Jid, Node
from connector.protocol.errors import JidError
from simulator import crypto, pairing
from simulator.core import registration
from simulator.core.actions import Action, Send
from simulator.core.connections import CodePairing, Connection, Phase
from simulator.core.context import Context
from simulator.core.stanzas import iq_error, iq_result
from simulator.errors import InvalidRequestError, NotFoundError, PairingError

log = logging.getLogger(__name__)


def companion_iq(ctx: Context, conn: Connection, iq: Node, reg: Node) -> list[Action]:
    """``iq md <link_code_companion_reg stage=...>``: route by stage."""
    stage = reg.attrs.get("stage")
    if stage == "companion_hello":
        return _companion_hello(ctx, conn, iq, reg)
    if stage == "companion_finish":
        return _companion_finish(ctx, conn, iq, reg)
    return [Send(conn.conn_id, iq_error(iq, 400, "bad-request"))]


def _companion_hello(ctx: Context, conn: Connection, iq: Node, reg: Node) -> list[Action]:
    if conn.phase is not Phase.REGISTERING:
        return [Send(conn.conn_id, iq_error(iq, 400, "bad-request"))]
    try:
        user = Jid.parse(reg.attrs.get("jid", "")).user
        phone = ctx.state.phone(user)
    except (JidError, InvalidRequestError, NotFoundError):
        return [Send(conn.conn_id, iq_error(iq, 404, "item-not-found"))]
    wrapped = reg.child_bytes("link_code_pairing_wrapped_companion_ephemeral_pub")
    auth_key = reg.child_bytes("companion_server_auth_key_pub")
    if wrapped is None or len(wrapped) < pairing.WRAPPED_EPHEMERAL_SIZE or auth_key is None:
        return [Send(conn.conn_id, iq_error(iq, 400, "bad-request"))]
    if not crypto.constant_time_equal(auth_key, conn.noise_public):
        return [Send(conn.conn_id, iq_error(iq, 400, "bad-request"))]
    if conn.code_pairing is not None:  # a new hello replaces the companion's previous one
        ctx.conns.code_pairings.pop(conn.code_pairing.ref, None)
    ref = ctx.new_ref()
    pending = CodePairing(ref, conn.conn_id, phone.user, wrapped, ctx.clock())
    ctx.conns.code_pairings[ref] = pending
    conn.code_pairing = pending
    answer = Node("link_code_companion_reg", {}, [Node("link_code_pairing_ref", {}, ref)])
    return [Send(conn.conn_id, iq_result(iq, [answer]))]


def enter_link_code(ctx: Context, phone: str, code: str) -> list[Action]:
    """The user types the companion's code on the phone: the phone answers the newest hello."""
    owner = ctx.state.phone(phone)
    normalized = pairing.normalize_link_code(code)
    waiting = [
        p
        for p in ctx.conns.code_pairings.values()
        if p.user == owner.user and p.hello is None and ctx.conns.is_open(p.conn_id)
    ]
    if not waiting:
        raise NotFoundError(f"no companion is waiting for a pairing code for {phone}")
    pending = max(waiting, key=lambda p: p.created_at)
    pending.hello = pairing.primary_hello(normalized, pending.wrapped_companion_ephemeral, ctx.random)
    reg = Node(
        "link_code_companion_reg",
        {"stage": "primary_hello"},  # WhatsApp Web acks any other stage with error 487
        [
            Node("link_code_pairing_ref", {}, pending.ref),
            Node("link_code_pairing_wrapped_primary_ephemeral_pub", {}, pending.hello.wrapped_primary_ephemeral),
            Node("primary_identity_pub", {}, owner.identity_public),
        ],
    )
    attrs = {
        "from": S_WHATSAPP_NET,
        "type": "link_code_companion_reg",
        "id": ctx.new_id(),
        "t": str(int(ctx.clock())),
    }
    return [Send(pending.conn_id, Node("notification", attrs, [reg]))]


def _companion_finish(ctx: Context, conn: Connection, iq: Node, reg: Node) -> list[Action]:
    ref = reg.child_bytes("link_code_pairing_ref")
    pending = None if ref is None else ctx.conns.code_pairings.get(ref)
    bundle = reg.child_bytes("link_code_pairing_wrapped_key_bundle")
    identity = reg.child_bytes("companion_identity_public")
    if pending is None or pending.conn_id != conn.conn_id or pending.hello is None:
        return [Send(conn.conn_id, iq_error(iq, 404, "item-not-found"))]
    if bundle is None or identity is None or conn.registration is None:
        return [Send(conn.conn_id, iq_error(iq, 400, "bad-request"))]
    phone = ctx.state.phones[pending.user]
    del ctx.conns.code_pairings[pending.ref]
    conn.code_pairing = None
    try:
        if not crypto.constant_time_equal(identity, conn.registration.identity_public):
            raise PairingError("companion_finish names another identity than the registration")
        adv_secret = pairing.open_key_bundle(
            pending.hello,
            bundle,
            phone_identity_private=phone.identity_private,
            phone_identity_public=phone.identity_public,
            companion_identity_public=identity,
        )
    except PairingError as exc:
        log.info("code pairing for %s failed: %s", phone.user, exc)
        return [Send(conn.conn_id, iq_error(iq, 400, "bad-request"))]
    _, actions = registration.send_pair_success(ctx, conn, phone, adv_secret)
    return [Send(conn.conn_id, iq_result(iq)), *actions]
