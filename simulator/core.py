"""The simulated WhatsApp Web server's behaviour, without I/O: decrypted nodes in, actions out.

The websocket driver (``simulator.server``) owns sockets, frames and Noise; it tells the core when a
connection opens, when its handshake yields a ClientPayload, each node it receives and when it is
gone. The core answers with actions (``Send`` a node, ``Close`` a socket, ``SendMalformed``) that may
target *other* connections: a login replaces an older socket of the same device, a phone typing a
pairing code notifies the companion's socket, an unlink kicks the device.

Server rules implemented (as companions observe them; Baileys socket.ts, whatsmeow):

=========================  ====================================================================
client does                server answers
=========================  ====================================================================
registers (no username)    ``iq set md <pair-device>`` with 6 ``<ref>``; a phone scanning one of
                           them (``ref,noise,identity,adv``) makes the server send
                           ``<pair-success>``; a valid ``<pair-device-sign>`` links the device,
                           then ``<stream:error code=515/>`` and close
companion_hello            ``<link_code_pairing_ref>``; when the phone types the code the
                           companion gets the ``link_code_companion_reg`` notification;
                           companion_finish -> result, then ``<pair-success>`` as above
logs in (username+device)  ``<success t lid creation .../>`` when the device is linked and the
                           Noise key is the one it registered, else ``<failure reason=401/>``;
                           an older socket of the device gets
                           ``<stream:error><conflict type=replaced/></stream:error>`` (440)
iq encrypt count/set/      pre-key count / store uploaded keys / key digest / signed pre-key
digest/rotate/key          rotation / a contact's bundle (consumes one pre-key; a count under
                           ``PRE_KEY_LOW_WATERMARK`` is announced with ``notification encrypt``)
iq passive, iq w:p ping    empty result (pings go unanswered under the ``stop_pings`` fault)
iq w props                 ``<props protocol=2 hash/>`` without flags
phone unlinks a device     ``<stream:error code=401><conflict type=device_removed/>``; later
                           logins of that device fail with 401
a contact sends a message  ``<message><enc/></message>`` (opaque ciphertext) to every linked device;
                           kept until the device sends ``<ack class=message id/>`` and sent again
                           after each login, before ``<ib><offline count=N/>``
=========================  ====================================================================

Any other iq gets ``<error code=501 text=feature-not-implemented/>``; other stanzas are ignored.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from connector.protocol.binary import S_WHATSAPP_NET, Jid, Node
from connector.protocol.errors import JidError
from simulator import adv, crypto, pairing
from simulator.errors import (
    ClientProtocolError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PairingError,
)
from simulator.faults import ActiveFault, Fault, FaultBook, FaultKind, FaultTarget, MalformedVariant
from simulator.payloads import LoginHello, RegistrationHello, parse_client_payload
from simulator.state import (
    LID_SERVER,
    CompanionDevice,
    PendingMessage,
    Phone,
    SignedPreKey,
    SimulatorState,
    device_jid,
    normalize_phone,
    user_jid,
)

log = logging.getLogger(__name__)

PAIR_DEVICE_REF_COUNT = 6  # the real server offers 6 QR refs per registering socket
PRE_KEY_LOW_WATERMARK = 5  # whatsmeow MinPreKeyCount: under this a client uploads more
PHONE_PLATFORM = "android"
FAILURE_LOGGED_OUT = 401
FAILURE_BAD_REGISTRATION = 400
STREAM_RESTART_REQUIRED = 515
SERVER_PROPS_HASH = "sim-1"

Clock = Callable[[], float]


@dataclass(frozen=True)
class Send:
    conn: int
    node: Node


@dataclass(frozen=True)
class Close:
    conn: int
    abrupt: bool = False  # abort the TCP connection without a websocket close


@dataclass(frozen=True)
class SendMalformed:
    conn: int
    variant: MalformedVariant


Action = Send | Close | SendMalformed


class Phase(enum.Enum):
    """Where a connection is. A registering socket never logs in: after pairing it gets 515 and the
    companion opens a new socket."""

    AWAITING_HELLO = "awaiting_hello"
    REGISTERING = "registering"
    LOGGED_IN = "logged_in"
    CLOSED = "closed"


_TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.AWAITING_HELLO: frozenset({Phase.REGISTERING, Phase.LOGGED_IN, Phase.CLOSED}),
    Phase.REGISTERING: frozenset({Phase.CLOSED}),
    Phase.LOGGED_IN: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}


def _move(conn: Connection, phase: Phase) -> None:
    """Change ``conn``'s phase; an illegal transition raises and leaves it unchanged."""
    if phase not in _TRANSITIONS[conn.phase]:
        raise ClientProtocolError(f"connection {conn.conn_id} cannot go from {conn.phase.value} to {phase.value}")
    conn.phase = phase


@dataclass
class PairSuccessSent:
    iq_id: str
    user: str
    device_id: int
    signed: adv.SignedCompanion


@dataclass
class CodePairing:
    """A companion_hello waiting for its code to be typed on the phone."""

    ref: bytes
    conn_id: int
    user: str
    wrapped_companion_ephemeral: bytes
    created_at: float
    hello: pairing.PrimaryHello | None = None


@dataclass
class Connection:
    conn_id: int
    opened_at: float
    phase: Phase = Phase.AWAITING_HELLO
    noise_public: bytes = b""
    user: str | None = None
    device_id: int | None = None
    registration: RegistrationHello | None = None
    refs: list[bytes] = field(default_factory=list)
    pair_sent: PairSuccessSent | None = None
    code_pairing: CodePairing | None = None


#: ``<id>`` nodes of key digests by pre-key id, shared (only ever encoded): every login asks for the
#: digest, and building its ~800 id nodes anew each time was a fifth of the simulator's CPU.
_ID_NODES: dict[int, Node] = {}


def _id_node(key_id: int) -> Node:
    node = _ID_NODES.get(key_id)
    if node is None:
        node = _ID_NODES[key_id] = Node("id", {}, key_id.to_bytes(3, "big"))
    return node


def _iq_result(iq: Node, content: list[Node] | None = None) -> Node:
    return Node("iq", {"from": S_WHATSAPP_NET, "type": "result", "id": iq.attrs["id"]}, content)


def _iq_error(iq: Node, code: int, text: str) -> Node:
    attrs = {"from": S_WHATSAPP_NET, "type": "error", "id": iq.attrs["id"]}
    return Node("iq", attrs, [Node("error", {"code": str(code), "text": text})])


def _stream_error(code: int | None, conflict: str | None = None) -> Node:
    attrs = {} if code is None else {"code": str(code)}
    content = None if conflict is None else [Node("conflict", {"type": conflict})]
    return Node("stream:error", attrs, content)


def _message_node(message: PendingMessage) -> Node:
    attrs = {
        "from": message.sender,
        "id": message.message_id,
        "t": str(message.timestamp),
        "type": message.type,
    }
    return Node("message", attrs, [Node("enc", {"v": "2", "type": message.enc_type}, message.ciphertext)])


def _key_node(tag: str, key_id: int, public: bytes, signature: bytes | None = None) -> Node:
    children = [Node("id", {}, key_id.to_bytes(3, "big")), Node("value", {}, public)]
    if signature is not None:
        children.append(Node("signature", {}, signature))
    return Node(tag, {}, children)


def _parse_key_node(node: Node, *, signed: bool) -> tuple[int, bytes, bytes | None]:
    key_id = node.child_bytes("id")
    value = node.child_bytes("value")
    signature = node.child_bytes("signature")
    public = None if value is None else crypto.raw_public_key(value)
    if (
        key_id is None
        or len(key_id) != 3
        or public is None
        or (signed and (signature is None or len(signature) != 64))
    ):
        raise ClientProtocolError(f"malformed <{node.tag}> in pre-key upload")
    return int.from_bytes(key_id, "big"), public, signature


class SimulatorCore:
    """All connections and phones of one simulator. Not thread-safe: drive it from one event loop."""

    def __init__(
        self,
        state: SimulatorState,
        *,
        clock: Clock,
        random_bytes: crypto.RandomBytes,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.state = state
        self.faults = FaultBook()
        self._clock = clock
        self._random = random_bytes
        self._on_change = on_change or (lambda: None)
        self._conns: dict[int, Connection] = {}
        self._next_conn = 1
        self._live: dict[tuple[str, int], int] = {}  # (user, device) -> logged-in connection
        self._refs: dict[bytes, int] = {}  # QR ref -> registering connection
        self._code_pairings: dict[bytes, CodePairing] = {}
        self._replaced: dict[tuple[str, int], int] = {}
        self.logins_total = 0

    def now(self) -> float:
        return self._clock()

    # ------------------------------------------------------------------ connection lifecycle

    def open_connection(self) -> int:
        conn_id = self._next_conn
        self._next_conn += 1
        self._conns[conn_id] = Connection(conn_id, self._clock())
        return conn_id

    def connection_lost(self, conn_id: int) -> None:
        conn = self._conns.pop(conn_id, None)
        if conn is not None:
            self._forget(conn)

    def client_hello(self, conn_id: int, client_static: bytes, payload: bytes) -> list[Action]:
        """The handshake finished: ``payload`` is the decrypted ClientPayload."""
        conn = self._conn(conn_id)
        if conn.phase is not Phase.AWAITING_HELLO:
            raise ClientProtocolError("second ClientPayload on one connection")
        conn.noise_public = client_static
        hello = parse_client_payload(payload)
        now = self._clock()
        if self.faults.refuses_everyone(now):
            return self._close(conn, abrupt=True)
        if isinstance(hello, RegistrationHello):
            return self._start_registration(conn, hello)
        if self.faults.in_force(FaultKind.REFUSE, hello.user, hello.device_id, now):
            return self._close(conn, abrupt=True)
        return self._login(conn, hello)

    def receive(self, conn_id: int, node: Node) -> list[Action]:
        conn = self._conn(conn_id)
        if conn.phase is Phase.CLOSED:
            return []
        if conn.phase is Phase.AWAITING_HELLO:
            raise ClientProtocolError("stanza before the handshake finished")
        if node.tag == "ack" and node.attrs.get("class") == "message":
            self._message_acked(conn, node.attrs.get("id", ""))
            return []
        if node.tag != "iq":
            return []  # receipts, presence, ib and other acks: nothing the simulator must answer
        if "id" not in node.attrs:
            raise ClientProtocolError("iq without id")
        kind = node.attrs.get("type")
        if kind in ("result", "error"):
            return self._client_answer(conn, node)
        return self._client_iq(conn, node)

    # ------------------------------------------------------------------ login

    def _login(self, conn: Connection, hello: LoginHello) -> list[Action]:
        phone = self.state.phones.get(hello.user)
        device = None if phone is None else phone.devices.get(hello.device_id)
        if (
            phone is None
            or device is None
            or not crypto.constant_time_equal(device.noise_public, conn.noise_public)
        ):
            log.info("login refused for %s device %s: not linked", hello.user, hello.device_id)
            failure = Node("failure", {"reason": str(FAILURE_LOGGED_OUT), "location": "sim"})
            return [Send(conn.conn_id, failure), *self._close(conn)]
        actions: list[Action] = []
        key = (phone.user, device.device_id)
        previous = self._live.get(key)
        if previous is not None and previous in self._conns:
            old = self._conns[previous]
            log.info("device %s:%s logged in again: replacing the older socket", *key)
            self._replaced[key] = self._replaced.get(key, 0) + 1
            actions += [Send(old.conn_id, _stream_error(None, "replaced")), *self._close(old)]
        now = self._clock()
        _move(conn, Phase.LOGGED_IN)
        conn.user, conn.device_id = phone.user, device.device_id
        self._live[key] = conn.conn_id
        device.login_count += 1
        device.last_login_at = now
        self.logins_total += 1
        self._on_change()
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
        backlog = [Send(conn.conn_id, _message_node(m)) for m in device.pending_messages]
        offline = Node("ib", {"from": S_WHATSAPP_NET}, [Node("offline", {"count": str(len(backlog))})])
        return [*actions, Send(conn.conn_id, success), *backlog, Send(conn.conn_id, offline)]

    # ------------------------------------------------------------------ registration (QR)

    def _start_registration(self, conn: Connection, hello: RegistrationHello) -> list[Action]:
        if not pairing.signed_pre_key_valid(
            hello.identity_public, hello.signed_pre_key.public, hello.signed_pre_key.signature
        ):
            log.info("registration refused: signed pre-key signature does not verify")
            failure = Node("failure", {"reason": str(FAILURE_BAD_REGISTRATION), "location": "sim"})
            return [Send(conn.conn_id, failure), *self._close(conn)]
        _move(conn, Phase.REGISTERING)
        conn.registration = hello
        conn.refs = [self._new_ref() for _ in range(PAIR_DEVICE_REF_COUNT)]
        for ref in conn.refs:
            self._refs[ref] = conn.conn_id
        refs = [Node("ref", {}, ref) for ref in conn.refs]
        iq = Node(
            "iq",
            {"from": S_WHATSAPP_NET, "type": "set", "id": self._new_id(), "xmlns": "md"},
            [Node("pair-device", {}, refs)],
        )
        return [Send(conn.conn_id, iq)]

    def scan_qr(self, phone: str, qr: str) -> tuple[str, list[Action]]:
        """The phone scans a companion's QR; returns the device JID offered and the actions."""
        owner = self.state.phone(phone)
        content = pairing.parse_qr(qr)
        conn_id = self._refs.get(content.ref)
        conn = None if conn_id is None else self._conns.get(conn_id)
        if conn is None or conn.registration is None or conn.phase is not Phase.REGISTERING:
            raise NotFoundError("QR ref unknown or its socket is gone (scan a fresh QR)")
        if conn.pair_sent is not None:
            raise PairingError("this companion is already being paired")
        if not crypto.constant_time_equal(content.noise_public, conn.noise_public):
            raise PairingError("QR noise key is not the key of the socket that received the ref")
        if not crypto.constant_time_equal(content.identity_public, conn.registration.identity_public):
            raise PairingError("QR identity key is not the key the companion registered")
        return self._send_pair_success(conn, owner, content.adv_secret)

    def _send_pair_success(
        self, conn: Connection, phone: Phone, adv_secret: bytes
    ) -> tuple[str, list[Action]]:
        assert conn.registration is not None
        device_id, key_index = phone.allocate_device()
        now = self._clock()
        signed = adv.sign_companion(
            phone_identity_private=phone.identity_private,
            phone_identity_public=phone.identity_public,
            companion_identity_public=conn.registration.identity_public,
            adv_secret=adv_secret,
            key_index=key_index,
            raw_id=int.from_bytes(self._random(4), "big"),
            timestamp=int(now),
            random_bytes=self._random,
        )
        iq_id = self._new_id()
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
        self._on_change()  # the device id is spent even if the companion never confirms
        return jid, [Send(conn.conn_id, iq)]

    def _client_answer(self, conn: Connection, node: Node) -> list[Action]:
        sent = conn.pair_sent
        if sent is None or node.attrs["id"] != sent.iq_id:
            return []  # acks of pair-device, notifications and the like
        conn.pair_sent = None
        if node.attrs.get("type") == "error":
            log.info("companion rejected pair-success for %s device %s", sent.user, sent.device_id)
            return self._close(conn)
        reply = node.child_bytes("pair-device-sign", "device-identity")
        if reply is None:
            raise ClientProtocolError("pair-success answer without pair-device-sign/device-identity")
        phone = self.state.phones[sent.user]
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
            return self._close(conn)
        phone.link(
            CompanionDevice(
                device_id=sent.device_id,
                noise_public=conn.noise_public,
                identity_public=conn.registration.identity_public,
                registration_id=conn.registration.registration_id,
                signed_pre_key=conn.registration.signed_pre_key,
                key_index=sent.signed.key_index,
                platform=conn.registration.platform,
                linked_at=self._clock(),
            )
        )
        self._on_change()
        log.info("linked %s device %s", sent.user, sent.device_id)
        # The real server ends the registration socket with 515: the companion logs in afresh.
        return [Send(conn.conn_id, _stream_error(STREAM_RESTART_REQUIRED)), *self._close(conn)]

    # ------------------------------------------------------------------ registration (code)

    def _companion_hello(self, conn: Connection, iq: Node, reg: Node) -> list[Action]:
        if conn.phase is not Phase.REGISTERING:
            return [Send(conn.conn_id, _iq_error(iq, 400, "bad-request"))]
        try:
            user = Jid.parse(reg.attrs.get("jid", "")).user
            phone = self.state.phone(user)
        except (JidError, InvalidRequestError, NotFoundError):
            return [Send(conn.conn_id, _iq_error(iq, 404, "item-not-found"))]
        wrapped = reg.child_bytes("link_code_pairing_wrapped_companion_ephemeral_pub")
        auth_key = reg.child_bytes("companion_server_auth_key_pub")
        if wrapped is None or len(wrapped) < pairing.WRAPPED_EPHEMERAL_SIZE or auth_key is None:
            return [Send(conn.conn_id, _iq_error(iq, 400, "bad-request"))]
        if not crypto.constant_time_equal(auth_key, conn.noise_public):
            return [Send(conn.conn_id, _iq_error(iq, 400, "bad-request"))]
        if conn.code_pairing is not None:  # a new hello replaces the companion's previous one
            self._code_pairings.pop(conn.code_pairing.ref, None)
        ref = self._new_ref()
        pending = CodePairing(ref, conn.conn_id, phone.user, wrapped, self._clock())
        self._code_pairings[ref] = pending
        conn.code_pairing = pending
        answer = Node("link_code_companion_reg", {}, [Node("link_code_pairing_ref", {}, ref)])
        return [Send(conn.conn_id, _iq_result(iq, [answer]))]

    def enter_link_code(self, phone: str, code: str) -> list[Action]:
        """The user types the companion's code on the phone: the phone answers the newest hello."""
        owner = self.state.phone(phone)
        normalized = pairing.normalize_link_code(code)
        waiting = [
            p
            for p in self._code_pairings.values()
            if p.user == owner.user and p.hello is None and p.conn_id in self._conns
        ]
        if not waiting:
            raise NotFoundError(f"no companion is waiting for a pairing code for {phone}")
        pending = max(waiting, key=lambda p: p.created_at)
        pending.hello = pairing.primary_hello(normalized, pending.wrapped_companion_ephemeral, self._random)
        reg = Node(
            "link_code_companion_reg",
            {},
            [
                Node("link_code_pairing_ref", {}, pending.ref),
                Node(
                    "link_code_pairing_wrapped_primary_ephemeral_pub",
                    {},
                    pending.hello.wrapped_primary_ephemeral,
                ),
                Node("primary_identity_pub", {}, owner.identity_public),
            ],
        )
        attrs = {
            "from": S_WHATSAPP_NET,
            "type": "link_code_companion_reg",
            "id": self._new_id(),
            "t": str(int(self._clock())),
        }
        return [Send(pending.conn_id, Node("notification", attrs, [reg]))]

    def _companion_finish(self, conn: Connection, iq: Node, reg: Node) -> list[Action]:
        ref = reg.child_bytes("link_code_pairing_ref")
        pending = None if ref is None else self._code_pairings.get(ref)
        bundle = reg.child_bytes("link_code_pairing_wrapped_key_bundle")
        identity = reg.child_bytes("companion_identity_public")
        if pending is None or pending.conn_id != conn.conn_id or pending.hello is None:
            return [Send(conn.conn_id, _iq_error(iq, 404, "item-not-found"))]
        if bundle is None or identity is None or conn.registration is None:
            return [Send(conn.conn_id, _iq_error(iq, 400, "bad-request"))]
        phone = self.state.phones[pending.user]
        del self._code_pairings[pending.ref]
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
            return [Send(conn.conn_id, _iq_error(iq, 400, "bad-request"))]
        _, actions = self._send_pair_success(conn, phone, adv_secret)
        return [Send(conn.conn_id, _iq_result(iq)), *actions]

    # ------------------------------------------------------------------ iqs

    def _client_iq(self, conn: Connection, iq: Node) -> list[Action]:
        xmlns = iq.attrs.get("xmlns", "")
        first = next(iter(iq.children()), None)
        tag = "" if first is None else first.tag
        if xmlns == "w:p":
            if conn.phase is Phase.LOGGED_IN and self.faults.in_force(
                FaultKind.STOP_PINGS, conn.user, conn.device_id, self._clock()
            ):
                return []
            return [Send(conn.conn_id, _iq_result(iq))]
        if xmlns == "md" and tag == "link_code_companion_reg" and first is not None:
            stage = first.attrs.get("stage")
            if stage == "companion_hello":
                return self._companion_hello(conn, iq, first)
            if stage == "companion_finish":
                return self._companion_finish(conn, iq, first)
            return [Send(conn.conn_id, _iq_error(iq, 400, "bad-request"))]
        if conn.phase is not Phase.LOGGED_IN:
            return [Send(conn.conn_id, _iq_error(iq, 401, "not-authorized"))]
        if xmlns == "passive" and tag in ("passive", "active"):
            return [Send(conn.conn_id, _iq_result(iq))]
        if xmlns == "md" and tag == "remove-companion-device":
            return self._remove_self(conn, iq)
        if xmlns == "encrypt":
            return self._encrypt_iq(conn, iq, tag)
        if xmlns == "w" and tag == "props":
            # Server feature flags (Baileys fetchProps, protocol 2): the simulator has none to offer.
            props = Node("props", {"protocol": "2", "hash": SERVER_PROPS_HASH})
            return [Send(conn.conn_id, _iq_result(iq, [props]))]
        return [Send(conn.conn_id, _iq_error(iq, 501, "feature-not-implemented"))]

    def _device_of(self, conn: Connection) -> CompanionDevice:
        assert conn.user is not None and conn.device_id is not None
        return self.state.phones[conn.user].devices[conn.device_id]

    def _encrypt_iq(self, conn: Connection, iq: Node, tag: str) -> list[Action]:
        device = self._device_of(conn)
        kind = iq.attrs.get("type")
        if kind == "get" and tag == "count":
            return [Send(conn.conn_id, _iq_result(iq, [Node("count", {"value": str(len(device.pre_keys))})]))]
        if kind == "get" and tag == "digest":
            return [Send(conn.conn_id, _iq_result(iq, [self._digest(device)]))]
        if kind == "get" and tag == "key":
            return self._fetch_bundles(conn, iq)
        if kind == "set" and tag == "rotate":
            skey = iq.child("rotate", "skey")
            if skey is None:
                raise ClientProtocolError("rotate without skey")
            return self._store_signed_pre_key(conn, iq, device, skey)
        if kind == "set" and iq.child("list") is not None:
            return self._upload_pre_keys(conn, iq, device)
        return [Send(conn.conn_id, _iq_error(iq, 501, "feature-not-implemented"))]

    def _upload_pre_keys(self, conn: Connection, iq: Node, device: CompanionDevice) -> list[Action]:
        identity = iq.child_bytes("identity")
        identity = None if identity is None else crypto.raw_public_key(identity)
        if identity is None or not crypto.constant_time_equal(identity, device.identity_public):
            return [Send(conn.conn_id, _iq_error(iq, 406, "not-acceptable"))]
        keys = [_parse_key_node(k, signed=False) for k in iq.children("list")[0].children("key")]
        skey = iq.child("skey")
        if skey is not None:
            key_id, public, signature = _parse_key_node(skey, signed=True)
            assert signature is not None
            if not pairing.signed_pre_key_valid(device.identity_public, public, signature):
                return [Send(conn.conn_id, _iq_error(iq, 406, "not-acceptable"))]
            device.signed_pre_key = SignedPreKey(key_id, public, signature)
        for key_id, public, _ in keys:
            device.pre_keys[key_id] = public
        self._on_change()
        return [Send(conn.conn_id, _iq_result(iq))]

    def _store_signed_pre_key(
        self, conn: Connection, iq: Node, device: CompanionDevice, skey: Node
    ) -> list[Action]:
        key_id, public, signature = _parse_key_node(skey, signed=True)
        assert signature is not None
        if not pairing.signed_pre_key_valid(device.identity_public, public, signature):
            return [Send(conn.conn_id, _iq_error(iq, 406, "not-acceptable"))]
        device.signed_pre_key = SignedPreKey(key_id, public, signature)
        self._on_change()
        return [Send(conn.conn_id, _iq_result(iq))]

    def _digest(self, device: CompanionDevice) -> Node:
        """The server's view of the key bundle; ``hash`` is SHA-1 over identity, signed pre-key,
        its signature and the one-time pre-keys in id order."""
        ids = sorted(device.pre_keys)
        spk = device.signed_pre_key
        digest = hashlib.sha1(usedforsecurity=False)
        for part in (device.identity_public, spk.public, spk.signature, *(device.pre_keys[i] for i in ids)):
            digest.update(part)
        return Node(
            "digest",
            {},
            [
                Node("type", {}, bytes([crypto.DJB_KEY_TYPE])),
                Node("registration", {}, device.registration_id.to_bytes(4, "big")),
                Node("identity", {}, device.identity_public),
                _key_node("skey", spk.key_id, spk.public, spk.signature),
                Node("list", {}, [_id_node(i) for i in ids]),
                Node("hash", {}, digest.digest()),
            ],
        )

    def _fetch_bundles(self, conn: Connection, iq: Node) -> list[Action]:
        users: list[Node] = []
        actions: list[Action] = []
        key = iq.child("key")
        requests = [] if key is None else key.children("user")
        for request in requests:
            jid_text = request.attrs.get("jid", "")
            try:
                jid = Jid.parse(jid_text)
                phone = self.state.phones[jid.user]
                device = phone.device(jid.device or 0)
            except (JidError, KeyError, NotFoundError):
                users.append(
                    Node(
                        "user", {"jid": jid_text}, [Node("error", {"code": "404", "text": "item-not-found"})]
                    )
                )
                continue
            pre_key, more = self._consume(phone, device, 1)
            actions += more
            spk = device.signed_pre_key
            children = [
                Node("registration", {}, device.registration_id.to_bytes(4, "big")),
                Node("type", {}, bytes([crypto.DJB_KEY_TYPE])),
                Node("identity", {}, device.identity_public),
            ]
            if pre_key:
                children.append(_key_node("key", pre_key[0][0], pre_key[0][1]))
            children.append(_key_node("skey", spk.key_id, spk.public, spk.signature))
            users.append(Node("user", {"jid": jid_text}, children))
        return [Send(conn.conn_id, _iq_result(iq, [Node("list", {}, users)])), *actions]

    def _consume(
        self, phone: Phone, device: CompanionDevice, count: int
    ) -> tuple[list[tuple[int, bytes]], list[Action]]:
        """Take ``count`` one-time pre-keys (lowest ids first), as contacts starting sessions do."""
        before = len(device.pre_keys)
        taken = [(key_id, device.pre_keys.pop(key_id)) for key_id in sorted(device.pre_keys)[:count]]
        after = len(device.pre_keys)
        if taken:
            self._on_change()
        live = self._live.get((phone.user, device.device_id))
        if live is None or not taken or after >= PRE_KEY_LOW_WATERMARK:
            return taken, []
        attrs = {
            "from": S_WHATSAPP_NET,
            "type": "encrypt",
            "id": self._new_id(),
            "t": str(int(self._clock())),
        }
        log.info("%s device %s has %d pre-keys left (had %d)", phone.user, device.device_id, after, before)
        return taken, [Send(live, Node("notification", attrs, [Node("count", {"value": str(after)})]))]

    def consume_pre_keys(self, phone: str, device_id: int, count: int) -> tuple[int, list[Action]]:
        """Contacts fetch ``count`` bundles of a device; returns the pre-keys left."""
        owner = self.state.phone(phone)
        device = owner.device(device_id)
        if count < 1:
            raise InvalidRequestError("count must be at least 1")
        _, actions = self._consume(owner, device, count)
        return len(device.pre_keys), actions

    def _remove_self(self, conn: Connection, iq: Node) -> list[Action]:
        assert conn.user is not None and conn.device_id is not None
        self.state.phones[conn.user].unlink(conn.device_id)
        self._on_change()
        log.info("%s device %s logged itself out", conn.user, conn.device_id)
        return [
            Send(conn.conn_id, _iq_result(iq)),
            Send(conn.conn_id, _stream_error(FAILURE_LOGGED_OUT, "device_removed")),
            *self._close(conn),
        ]

    # ------------------------------------------------------------------ messages

    def deliver_message(
        self,
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
        owner = self.state.phone(phone)
        if enc_type not in ("msg", "pkmsg", "skmsg"):
            raise InvalidRequestError("encType must be msg, pkmsg or skmsg")
        message = PendingMessage(
            message_id=message_id or "3EB0" + self._random(8).hex().upper(),
            sender=user_jid(normalize_phone(sender)),
            timestamp=int(self._clock()),
            type=message_type,
            enc_type=enc_type,
            ciphertext=ciphertext if ciphertext is not None else self._random(64),
        )
        for device in owner.devices.values():
            if any(m.message_id == message.message_id for m in device.pending_messages):
                raise ConflictError(f"message {message.message_id} is already pending")
        sent_to: list[int] = []
        actions: list[Action] = []
        for device_id, device in sorted(owner.devices.items()):
            device.pending_messages.append(message)
            live = self._live.get((owner.user, device_id))
            if live is not None:
                sent_to.append(device_id)
                actions.append(Send(live, _message_node(message)))
        self._on_change()
        return message, sent_to, actions

    def _message_acked(self, conn: Connection, message_id: str) -> None:
        if conn.phase is not Phase.LOGGED_IN:
            return
        device = self._device_of(conn)
        kept = [m for m in device.pending_messages if m.message_id != message_id]
        if len(kept) != len(device.pending_messages):
            device.pending_messages = kept
            self._on_change()

    def pending_messages(self, phone: str, device_id: int) -> list[PendingMessage]:
        return list(self.state.phone(phone).device(device_id).pending_messages)

    # ------------------------------------------------------------------ phone and control operations

    def create_phone(self, phone: str, *, push_name: str = "", business_name: str = "") -> Phone:
        user = normalize_phone(phone)
        private, public = crypto.x25519_keypair(self._random)
        lid_user = self._new_lid()
        created = Phone(user, private, public, lid_user, self._clock(), push_name, business_name)
        self.state.add_phone(created)
        self._on_change()
        return created

    def unlink_device(self, phone: str, device_id: int) -> list[Action]:
        """The phone removes a linked device: its socket gets 401 device_removed."""
        owner = self.state.phone(phone)
        owner.unlink(device_id)
        self._on_change()
        live = self._live.get((owner.user, device_id))
        if live is None or live not in self._conns:
            return []
        conn = self._conns[live]
        return [Send(live, _stream_error(FAILURE_LOGGED_OUT, "device_removed")), *self._close(conn)]

    def inject(self, fault: Fault) -> tuple[ActiveFault, list[Action]]:
        active = self.faults.add(fault, self._clock())
        if fault.kind.lasting:
            return active, []
        actions: list[Action] = []
        for conn in self._matching(fault.target):
            if fault.kind is FaultKind.DROP:
                actions += self._close(conn, abrupt=True)
            elif fault.kind is FaultKind.STREAM_ERROR:
                actions += [Send(conn.conn_id, _stream_error(fault.code)), *self._close(conn)]
            else:
                actions.append(SendMalformed(conn.conn_id, fault.variant))
        return active, actions

    def _matching(self, target: FaultTarget) -> list[Connection]:
        if target.user is None:
            return [c for c in self._conns.values() if c.phase in (Phase.REGISTERING, Phase.LOGGED_IN)]
        return [
            self._conns[conn_id]
            for (user, device_id), conn_id in self._live.items()
            if target.matches(user, device_id) and conn_id in self._conns
        ]

    # ------------------------------------------------------------------ views

    def live_sockets(self, user: str, device_id: int) -> int:
        conn_id = self._live.get((user, device_id))
        return int(conn_id is not None and conn_id in self._conns)

    def devices_view(self, phone: str) -> list[dict[str, object]]:
        owner = self.state.phone(phone)
        return [
            {
                "device": d.device_id,
                "jid": device_jid(owner.user, d.device_id),
                "lid": device_jid(owner.lid_user, d.device_id, LID_SERVER),
                "platform": d.platform,
                "linkedAt": d.linked_at,
                "liveSockets": self.live_sockets(owner.user, d.device_id),
                "loginCount": d.login_count,
                "lastLoginAt": d.last_login_at,
                "replacedCount": self._replaced.get((owner.user, d.device_id), 0),
                "preKeyCount": len(d.pre_keys),
                "pendingMessages": len(d.pending_messages),
            }
            for _, d in sorted(owner.devices.items())
        ]

    def stats(self) -> dict[str, int]:
        phases = [c.phase for c in self._conns.values()]
        return {
            "connections": len(phases),
            "loggedIn": phases.count(Phase.LOGGED_IN),
            "registering": phases.count(Phase.REGISTERING),
            "loginsTotal": self.logins_total,
            "phones": len(self.state.phones),
        }

    # ------------------------------------------------------------------ helpers

    def _conn(self, conn_id: int) -> Connection:
        try:
            return self._conns[conn_id]
        except KeyError:
            raise ClientProtocolError(f"connection {conn_id} is not open") from None

    def _close(self, conn: Connection, *, abrupt: bool = False) -> list[Action]:
        """Stop serving ``conn`` now (it no longer counts as live) and ask the driver to close it."""
        self._forget(conn)
        if conn.phase is not Phase.CLOSED:
            _move(conn, Phase.CLOSED)
        return [Close(conn.conn_id, abrupt)]

    def _forget(self, conn: Connection) -> None:
        if conn.user is not None and conn.device_id is not None:
            key = (conn.user, conn.device_id)
            if self._live.get(key) == conn.conn_id:
                del self._live[key]
        for ref in conn.refs:
            self._refs.pop(ref, None)
        if conn.code_pairing is not None:
            self._code_pairings.pop(conn.code_pairing.ref, None)

    def _new_id(self) -> str:
        return str(int.from_bytes(self._random(6), "big"))

    def _new_ref(self) -> bytes:
        # Refs are opaque to clients; real ones look like "2@<base64>". No commas: the QR is comma-separated.
        return b"2@" + base64.b64encode(self._random(36))

    def _new_lid(self) -> str:
        while True:
            lid = str(10**14 + int.from_bytes(self._random(8), "big") % (9 * 10**14))
            if not self.state.lid_taken(lid):
                return lid
