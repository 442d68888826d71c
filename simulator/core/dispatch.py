"""``SimulatorCore``: every event from the driver or the control API, routed to the module whose job
it is. It holds the shared ``Context``; the rules live in the modules it calls."""

from __future__ import annotations

from collections.abc import Callable

from connector.protocol.binary import Node
from simulator import crypto
from simulator.core import (
    bundles,
    delivery,
    fault_injection,
    groups,
    link_code,
    login,
    messages,
    phones,
    prekeys,
    privacy,
    receipts,
    registration,
    usync,
)
from simulator.core.actions import Action, Send
from simulator.core.connections import Connection, Connections, Phase
from simulator.core.context import Clock, Context
from simulator.core.phone_party import PhoneParties
from simulator.core.stanzas import iq_error, iq_result
from simulator.errors import ClientProtocolError
from simulator.faults import ActiveFault, Fault, FaultBook
from simulator.payloads import RegistrationHello, parse_client_payload
from simulator.state import Group, Phone, QueuedStanza, SimulatorState

SERVER_PROPS_HASH = "sim-1"


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
        self._ctx = Context(
            state=state,
            conns=Connections(clock),
            faults=FaultBook(),
            clock=clock,
            random=random_bytes,
            on_change=on_change or (lambda: None),
        )
        self.state = state
        self.faults = self._ctx.faults
        self._parties = PhoneParties(self._ctx)

    def now(self) -> float:
        return self._ctx.clock()

    @property
    def logins_total(self) -> int:
        return self._ctx.conns.logins_total

    # ------------------------------------------------------------------ from the websocket driver

    def open_connection(self) -> int:
        return self._ctx.conns.open()

    def connection_lost(self, conn_id: int) -> None:
        self._ctx.conns.lost(conn_id)

    def client_hello(self, conn_id: int, client_static: bytes, payload: bytes) -> list[Action]:
        """The handshake finished: ``payload`` is the decrypted ClientPayload."""
        ctx = self._ctx
        conn = ctx.conns.get(conn_id)
        if conn.phase is not Phase.AWAITING_HELLO:
            raise ClientProtocolError("second ClientPayload on one connection")
        conn.noise_public = client_static
        hello = parse_client_payload(payload)
        if fault_injection.refused(ctx, None, None):
            return ctx.conns.close(conn, abrupt=True)
        if isinstance(hello, RegistrationHello):
            return registration.start(ctx, conn, hello)
        if fault_injection.refused(ctx, hello.user, hello.device_id):
            return ctx.conns.close(conn, abrupt=True)
        return login.login(ctx, conn, hello)

    def receive(self, conn_id: int, node: Node) -> list[Action]:
        conn = self._ctx.conns.get(conn_id)
        if conn.phase is Phase.CLOSED:
            return []
        if conn.phase is Phase.AWAITING_HELLO:
            raise ClientProtocolError("stanza before the handshake finished")
        if node.tag == "ack" and node.attrs.get("class") in ("message", "receipt", "notification"):
            delivery.message_acked(self._ctx, conn, node)
            return []
        if node.tag in ("message", "receipt") and conn.phase is Phase.LOGGED_IN:
            handler = messages.relay if node.tag == "message" else receipts.receipt
            return handler(self._ctx, conn, node)
        if node.tag != "iq":
            return []  # presence, ib and other acks: nothing the simulator must answer
        if "id" not in node.attrs:
            raise ClientProtocolError("iq without id")
        if node.attrs.get("type") in ("result", "error"):
            return registration.client_answer(self._ctx, conn, node)
        return self._client_iq(conn, node)

    def _client_iq(self, conn: Connection, iq: Node) -> list[Action]:
        ctx = self._ctx
        xmlns = iq.attrs.get("xmlns", "")
        first = next(iter(iq.children()), None)
        tag = "" if first is None else first.tag
        if xmlns == "w:p":
            return [] if fault_injection.pings_stopped(ctx, conn) else [Send(conn.conn_id, iq_result(iq))]
        if xmlns == "md" and tag == "link_code_companion_reg" and first is not None:
            return link_code.companion_iq(ctx, conn, iq, first)
        if conn.phase is not Phase.LOGGED_IN:
            return [Send(conn.conn_id, iq_error(iq, 401, "not-authorized"))]
        if xmlns == "passive" and tag in ("passive", "active"):
            return [Send(conn.conn_id, iq_result(iq))]
        if xmlns == "md" and tag == "remove-companion-device":
            return login.remove_self(ctx, conn, iq)
        if xmlns == "encrypt":
            return prekeys.encrypt_iq(ctx, conn, iq, tag)
        if xmlns == "usync":
            return usync.usync_iq(ctx, conn, iq)
        if xmlns == "w:g2":
            return groups.group_iq(ctx, conn, iq)
        if xmlns == "privacy":
            return privacy.privacy_iq(conn, iq)
        if xmlns == "w" and tag == "props":
            # Server feature flags (Baileys fetchProps, protocol 2): the simulator has none to offer.
            props = Node("props", {"protocol": "2", "hash": SERVER_PROPS_HASH})
            return [Send(conn.conn_id, iq_result(iq, [props]))]
        return [Send(conn.conn_id, iq_error(iq, 501, "feature-not-implemented"))]

    # ------------------------------------------------------------------ from the control API

    def create_phone(self, phone: str, *, push_name: str = "", business_name: str = "") -> Phone:
        return phones.create_phone(self._ctx, phone, push_name=push_name, business_name=business_name)

    def scan_qr(self, phone: str, qr: str) -> tuple[str, list[Action]]:
        """The phone scans a companion's QR; returns the device JID offered and the actions."""
        return registration.scan_qr(self._ctx, phone, qr)

    def enter_link_code(self, phone: str, code: str) -> list[Action]:
        """The user types the companion's code on the phone: the phone answers the newest hello."""
        return link_code.enter_link_code(self._ctx, phone, code)

    def unlink_device(self, phone: str, device_id: int) -> list[Action]:
        return phones.unlink_device(self._ctx, phone, device_id)

    def consume_pre_keys(self, phone: str, device_id: int, count: int) -> tuple[int, list[Action]]:
        return bundles.consume_pre_keys(self._ctx, phone, device_id, count)

    def deliver_message(
        self,
        phone: str,
        sender: str,
        *,
        message_id: str | None = None,
        message_type: str = "text",
        enc_type: str = "msg",
        ciphertext: bytes | None = None,
    ) -> tuple[QueuedStanza, list[int], list[Action]]:
        return delivery.deliver_message(
            self._ctx,
            phone,
            sender,
            message_id=message_id,
            message_type=message_type,
            enc_type=enc_type,
            ciphertext=ciphertext,
        )

    def pending_messages(self, phone: str, device_id: int) -> list[QueuedStanza]:
        return delivery.pending_messages(self._ctx, phone, device_id)

    def phone_send(self, phone: str, to: str, text: str) -> tuple[str, list[Action]]:
        """The phone's owner sends a text to a phone number or a group; returns the message id."""
        return self._parties.send(self.state.phone(phone), to, text)

    def phone_messages(self, phone: str) -> list[dict[str, object]]:
        return [dict(m) for m in self.state.phone(phone).inbox]

    def phone_mark_read(self, phone: str, ids: list[str] | None) -> tuple[int, list[Action]]:
        return self._parties.mark_read(self.state.phone(phone), ids)

    def create_group(self, creator: str, subject: str, members: list[str]) -> tuple[Group, list[Action]]:
        """The creator's phone makes a group; every member device is told (``w:gp2`` create)."""
        ctx = self._ctx
        owner = ctx.state.phone(creator)
        group = groups.create_group(ctx, owner, subject, [ctx.state.phone(m) for m in members])
        created = Node("create", {"type": "new"}, [groups.metadata_node(ctx, group)])
        return group, groups.notify(ctx, group, owner, created)

    def change_group(self, group_id: str, action: str, members: list[str]) -> tuple[dict[str, int], list[Action]]:
        """The group's creator changes its members; members (and those removed) are told."""
        ctx = self._ctx
        group = ctx.state.group(group_id)
        users = [ctx.state.phone(m).user for m in members]
        statuses = groups.change_participants(ctx, group, action, users)
        done = [user for user, status in statuses.items() if status == 200]
        if not done:
            return statuses, []
        changed = Node(action, {}, groups.participant_nodes(ctx, group, done))
        actor = ctx.state.phones[group.creator]
        return statuses, groups.notify(ctx, group, actor, changed, also=done if action == "remove" else [])

    def group_view(self, group_id: str) -> dict[str, object]:
        group = self._ctx.state.group(group_id)
        return {
            "id": group.jid,
            "subject": group.subject,
            "creator": "+" + group.creator,
            "creation": group.created_at,
            "addressingMode": group.addressing_mode,
            "participants": [{"phone": "+" + u, "role": r or "member"} for u, r in group.participants.items()],
        }

    def inject(self, fault: Fault) -> tuple[ActiveFault, list[Action]]:
        return fault_injection.inject(self._ctx, fault)

    # ------------------------------------------------------------------ views

    def live_sockets(self, user: str, device_id: int) -> int:
        return phones.live_sockets(self._ctx, user, device_id)

    def devices_view(self, phone: str) -> list[dict[str, object]]:
        return phones.devices_view(self._ctx, phone)

    def stats(self) -> dict[str, int]:
        phases = self._ctx.conns.phases()
        return {
            "connections": len(phases),
            "loggedIn": phases.count(Phase.LOGGED_IN),
            "registering": phases.count(Phase.REGISTERING),
            "loginsTotal": self.logins_total,
            "phones": len(self.state.phones),
            "groups": len(self.state.groups),
            "relayedTotal": self._ctx.relayed_total,
        }
