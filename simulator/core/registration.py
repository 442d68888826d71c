"""A registering socket (a companion without an account) and how it becomes a linked device.

The server offers ``PAIR_DEVICE_REF_COUNT`` QR refs in ``iq set md <pair-device>``. When the phone
scans one (``ref,noise,identity,adv``), or accepts a pairing code (``simulator.core.link_code``),
the server sends ``<pair-success>`` with the ADV identity signed by the phone's account key and
HMAC'd with the companion's adv secret. A valid ``<pair-device-sign>`` links the device; the socket
then gets ``<stream:error code=515/>`` and is closed, and the companion logs in on a new one.
"""

from __future__ import annotations

import logging

from connector.protocol.binary import S_WHATSAPP_NET, Node
from simulator import adv, crypto, pairing
from simulator.core.actions import Action, Send
from simulator.core.connections import Connection, PairSuccessSent, Phase
from simulator.core.context import Context
from simulator.core.stanzas import FAILURE_BAD_REGISTRATION, STREAM_RESTART_REQUIRED, failure, stream_error
from simulator.errors import ClientProtocolError, NotFoundError, PairingError
from simulator.payloads import RegistrationHello
from simulator.state import LID_SERVER, CompanionDevice, Phone, device_jid

log = logging.getLogger(__name__)

PAIR_DEVICE_REF_COUNT = 6  # the real server offers 6 QR refs per registering socket
PHONE_PLATFORM = "android"


def start(ctx: Context, conn: Connection, hello: RegistrationHello) -> list[Action]:
    """A ClientPayload without a username: check the signed pre-key, offer the QR refs."""
    if not pairing.signed_pre_key_valid(
        hello.identity_public, hello.signed_pre_key.public, hello.signed_pre_key.signature
    ):
        log.info("registration refused: signed pre-key signature does not verify")
        return [Send(conn.conn_id, failure(FAILURE_BAD_REGISTRATION)), *ctx.conns.close(conn)]
    conn.move(Phase.REGISTERING)
    conn.registration = hello
    conn.refs = [ctx.new_ref() for _ in range(PAIR_DEVICE_REF_COUNT)]
    for ref in conn.refs:
        ctx.conns.refs[ref] = conn.conn_id
    refs = [Node("ref", {}, ref) for ref in conn.refs]
    iq = Node(
        "iq",
        {"from": S_WHATSAPP_NET, "type": "set", "id": ctx.new_id(), "xmlns": "md"},
        [Node("pair-device", {}, refs)],
    )
    return [Send(conn.conn_id, iq)]


def scan_qr(ctx: Context, phone: str, qr: str) -> tuple[str, list[Action]]:
    """The phone scans a companion's QR; returns the device JID offered and the actions."""
    owner = ctx.state.phone(phone)
    content = pairing.parse_qr(qr)
    conn = ctx.conns.find(ctx.conns.refs.get(content.ref))
    if conn is None or conn.registration is None or conn.phase is not Phase.REGISTERING:
        raise NotFoundError("QR ref unknown or its socket is gone (scan a fresh QR)")
    if conn.pair_sent is not None:
        raise PairingError("this companion is already being paired")
    if not crypto.constant_time_equal(content.noise_public, conn.noise_public):
        raise PairingError("QR noise key is not the key of the socket that received the ref")
    if not crypto.constant_time_equal(content.identity_public, conn.registration.identity_public):
        raise PairingError("QR identity key is not the key the companion registered")
    return send_pair_success(ctx, conn, owner, content.adv_secret)


def send_pair_success(ctx: Context, conn: Connection, phone: Phone, adv_secret: bytes) -> tuple[str, list[Action]]:
    """The phone accepted the companion: allocate its device id and send the signed identity."""
    assert conn.registration is not None
    device_id, key_index = phone.allocate_device()
    now = ctx.clock()
    signed = adv.sign_companion(
        phone_identity_private=phone.identity_private,
        phone_identity_public=phone.identity_public,
        companion_identity_public=conn.registration.identity_public,
        adv_secret=adv_secret,
        key_index=key_index,
        raw_id=int.from_bytes(ctx.random(4), "big"),
        timestamp=int(now),
        random_bytes=ctx.random,
    )
    iq_id = ctx.new_id()
    conn.pair_sent = PairSuccessSent(iq_id, phone.user, device_id, signed)
    jid = device_jid(phone.user, device_id)
    children = [
        Node("device-identity", {}, signed.container),
        Node("platform", {"name": PHONE_PLATFORM}),
        Node("device", {"jid": jid, "lid": device_jid(phone.lid_user, device_id, LID_SERVER)}),
    ]
    if phone.business_name:
        children.append(Node("biz", {"name": phone.business_name}))
    iq = Node(
        "iq",
        {"from": S_WHATSAPP_NET, "type": "set", "id": iq_id, "xmlns": "md", "t": str(int(now))},
        [Node("pair-success", {}, children)],
    )
    ctx.on_change()  # the device id is spent even if the companion never confirms
    return jid, [Send(conn.conn_id, iq)]


def client_answer(ctx: Context, conn: Connection, node: Node) -> list[Action]:
    """An iq result or error from the client: only the answer to ``<pair-success>`` matters."""
    sent = conn.pair_sent
    if sent is None or node.attrs["id"] != sent.iq_id:
        return []  # acks of pair-device, notifications and the like
    conn.pair_sent = None
    if node.attrs.get("type") == "error":
        log.info("companion rejected pair-success for %s device %s", sent.user, sent.device_id)
        return ctx.conns.close(conn)
    reply = node.child_bytes("pair-device-sign", "device-identity")
    if reply is None:
        raise ClientProtocolError("pair-success answer without pair-device-sign/device-identity")
    phone = ctx.state.phones[sent.user]
    assert conn.registration is not None
    try:
        adv.check_companion_reply(
            reply,
            expected=sent.signed,
            phone_identity_public=phone.identity_public,
            companion_identity_public=conn.registration.identity_public,
        )
    except PairingError as exc:
        log.info("pairing of %s device %s failed: %s", sent.user, sent.device_id, exc)
        return ctx.conns.close(conn)
    phone.link(
        CompanionDevice(
            device_id=sent.device_id,
            noise_public=conn.noise_public,
            identity_public=conn.registration.identity_public,
            registration_id=conn.registration.registration_id,
            signed_pre_key=conn.registration.signed_pre_key,
            key_index=sent.signed.key_index,
            platform=conn.registration.platform,
            linked_at=ctx.clock(),
        )
    )
    ctx.on_change()
    log.info("linked %s device %s", sent.user, sent.device_id)
    # The real server ends the registration socket with 515: the companion logs in afresh.
    return [Send(conn.conn_id, stream_error(STREAM_RESTART_REQUIRED)), *ctx.conns.close(conn)]
