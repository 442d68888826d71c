"""The WhatsApp Web client as a sans-I/O state machine.

Feed it what the socket received (``receive_data``) and the passage of time (``tick``); take from it the
bytes to write (``data_to_send``) and what happened (``events``). It never reads a clock, never sleeps and
never touches a socket: the asyncio driver in ``connector.engine`` does.

States and the transitions allowed between them (anything else raises ``IllegalTransitionError`` and leaves
the state unchanged)::

    IDLE ──start──► HANDSHAKING ──server_hello──► AUTHENTICATING ──success──► OPEN
                                                       │
                                                  pair_device
                                                       ▼
                                         PAIRING ◄─pair_device─┘ (refs rotate)
                                            │
                                       pair_success
                                            ▼
                                         PAIRED   (the server then sends stream:error 515)

    every state except CLOSED ──close──► CLOSED

Logout (``logout``) is not a state but a request carried through them: once logged in (at once when OPEN,
right after ``<success>`` when still connecting) the client sends ``remove-companion-device`` and closes
with ``logged_out_by_client`` when the server confirms, or ``logout_failed`` otherwise (see ``close.py``).

Rules the caller must follow:

* handle ``CredsChanged(kind="critical")`` (persist it) before writing the bytes from ``data_to_send``
  that follow it: the pair-device-sign reply must not reach the server before the credentials it commits
  us to are safe;
* acknowledge a ``MessageDecrypted`` / ``MessageUndecryptable`` with ``ack_message`` only once the message
  is stored elsewhere and the Signal state that opened it is durable (the receipt makes WhatsApp forget it);
* a send (``send_message``, the flow of ``outbound``) reports ``SendStatus`` events; every stanza carrying
  its ciphertext follows a critical ``CredsChanged``, so the Signal state that produced it (new sessions,
  ratchet steps, sender keys) is persisted before it leaves;
* call ``tick`` no later than ``next_deadline()``.
* after ``logout`` the connection ends by itself (bounded by the logout timeout); no ``Opened`` is
  reported for a login that only serves to log out.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from connector.protocol import certs, linking, pairing, prekeys, receipts, stanzas
from connector.protocol.binary import Jid, Node, decode_node, encode_node
from connector.protocol.close import (
    CloseInfo,
    CloseReason,
    classify_failure,
    classify_stream_error,
    close_info,
    logout_outcome,
)
from connector.protocol.crypto import KeyPair, RandomSource
from connector.protocol.errors import (
    IllegalTransitionError,
    JidError,
    MessageFormatError,
    PairingError,
    ProtocolError,
)
from connector.protocol.events import (
    Closed,
    CredsChanged,
    DecryptedMessage,
    DecryptFailure,
    DuplicateIgnored,
    Event,
    FailureReason,
    MessageDecrypted,
    MessageUndecryptable,
    OfflineSyncDone,
    Opened,
    Paired,
    PairingCodeShown,
    PreKeysUploaded,
    QrCodeShown,
    ReceivedMessage,
    RetryRequested,
)
from connector.protocol.frames import WA_INTRO_HEADER, FrameDecoder, edge_routing_intro, encode_frame
from connector.protocol.inbound import decrypt_message
from connector.protocol.message_stanzas import device_identity
from connector.protocol.noise import NoiseHandshake, NoiseTransport
from connector.protocol.outbound import Outbound, SendRequest, SentLog
from connector.protocol.payload import DeviceDescription, login_payload, registration_payload
from connector.protocol.retries import RetryLedger
from connector.protocol.signal.repository import SignalRepository
from shared.authstate import (
    CRITICAL_CREDS_FIELDS,
    IDENTITY_KEY,
    PRE_KEY,
    SENDER_KEY,
    SENDER_KEY_MEMORY,
    SESSION,
    Contact,
    Credentials,
)
from shared.authstore import CREDS, AuthStore, ChangeKind, KeyUpdates
from shared.bufferjson import JsonValue


class ClientState(enum.Enum):
    IDLE = "idle"
    HANDSHAKING = "handshaking"
    AUTHENTICATING = "authenticating"
    PAIRING = "pairing"
    PAIRED = "paired"
    OPEN = "open"
    CLOSED = "closed"


class Trigger(enum.Enum):
    START = "start"
    SERVER_HELLO = "server_hello"
    PAIR_DEVICE = "pair_device"
    PAIR_SUCCESS = "pair_success"
    LOGIN_SUCCESS = "login_success"
    CLOSE = "close"


S = ClientState
TRANSITIONS: Final[dict[tuple[ClientState, Trigger], ClientState]] = {
    (S.IDLE, Trigger.START): S.HANDSHAKING,
    (S.HANDSHAKING, Trigger.SERVER_HELLO): S.AUTHENTICATING,
    (S.AUTHENTICATING, Trigger.LOGIN_SUCCESS): S.OPEN,
    (S.AUTHENTICATING, Trigger.PAIR_DEVICE): S.PAIRING,
    (S.PAIRING, Trigger.PAIR_DEVICE): S.PAIRING,
    (S.PAIRING, Trigger.PAIR_SUCCESS): S.PAIRED,
    **{(state, Trigger.CLOSE): S.CLOSED for state in ClientState if state is not S.CLOSED},
}


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Knobs of the protocol client. Times are seconds."""

    root_public_key: bytes = certs.WHATSAPP_ROOT_PUBLIC_KEY
    device: DeviceDescription = field(default_factory=DeviceDescription)
    pairing_phone_number: str | None = None
    """Set to pair by code (digits only, international); leave unset to pair by QR."""
    handshake_timeout_s: float = 20.0
    keepalive_min_s: float = 20.0
    keepalive_max_s: float = 30.0
    ping_timeout_s: float = 10.0
    iq_timeout_s: float = 60.0
    logout_timeout_s: float = 10.0
    """From ``logout`` to the server's answer, logging in first if needed."""
    first_qr_ttl_s: float = 60.0
    next_qr_ttl_s: float = 20.0
    min_pre_key_count: int = 5
    upload_pre_key_count: int = 50
    initial_pre_key_count: int = 812
    digest_delay_min_s: float = 5.0
    digest_delay_max_s: float = 30.0
    """The key-bundle digest check (Baileys runs it right after login) is sent this long after login,
    at a random point between the two: its answer lists every pre-key id the server holds (~800 nodes
    to build and read), and after a restart that brings a thousand accounts back at once the sockets
    come up first and the housekeeping follows, spread out, instead of competing with the logins."""


SEND_STATE_CATEGORIES: Final = frozenset({SESSION, IDENTITY_KEY, SENDER_KEY, SENDER_KEY_MEMORY})
"""What encrypting a message may change: persisted before the message leaves."""


class _Iq(enum.Enum):
    PING = "ping"
    PRE_KEY_COUNT = "pre_key_count"
    PRE_KEY_UPLOAD = "pre_key_upload"
    DIGEST = "digest"
    PASSIVE = "passive"
    LINK_CODE_HELLO = "link_code_hello"
    LINK_CODE_FINISH = "link_code_finish"
    LOGOUT = "logout"


@dataclass(slots=True)
class _Pending:
    kind: _Iq
    deadline: float
    batch: prekeys.PreKeyBatch | None = None
    server_count: int = 0


class _RecordingStore:
    """Passes writes to the real store and reports each effective change as a ``CredsChanged`` event."""

    def __init__(self, store: AuthStore, events: list[Event]) -> None:
        self._store = store
        self._events = events

    def get_creds(self) -> Credentials:
        return self._store.get_creds()

    def update_creds(self, changes: Mapping[str, JsonValue]) -> None:
        current = self._store.get_creds().as_json()
        changed = frozenset(key for key, value in changes.items() if current.get(key) != value)
        if not changed:
            return
        self._store.update_creds(changes)
        kind: ChangeKind = "critical" if changed & CRITICAL_CREDS_FIELDS else "routine"
        self._events.append(CredsChanged(kind=kind, creds_fields=changed, categories=frozenset({CREDS})))

    def get_keys(self, category: str, ids: Iterable[str]) -> dict[str, JsonValue]:
        return self._store.get_keys(category, ids)

    def set_keys(self, updates: KeyUpdates) -> None:
        self._store.set_keys(updates)
        categories = frozenset(category for category, entries in updates.items() if entries)
        if categories:
            # New pre-keys are about to be uploaded (or handed out in a retry receipt): once the server
            # hands one out, a message will need it, so they must be persisted before the bytes leave
            # (hence critical for the sender). A pre-key consumed by a pkmsg is a routine change.
            added = any(value is not None for value in updates.get(PRE_KEY, {}).values())
            kind: ChangeKind = "critical" if added else "routine"
            self._events.append(CredsChanged(kind=kind, categories=categories))


class Client:
    """One connection attempt of one account. Create a new ``Client`` for every reconnect."""

    def __init__(self, store: AuthStore, config: ClientConfig, rand: RandomSource, *,
                 retries: RetryLedger | None = None, sent: SentLog | None = None) -> None:
        """``retries``: the account's retry ledger, kept across connections (a fresh one if None);
        ``sent``: the account's sent messages kept for retry receipts, across connections."""
        self._events: list[Event] = []
        self._store = _RecordingStore(store, self._events)
        self._now = 0.0  # the time of the input being handled (the Signal layer stamps sessions with it)
        self._signal = SignalRepository(self._store, random_bytes=rand, now_ms=lambda: int(self._now * 1000))
        self._retries = retries if retries is not None else RetryLedger()
        self._sent = sent if sent is not None else SentLog()
        self._outbound: Outbound | None = None  # made at login
        self._config = config
        self._rand = rand
        self._state = ClientState.IDLE
        self._outgoing: list[bytes] = []
        self._frames = FrameDecoder()
        self._noise: NoiseHandshake | None = None
        self._transport: NoiseTransport | None = None
        self._pending: dict[str, _Pending] = {}
        self._id_prefix = f"{int.from_bytes(rand(2), 'big')}.{int.from_bytes(rand(2), 'big')}-"
        self._id_counter = 0
        self._handshake_deadline: float | None = None
        self._next_ping_at: float | None = None
        self._digest_at: float | None = None
        self._qr_refs: list[str] = []
        self._qr_shown = 0
        self._qr_expires_at: float | None = None
        self._link_code_ref: bytes | None = None
        self._uploading_pre_keys = False
        self._pairing_by_code = bool(config.pairing_phone_number)
        self._pairing_phone: str | None = None  # digits only, set when pairing by code starts
        self._logout_deadline: float | None = None  # set while a logout is in progress
        self.close_info: CloseInfo | None = None

    # ------------------------------------------------------------------------------ public surface

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def is_registered(self) -> bool:
        """Whether the stored credentials belong to a linked device (login) or a new one (registration)."""
        creds = self._store.get_creds()
        return creds.get("me") is not None and creds.get("account") is not None

    def start(self, now: float) -> None:
        """Queue the intro header and the Noise client hello."""
        self._transition(Trigger.START)
        creds = self._store.get_creds()
        noise_key = creds.noise_key
        self._noise = NoiseHandshake(
            "initiator", WA_INTRO_HEADER, KeyPair(private=noise_key.private, public=noise_key.public), self._rand
        )
        routing_info = creds.routing_info
        intro = edge_routing_intro(routing_info) if routing_info else WA_INTRO_HEADER
        self._outgoing.append(encode_frame(self._noise.write_client_hello(), intro=intro))
        self._handshake_deadline = now + self._config.handshake_timeout_s

    def receive_data(self, data: bytes, now: float) -> None:
        """Feed bytes read from the socket."""
        if self._state in (ClientState.IDLE, ClientState.CLOSED):
            return
        queued = len(self._outgoing)
        self._now = now
        try:
            for frame in self._frames.feed(data):
                if self._state is ClientState.HANDSHAKING:
                    self._on_server_hello(frame, now)
                else:
                    assert self._transport is not None
                    self._on_node(decode_node(self._transport.decrypt(frame)), now)
                if self._is_closed():
                    break
        except ProtocolError as exc:
            self._close(close_info(CloseReason.PROTOCOL_ERROR, detail=f"{type(exc).__name__}: {exc}"))
        except Exception as exc:
            # Decoders raise only ProtocolError (tests/connector/protocol/test_fuzz.py); anything else is
            # a bug met on server bytes, and the state it left is not to be trusted: close, and send
            # nothing this input produced.
            del self._outgoing[queued:]
            self._close(close_info(CloseReason.PROTOCOL_ERROR,
                                   detail=f"internal error {type(exc).__name__} on server input"))

    def tick(self, now: float) -> None:
        """Advance timers: handshake deadline, QR rotation, keepalive pings and their deadline."""
        if self._state in (ClientState.IDLE, ClientState.CLOSED):
            return
        if self._logout_deadline is not None and now >= self._logout_deadline:
            waited_for = "an answer" if self._state is ClientState.OPEN else "the login"
            self._close(close_info(CloseReason.LOGOUT_FAILED, detail=f"logout timed out waiting for {waited_for}"))
            return
        if self._handshake_deadline is not None and now >= self._handshake_deadline:
            self._close(close_info(CloseReason.TIMED_OUT, detail="handshake did not complete"))
            return
        for iq_id, pending in list(self._pending.items()):
            if now >= pending.deadline:
                del self._pending[iq_id]
                if pending.kind is _Iq.PING:
                    self._close(close_info(CloseReason.CONNECTION_LOST, detail="keepalive ping unanswered"))
                    return
                if pending.kind is _Iq.PRE_KEY_UPLOAD:
                    self._uploading_pre_keys = False
        if self._qr_expires_at is not None and now >= self._qr_expires_at:
            self._show_next_qr(now)
            if self._is_closed():
                return
        if self._next_ping_at is not None and now >= self._next_ping_at:
            self._send_ping(now)
        if self._digest_at is not None and now >= self._digest_at:
            self._digest_at = None
            self._query(stanzas.key_digest(), _Iq.DIGEST, now)
        if self._state is ClientState.OPEN:
            for failure, count in self._retries.expired(now):
                self._events.append(MessageUndecryptable(failure, retries=count, acked=True))
        if self._outbound is not None:
            self._now = now
            self._outbound.tick(now)
            self._flush_outbound()

    def next_deadline(self) -> float | None:
        """The earliest time at which ``tick`` has work to do."""
        if self._state in (ClientState.IDLE, ClientState.CLOSED):
            return None
        times = [p.deadline for p in self._pending.values()]
        resend = self._retries.next_deadline() if self._state is ClientState.OPEN else None
        if self._outbound is not None and (send_deadline := self._outbound.next_deadline()) is not None:
            times.append(send_deadline)
        timers = (self._handshake_deadline, self._qr_expires_at, self._next_ping_at, self._logout_deadline,
                  self._digest_at, resend)
        times += [t for t in timers if t is not None]
        return min(times, default=None)

    def data_to_send(self) -> list[bytes]:
        out, self._outgoing = self._outgoing, []
        return out

    def events(self) -> list[Event]:
        out = list(self._events)
        self._events.clear()
        return out

    def ack_message(self, received: ReceivedMessage) -> bool:
        """Confirm a message to WhatsApp: the receipt of a decrypted one (type none, ``sender`` for our own
        other devices'), the error ack (500) of an undecryptable one. False if the connection is gone
        (WhatsApp delivers it again on the next login)."""
        if self._state is not ClientState.OPEN:
            return False
        if isinstance(received, MessageDecrypted):
            incoming = received.message.incoming
            receipt_type = "sender" if received.message.addressing.from_me else None
            self._send(receipts.message_receipt(incoming, receipt_type=receipt_type))
        elif not received.acked:
            self._send(receipts.nack(received.failure.incoming.node, self._me_id(), receipts.FAILURE))
        return True

    def send_message(self, request: SendRequest, now: float) -> bool:
        """Start a send; its outcome comes as ``SendStatus`` events (``sent`` or ``failed``, then
        ``delivered`` and ``read``). False when not logged in (nothing was sent: send it on the next
        connection); raises ``MessageFormatError`` when the request is malformed."""
        if self._state is not ClientState.OPEN or self._outbound is None or self.logging_out:
            return False
        self._now = now
        self._outbound.send(request, now)
        self._flush_outbound()
        return True

    @property
    def sends_in_flight(self) -> int:
        """Sends (and resends) waiting on the server: a connection lost meanwhile leaves them unsettled."""
        return self._outbound.in_flight if self._outbound is not None else 0

    def close(self) -> None:
        """End the connection at the caller's request (the driver closes the socket)."""
        if self._state is not ClientState.CLOSED:
            self._close(close_info(CloseReason.CLOSED_BY_CLIENT))

    @property
    def logging_out(self) -> bool:
        """A logout is in progress (asked for, connection not ended): however it ends, it ends as a logout."""
        return self._logout_deadline is not None

    def logout(self, now: float, timeout_s: float | None = None) -> None:
        """Unlink this device from the account (the phone stops listing it), then close.

        Sends ``remove-companion-device`` for the own device JID once logged in and closes with
        ``logged_out_by_client`` when the server confirms it (or drops the device), or ``logout_failed``
        when it refuses, gives no answer within ``timeout_s`` (default ``logout_timeout_s``) or the
        connection ends first. A device that is not linked (no stored identity, still pairing) has nothing
        to unlink and closes at once with ``logged_out_by_client``. A device paired on this very
        connection cannot log out before the server's restart: ``logout_failed`` (log out after it).
        """
        if self._state is ClientState.CLOSED or self._logout_deadline is not None:
            return
        if self._state is ClientState.PAIRED:
            self._close(close_info(CloseReason.LOGOUT_FAILED, detail="paired on this connection: log in first"))
            return
        if self._state is ClientState.PAIRING or not self.is_registered:
            self._close(close_info(CloseReason.LOGGED_OUT_BY_CLIENT, detail="no linked device"))
            return
        self._logout_deadline = now + (self._config.logout_timeout_s if timeout_s is None else timeout_s)
        if self._state is ClientState.OPEN:
            self._send_logout(now)

    def connection_lost(self, detail: str = "socket closed") -> None:
        """The driver reports that the socket closed without a stanza explaining why."""
        if self._state is not ClientState.CLOSED:
            reason = CloseReason.TIMED_OUT if self._state is ClientState.HANDSHAKING else CloseReason.CONNECTION_CLOSED
            self._close(close_info(reason, detail=detail))

    def send_node(self, node: Node) -> None:
        """Send any stanza once the transport is up (for callers that extend the client)."""
        self._send(node)

    # ------------------------------------------------------------------------------ state machine

    def _is_closed(self) -> bool:
        return self._state is ClientState.CLOSED

    def _transition(self, trigger: Trigger) -> None:
        target = TRANSITIONS.get((self._state, trigger))
        if target is None:
            raise IllegalTransitionError(f"{trigger.value} is not allowed in state {self._state.value}")
        self._state = target

    def _close(self, info: CloseInfo) -> None:
        if self._state is ClientState.CLOSED:
            return
        if self._logout_deadline is not None:
            info = logout_outcome(info)
        self._transition(Trigger.CLOSE)
        self.close_info = info
        self._pending.clear()
        self._next_ping_at = self._qr_expires_at = self._handshake_deadline = self._logout_deadline = None
        self._digest_at = None
        self._events.append(Closed(info))

    # ------------------------------------------------------------------------------ handshake

    def _on_server_hello(self, frame: bytes, now: float) -> None:
        assert self._noise is not None
        chain = self._noise.read_server_hello(frame)
        assert self._noise.remote_static is not None
        certs.verify_cert_chain(chain, self._noise.remote_static, root_public_key=self._config.root_public_key, now=now)
        creds = self._store.get_creds()
        if self.is_registered:
            me = creds.me
            assert me is not None
            payload = login_payload(me.id, self._config.device)
        else:
            signed = creds.signed_pre_key
            payload = registration_payload(
                registration_id=creds.registration_id,
                identity_public=creds.signed_identity_key.public,
                signed_pre_key_id=signed.key_id,
                signed_pre_key_public=signed.key_pair.public,
                signed_pre_key_signature=signed.signature,
                device=self._config.device,
            )
        self._outgoing.append(encode_frame(self._noise.write_client_finish(payload)))
        self._transport = self._noise.split()
        self._noise = None
        self._transition(Trigger.SERVER_HELLO)

    # ------------------------------------------------------------------------------ stanzas

    def _on_node(self, node: Node, now: float) -> None:
        tag = node.tag
        if self._outbound is not None and tag in ("iq", "ack", "receipt") and self._outbound.handle(node, now):
            self._flush_outbound()
            if tag != "receipt":  # a receipt is acked below, as every receipt is
                return
        if tag == "iq":
            self._on_iq(node, now)
        elif tag == "success":
            self._on_success(node, now)
        elif tag == "failure":
            self._close(classify_failure(node))
        elif tag == "stream:error":
            self._close(classify_stream_error(node))
        elif tag == "xmlstreamend":
            self._close(close_info(CloseReason.CONNECTION_CLOSED, detail="server ended the stream"))
        elif tag == "ib":
            self._on_ib(node)
        elif tag == "message":
            self._on_message(node, now)
        elif tag == "notification":
            self._send(self._ack_for(node))
            if node.attrs.get("type") == "link_code_companion_reg":
                self._on_link_code_notification(node, now)
            elif node.attrs.get("type") == "encrypt":
                self._on_encrypt_notification(node, now)
        elif tag in ("receipt", "call"):
            self._send(self._ack_for(node))

    def _on_iq(self, node: Node, now: float) -> None:
        kind = node.attrs.get("type")
        if kind in ("result", "error"):
            pending = self._pending.pop(node.attrs.get("id", ""), None)
            if pending is not None:
                self._on_iq_response(pending, node, ok=kind == "result", now=now)
            return
        if node.child("pair-device") is not None:
            self._on_pair_device(node, now)
        elif node.child("pair-success") is not None:
            self._on_pair_success(node)
        elif node.attrs.get("xmlns") == "urn:xmpp:ping":
            self._send(stanzas.iq_result(node))

    def _on_iq_response(self, pending: _Pending, node: Node, *, ok: bool, now: float) -> None:
        if pending.kind is _Iq.PRE_KEY_COUNT and ok:
            server_count = stanzas.count_value(node)
            if server_count is None:
                raise MessageFormatError("pre-key count response has no value")
            if server_count < self._config.min_pre_key_count:
                wanted = self._config.initial_pre_key_count if server_count == 0 else self._config.upload_pre_key_count
                self._upload_pre_keys(wanted, server_count, now)
        elif pending.kind is _Iq.PRE_KEY_UPLOAD:
            self._uploading_pre_keys = False
            if ok and pending.batch is not None:
                prekeys.mark_uploaded(self._store, pending.batch)
                self._events.append(PreKeysUploaded(len(pending.batch.keys), pending.server_count))
        elif pending.kind is _Iq.DIGEST and ok and node.child("digest") is None:
            self._upload_pre_keys(self._config.upload_pre_key_count, -1, now)
        elif pending.kind is _Iq.LINK_CODE_HELLO:
            ref = linking.companion_hello_ref(node)
            if not ok or ref is None:
                # 404 item-not-found: no WhatsApp account has this number (whatsmeow PairPhone)
                error = node.child("error")
                unknown = error is not None and error.attrs.get("code") == "404"
                self._close(close_info(CloseReason.PAIRING_UNKNOWN_NUMBER if unknown else CloseReason.PAIRING_FAILED,
                                       detail="pairing code request refused"))
                return
            self._link_code_ref = ref
            code = self._store.get_creds().pairing_code or ""
            phone = self._config.pairing_phone_number or ""
            self._events.append(PairingCodeShown(pairing.format_pairing_code(code), phone))
        elif pending.kind is _Iq.LINK_CODE_FINISH and not ok:
            # the phone could not open our key bundle: the code typed on it was not the one we showed
            self._close(close_info(CloseReason.PAIRING_WRONG_CODE, detail="companion_finish refused"))
        elif pending.kind is _Iq.LOGOUT:
            if ok:
                self._close(close_info(CloseReason.LOGGED_OUT_BY_CLIENT, detail="remove-companion-device accepted"))
                return
            error = node.child("error")
            code = error.attrs.get("code", "") if error is not None else ""
            text = error.attrs.get("text", "") if error is not None else ""
            detail = f"remove-companion-device refused: {code} {text}".strip()
            self._close(close_info(CloseReason.LOGOUT_FAILED, code=int(code) if code.isdigit() else None,
                                   detail=detail))

    # ------------------------------------------------------------------------------ login

    def _on_success(self, node: Node, now: float) -> None:
        creds = self._store.get_creds()
        me = creds.me
        if me is None:
            raise MessageFormatError("login success without stored identity")
        lid = node.attrs.get("lid") or me.lid
        if lid != me.lid:
            self._store.update_creds({"me": Contact(id=me.id, lid=lid, name=me.name).to_json()})
        self._transition(Trigger.LOGIN_SUCCESS)
        self._handshake_deadline = None
        if self._logout_deadline is not None:
            # Logged in only to log out: no Opened (the account must not look online), no key upkeep.
            self._send_logout(now)
            return
        self._events.append(Opened(jid=me.id, lid=lid))
        if creds.account is not None:
            self._outbound = Outbound(self._signal, Jid.parse(me.id), Jid.parse(lid) if lid else None,
                                      device_identity=device_identity(creds.account), rand=self._rand,
                                      next_id=self._next_id, iq_timeout_s=self._config.iq_timeout_s,
                                      ack_timeout_s=self._config.iq_timeout_s, sent=self._sent)
        self._query(stanzas.pre_key_count(), _Iq.PRE_KEY_COUNT, now)
        self._query(stanzas.set_active(), _Iq.PASSIVE, now)
        spread = self._config.digest_delay_max_s - self._config.digest_delay_min_s
        self._digest_at = now + self._config.digest_delay_min_s + spread * int.from_bytes(self._rand(2), "big") / 0xFFFF
        self._schedule_ping(now)

    def _send_logout(self, now: float) -> None:
        me = self._store.get_creds().me
        assert me is not None and self._logout_deadline is not None  # checked by logout()
        iq_id = self._query(stanzas.remove_companion_device(me.id), _Iq.LOGOUT, now)
        self._pending[iq_id].deadline = self._logout_deadline

    def _upload_pre_keys(self, count: int, server_count: int, now: float) -> None:
        if self._uploading_pre_keys:
            return
        batch = prekeys.prepare_pre_keys(self._store, count, self._rand)
        self._uploading_pre_keys = True
        iq_id = self._query(prekeys.upload_stanza(self._store, batch), _Iq.PRE_KEY_UPLOAD, now)
        self._pending[iq_id].batch = batch
        self._pending[iq_id].server_count = server_count

    def _on_encrypt_notification(self, node: Node, now: float) -> None:
        """``<notification type="encrypt"><count value=N/>``: the server's pre-key stock ran low."""
        count = stanzas.count_value(node)
        if self._state is ClientState.OPEN and count is not None and count < self._config.min_pre_key_count:
            self._upload_pre_keys(self._config.upload_pre_key_count, count, now)

    def _schedule_ping(self, now: float) -> None:
        spread = self._config.keepalive_max_s - self._config.keepalive_min_s
        fraction = int.from_bytes(self._rand(2), "big") / 0xFFFF
        self._next_ping_at = now + self._config.keepalive_min_s + spread * fraction

    def _send_ping(self, now: float) -> None:
        iq_id = self._query(stanzas.ping(), _Iq.PING, now)
        self._pending[iq_id].deadline = now + self._config.ping_timeout_s
        self._schedule_ping(now)

    # ------------------------------------------------------------------------------ pairing

    def _on_pair_device(self, node: Node, now: float) -> None:
        if self.is_registered:
            raise MessageFormatError("pair-device sent to an already linked device")
        first = self._state is ClientState.AUTHENTICATING
        self._transition(Trigger.PAIR_DEVICE)
        self._handshake_deadline = None
        self._send(stanzas.iq_result(node))
        self._qr_refs = linking.pair_device_refs(node)
        if first:
            self._qr_shown = 0
            self._schedule_ping(now)
            if self._pairing_by_code:
                try:
                    self._pairing_phone = linking.phone_digits(self._config.pairing_phone_number or "")
                except PairingError as exc:
                    self._close(close_info(CloseReason.PAIRING_FAILED, detail=str(exc)))
                    return
                self._request_pairing_code(self._pairing_phone, now)
        self._show_next_qr(now)

    def _show_next_qr(self, now: float) -> None:
        """Rotate to the next ref; the refs also pace the pairing window when pairing by code."""
        if not self._qr_refs:
            self._close(close_info(CloseReason.PAIRING_EXPIRED, detail="all pairing refs expired"))
            return
        ref = self._qr_refs.pop(0)
        ttl = self._config.first_qr_ttl_s if self._qr_shown == 0 else self._config.next_qr_ttl_s
        self._qr_expires_at = now + ttl
        self._qr_shown += 1
        if not self._pairing_by_code:
            qr = linking.qr_text(ref, self._store.get_creds(), self._config.device)
            self._events.append(QrCodeShown(qr, self._qr_shown, self._qr_expires_at))

    def _request_pairing_code(self, phone: str, now: float) -> None:
        self._store.update_creds({"pairingCode": pairing.generate_pairing_code(self._rand)})
        creds = self._store.get_creds()
        code = creds.pairing_code or ""
        hello = linking.companion_hello(phone, code, creds, self._config.device, self._rand)
        self._query(hello, _Iq.LINK_CODE_HELLO, now)

    def _on_link_code_notification(self, node: Node, now: float) -> None:
        if self._state is not ClientState.PAIRING or self._pairing_phone is None:
            return
        finish = linking.companion_finish(
            node, phone=self._pairing_phone, expected_ref=self._link_code_ref, creds=self._store.get_creds(),
            rand=self._rand,
        )
        self._store.update_creds({"advSecretKey": finish.adv_secret_b64})  # critical: persisted before sending
        self._query(finish.request, _Iq.LINK_CODE_FINISH, now)

    def _on_pair_success(self, node: Node) -> None:
        if self._state is not ClientState.PAIRING:
            raise MessageFormatError(f"pair-success in state {self._state.value}")
        try:
            outcome = linking.pair_success(node, self._store.get_creds(), self._rand)
        except PairingError as exc:
            text = linking.pair_error_text(exc)
            self._send(stanzas.iq_error(node.attrs.get("id", ""), 401, text))
            self._close(close_info(CloseReason.PAIRING_FAILED, detail=text))
            return
        self._store.update_creds(outcome.creds_changes)  # critical: persisted before the reply goes out
        self._send(outcome.reply)
        self._transition(Trigger.PAIR_SUCCESS)
        self._qr_expires_at = None
        self._events.append(Paired(outcome.jid, outcome.lid, outcome.platform, outcome.business_name))

    # ------------------------------------------------------------------------------ other stanzas

    def _on_ib(self, node: Node) -> None:
        for child in node.children():
            if child.tag == "downgrade_webclient":
                self._close(close_info(CloseReason.MULTIDEVICE_MISMATCH, detail="downgrade_webclient"))
                return
            if child.tag == "offline_preview":
                self._send(stanzas.offline_batch())
            elif child.tag == "offline":
                count = child.attrs.get("count", "0")
                self._events.append(OfflineSyncDone(int(count) if count.isdigit() else 0))
            elif child.tag == "edge_routing":
                routing = child.child_bytes("routing_info")
                if routing:
                    self._store.update_creds({"routingInfo": routing})

    def _on_message(self, node: Node, now: float) -> None:
        """Decrypt (``inbound``); a decrypted or finally undecryptable message waits for the caller's
        ``ack_message``, a duplicate is acked with 487, any other failure gets a retry receipt.

        Also before ``<success>`` on a login (WhatsApp sends none then, a server that lets a stanza
        overtake it does): dropped, it would stay unacknowledged on this socket for good."""
        if self._state is not ClientState.OPEN and not (
                self._state is ClientState.AUTHENTICATING and self.is_registered):
            return
        message = stanzas.incoming_message(node)
        me = self._store.get_creds().me
        if me is None:
            raise MessageFormatError("message before the account is linked")
        outcome = decrypt_message(self._signal, message, Jid.parse(me.id), _jid_or_none(me.lid))
        if isinstance(outcome, DecryptedMessage):
            self._retries.settled(message.id, message.author)
            self._events.append(MessageDecrypted(outcome))
        elif outcome.reason is FailureReason.DUPLICATE:
            # Baileys: "Key used already" is acked with 487; the event went out when it first decrypted
            # (the Signal state that consumed the key is only persisted after its event was accepted).
            self._retries.settled(message.id, message.author)
            self._send(receipts.nack(node, self._me_id(), receipts.DUPLICATE))
            self._events.append(DuplicateIgnored(message))
        else:
            self._retry(outcome, now)

    def _retry(self, failure: DecryptFailure, now: float) -> None:
        count = self._retries.failed(failure, now)
        if count is None:
            self._events.append(MessageUndecryptable(failure, retries=self._retries.max_retries))
            return
        creds = self._store.get_creds()
        keys = None
        if count >= 2 and creds.account is not None:
            # A fresh pre-key is written to the store (a critical change): the driver persists it
            # before the receipt carrying it leaves.
            keys = receipts.retry_keys(self._store, self._rand, device_identity(creds.account))
        self._send(receipts.retry_receipt(failure.incoming, count, creds.registration_id, keys=keys))
        self._send(receipts.nack(failure.incoming.node, self._me_id(), receipts.FAILURE))
        self._events.append(RetryRequested(failure, count))

    def _me_id(self) -> str | None:
        me = self._store.get_creds().get("me")
        me_id = me.get("id") if isinstance(me, dict) else None
        return me_id if isinstance(me_id, str) else None

    def _ack_for(self, node: Node) -> Node:
        return stanzas.ack_for(node, self._me_id())

    # ------------------------------------------------------------------------------ output

    def _flush_outbound(self) -> None:
        """Queue what the send flow wants sent, a critical ``CredsChanged`` ahead of any ciphertext."""
        assert self._outbound is not None
        out = self._outbound.outgoing()
        if any(item.signal_changed for item in out):
            self._events.append(CredsChanged(kind="critical", categories=SEND_STATE_CATEGORIES))
        for item in out:
            self._send(item.node)
        self._events.extend(self._outbound.statuses())

    def _next_id(self) -> str:
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter}"

    def _query(self, node: Node, kind: _Iq, now: float) -> str:
        iq_id = node.attrs.get("id") or self._next_id()
        node.attrs["id"] = iq_id
        self._pending[iq_id] = _Pending(kind=kind, deadline=now + self._config.iq_timeout_s)
        self._send(node)
        return iq_id

    def _send(self, node: Node) -> None:
        if self._transport is None or self._state is ClientState.CLOSED:
            return
        self._outgoing.append(encode_frame(self._transport.encrypt(encode_node(node))))


def _jid_or_none(text: str | None) -> Jid | None:
    if not text:
        return None
    try:
        return Jid.parse(text)
    except JidError:
        return None
