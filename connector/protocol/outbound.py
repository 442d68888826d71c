"""Sending messages: one send's way from a request to the server's ack, and what recipients report back.

::

    SendRequest ─► [group: w:g2 metadata] ─► usync device lists ─► [encrypt iq: bundles for the
    devices without a session] ─► encrypt per device ─► <message> ─► <ack class=message> ─► sent | failed
    <receipt> (delivery, read) from a recipient ─────────────────────────────► delivered, read
    <receipt type=retry> from a device ─► [build a session from its keys | fetch a fresh bundle]
                                      ─► re-encrypt for that device only ─► resend

:class:`Outbound` is the send side of one connection, sans I/O: the client hands it requests and the
stanzas addressed to it (:meth:`Outbound.handle`), takes the stanzas it wants sent
(:meth:`Outbound.outgoing`) and the :class:`SendStatus` reports (:meth:`Outbound.statuses`), and calls
:meth:`Outbound.tick` by :meth:`Outbound.next_deadline`. Iq ids come from the client's counter.

- 1:1: the recipient's devices get the Message, our own other devices a ``deviceSentMessage`` copy
  naming the chat (SIGNAL.md section 5, Baileys ``relayMessage``).
- Groups: the Message is encrypted once with our sender key (``skmsg``); the devices of the members
  that are not in the sender-key memory get the SKDM pairwise and are then remembered; ``phash``
  names every device the message is for (ours included).
- Encrypted bytes are always preceded by the Signal state that produced them: every stanza carrying
  ciphertext is queued with ``signal_changed=True`` (:meth:`Outbound.outgoing`), and the client turns
  that into a critical ``CredsChanged`` so the driver persists the state before the bytes leave.
- What was sent is kept (:class:`SentLog`, bounded by age and count) so a retry receipt can be answered
  with the same plaintext: from the keys it carries, or from a fresh bundle (``reason="identity"``)
  when it has none and we hold no session or it is a second try (SIGNAL.md section 4).

Statuses only move forward (``sent`` < ``delivered`` < ``read``), except that ``sent`` is reported
once for every send, even when a recipient's receipt overtook the server's ack (our own devices'
receipts are not a recipient's). ``failed`` ends a send that got no server ack, with a reason slug:
``server_error_<code>`` (an error ack), ``<step>_timeout``, ``<step>_refused_<code>`` or
``<step>_malformed`` (steps ``group_metadata``, ``devices``, ``bundles``, ``server_ack``),
``no_devices``, ``encryption_failed``. Message text never reaches a log or an error message here.
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from connector.protocol.binary import GROUP_SERVER, Jid, Node
from connector.protocol.bundles import BundleRequest, bundle_query, parse_bundles
from connector.protocol.crypto import RandomSource
from connector.protocol.errors import IqError, MessageFormatError, ProtocolError
from connector.protocol.group_metadata import group_metadata_query, parse_group_members
from connector.protocol.message_ids import participant_hash
from connector.protocol.message_stanzas import (
    DeviceCiphertext,
    ResendTarget,
    outgoing_message,
    resend_message,
    stanza_types,
)
from connector.protocol.padding import pad
from connector.protocol.receipts import READ_TYPES, Receipt, parse_receipt, parse_server_ack
from connector.protocol.send_status import SendStatus, Status
from connector.protocol.signal.errors import SignalError
from connector.protocol.signal.repository import SignalRepository
from connector.protocol.signal.types import PreKeyBundle, SignalAddress
from connector.protocol.usync import device_list_query, message_devices, parse_device_list
from connector.protocol.wamessage import decode_message
from connector.protocol.wamessage_encode import device_sent_message, sender_key_distribution_message

MAX_RESENDS: Final = 5
"""Retry receipts answered per message and device (Baileys and whatsmeow stop at 5)."""
KEEP_SENT_S: Final = 24 * 3600.0
KEEP_SENT_MAX: Final = 1000


@dataclass(frozen=True, slots=True)
class SendRequest:
    """One message to send: its id (fixed when the send was accepted), the chat (a user or a group
    JID), and the serialized WhatsApp ``Message`` (``wamessage_encode``)."""

    message_id: str
    to: Jid
    message: bytes = field(repr=False)

    @property
    def is_group(self) -> bool:
        return self.to.server == GROUP_SERVER


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A stanza to send; ``signal_changed``: the Signal state that produced its ciphertext must be
    durable before it leaves."""

    node: Node
    signal_changed: bool = False


@dataclass(slots=True)
class _Sent:
    request: SendRequest
    at: float
    timestamp: int | None = None
    status: Status = Status.PENDING
    acked: bool = False  # the server's ack came (it may come after a recipient's receipt)
    skdm: bytes | None = field(default=None, repr=False)
    resends: collections.Counter[str] = field(default_factory=collections.Counter)


class SentLog:
    """The sends of one account kept for retry receipts: at most ``max_count``, none older than
    ``keep_s``. Kept across connections (the client is made anew for each)."""

    def __init__(self, *, keep_s: float = KEEP_SENT_S, max_count: int = KEEP_SENT_MAX) -> None:
        self._keep_s = keep_s
        self._max = max_count
        self._sent: collections.OrderedDict[str, _Sent] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._sent)

    def add(self, entry: _Sent) -> None:
        self._sent[entry.request.message_id] = entry
        self._sent.move_to_end(entry.request.message_id)
        while len(self._sent) > self._max:
            self._sent.popitem(last=False)

    def get(self, message_id: str, now: float) -> _Sent | None:
        self.expire(now)
        return self._sent.get(message_id)

    def expire(self, now: float) -> None:
        while self._sent:
            first = next(iter(self._sent.values()))
            if now - first.at < self._keep_s:
                break
            self._sent.popitem(last=False)


class _Step(enum.Enum):
    GROUP = "group_metadata"
    DEVICES = "devices"
    BUNDLES = "bundles"
    ACK = "server_ack"
    RESEND_BUNDLE = "retry_bundle"


class _NoRecipient(Exception):
    """The chat has no device we can encrypt for."""


@dataclass(slots=True)
class _Flow:
    """One send (or one resend) waiting on the server."""

    step: _Step
    deadline: float
    request: SendRequest
    devices: list[Jid] = field(default_factory=list)
    receipt: Receipt | None = None  # a resend: the retry receipt it answers
    lid_group: bool = False  # the group addresses its members by LID: so do we, as the sender


class Outbound:
    """The send side of one connection (module docstring)."""

    def __init__(self, signal: SignalRepository, me: Jid, my_lid: Jid | None, *, device_identity: bytes,
                 rand: RandomSource, next_id: Callable[[], str], iq_timeout_s: float = 20.0,
                 ack_timeout_s: float = 20.0, sent: SentLog | None = None) -> None:
        self._signal = signal
        self._me = me
        self._my_lid = my_lid
        self._device_identity = device_identity
        self._rand = rand
        self._next_id = next_id
        self._iq_timeout_s = iq_timeout_s
        self._ack_timeout_s = ack_timeout_s
        self._sent = sent if sent is not None else SentLog()
        self._waiting: dict[str, _Flow] = {}  # by iq id, or by message id while awaiting the ack
        self._out: list[Outgoing] = []
        self._statuses: list[SendStatus] = []

    # ------------------------------------------------------------------------------ surface

    def send(self, request: SendRequest, now: float) -> None:
        """Start a send; its outcome comes as :class:`SendStatus` (``sent`` or ``failed``)."""
        if not request.message_id:
            raise MessageFormatError("a send needs its message id")
        decode_message(request.message)  # a malformed Message fails here, before anything is sent
        self._sent.add(_Sent(request, now))
        if request.is_group:
            self._query(group_metadata_query(request.to), _Flow(_Step.GROUP, 0.0, request), now)
        else:
            self._query_devices([request.to, self._me], _Flow(_Step.DEVICES, 0.0, request), now)

    def handle(self, node: Node, now: float) -> bool:
        """Take an ``iq`` answer, ``ack`` or ``receipt`` meant for a send; False when it is not ours.
        A receipt is only read here: the client acks it as it acks every receipt."""
        if node.tag == "iq" and node.attrs.get("type") in ("result", "error"):
            flow = self._waiting.get(node.attrs.get("id", ""))
            if flow is None or flow.step is _Step.ACK:
                return False
            del self._waiting[node.attrs["id"]]
            try:
                self._on_answer(flow, node, now)
            except _NoRecipient:
                self._fail(flow, "no_devices")
            except IqError as exc:
                self._fail(flow, f"{flow.step.value}_refused" + (f"_{exc.code}" if exc.code is not None else ""))
            except ProtocolError:
                self._fail(flow, f"{flow.step.value}_malformed")
            except SignalError:
                self._fail(flow, "encryption_failed")
            return True
        if node.tag == "ack" and node.attrs.get("class") == "message":
            flow = self._waiting.get(node.attrs.get("id", ""))
            if flow is None or flow.step is not _Step.ACK:
                return False
            del self._waiting[node.attrs["id"]]
            self._on_ack(flow, node)
            return True
        if node.tag == "receipt":
            return self._on_receipt(node, now)
        return False

    def tick(self, now: float) -> None:
        for key, flow in list(self._waiting.items()):
            if now >= flow.deadline:
                del self._waiting[key]
                self._fail(flow, f"{flow.step.value}_timeout")
        self._sent.expire(now)

    def next_deadline(self) -> float | None:
        return min((flow.deadline for flow in self._waiting.values()), default=None)

    def outgoing(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def statuses(self) -> list[SendStatus]:
        out, self._statuses = self._statuses, []
        return out

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    # ------------------------------------------------------------------------------ the send

    def _on_answer(self, flow: _Flow, node: Node, now: float) -> None:
        if flow.step is _Step.GROUP:
            members = parse_group_members(node)
            lid_group = members.addressing_mode == "lid" and self._my_lid is not None
            me = self._sender_jid(lid_group)
            users = list(dict.fromkeys([*members.participants, me.without_device()]))
            self._query_devices(users, _Flow(_Step.DEVICES, 0.0, flow.request, lid_group=lid_group), now)
        elif flow.step is _Step.DEVICES:
            devices = message_devices(parse_device_list(node), self._me, self._my_lid)
            if not flow.request.is_group and not any(not self._is_mine(d) for d in devices):
                raise _NoRecipient
            flow.devices = devices
            self._fetch_missing(flow, now)
        elif flow.step is _Step.BUNDLES:
            bundles = {f.device: f.bundle for f in parse_bundles(node) if f.bundle is not None}
            self._encrypt_and_send(flow, bundles, now)
        elif flow.step is _Step.RESEND_BUNDLE:
            assert flow.receipt is not None
            fetched = [f.bundle for f in parse_bundles(node) if f.bundle is not None]
            if not fetched:
                return  # no bundle for the device: nothing to resend with (it asks again)
            self._resend(flow.request, flow.receipt, fetched[0], now)

    def _fetch_missing(self, flow: _Flow, now: float) -> None:
        needs = self._pairwise_devices(flow)
        missing = [d for d in needs if not self._signal.has_session(SignalAddress.from_jid(d))]
        if missing:
            flow.step = _Step.BUNDLES
            self._query(bundle_query([BundleRequest(d) for d in missing]), flow, now)
        else:
            self._encrypt_and_send(flow, {}, now)

    def _pairwise_devices(self, flow: _Flow) -> list[Jid]:
        if not flow.request.is_group:
            return flow.devices
        has_key = self._signal.sender_key_devices(str(flow.request.to))
        return [d for d in flow.devices if str(d) not in has_key]

    def _encrypt_and_send(self, flow: _Flow, bundles: dict[Jid, PreKeyBundle], now: float) -> None:
        request = flow.request
        # A device without a session and no bundle (the server had none) is left out, as Baileys does.
        reachable = [d for d in self._pairwise_devices(flow)
                     if d in bundles or self._signal.has_session(SignalAddress.from_jid(d))]
        message_type, media_type = stanza_types(decode_message(request.message).content)
        copies: list[DeviceCiphertext] = []
        phash: str | None = None
        group_ciphertext: bytes | None = None
        if request.is_group:
            group = str(request.to)
            sender = self._sender_jid(flow.lid_group)
            me = SignalAddress.from_jid(sender)
            group_ciphertext, skdm = self._signal.group_encrypt(group, me, pad(request.message, self._rand))
            entry = self._sent.get(request.message_id, now)
            if entry is not None:
                entry.skdm = skdm
            if reachable:
                carrier = sender_key_distribution_message(group, skdm)
                copies = self._encrypt(carrier, reachable, bundles)
                self._signal.mark_sender_key_devices(group, [str(d) for d in reachable])
            phash = participant_hash([*flow.devices, sender])
        else:
            theirs = [d for d in reachable if not self._is_mine(d)]
            mine = [d for d in reachable if self._is_mine(d)]
            if not theirs:
                raise _NoRecipient
            copies = self._encrypt(request.message, theirs, bundles)
            if mine:
                copies += self._encrypt(device_sent_message(request.message, str(request.to)), mine, bundles)
        stanza = outgoing_message(request.message_id, request.to, message_type, copies,
                                  group_ciphertext=group_ciphertext, device_identity=self._device_identity,
                                  phash=phash, media_type=media_type)
        self._out.append(Outgoing(stanza, signal_changed=True))
        self._waiting[request.message_id] = _Flow(_Step.ACK, now + self._ack_timeout_s, request)

    def _encrypt(self, plaintext: bytes, devices: Sequence[Jid], bundles: dict[Jid, PreKeyBundle]
                 ) -> list[DeviceCiphertext]:
        targets = {SignalAddress.from_jid(d): bundles.get(d) for d in devices}
        by_address = {SignalAddress.from_jid(d): d for d in devices}
        encrypted = self._signal.encrypt_for(pad(plaintext, self._rand), targets)
        return [DeviceCiphertext(by_address[address], kind, data) for address, (kind, data) in encrypted.items()]

    def _on_ack(self, flow: _Flow, node: Node) -> None:
        try:
            ack = parse_server_ack(node)
        except MessageFormatError:
            self._fail(flow, "server_ack_malformed")
            return
        if flow.receipt is not None:
            return  # a resend's ack: the send's status does not change
        if ack.error is not None:
            self._fail(flow, f"server_error_{ack.error}")
            return
        entry = self._sent.get(flow.request.message_id, float("-inf"))
        if entry is not None:
            entry.timestamp = ack.timestamp
        self._advance(flow.request.message_id, Status.SENT, ack.timestamp)

    def _fail(self, flow: _Flow, reason: str) -> None:
        if flow.receipt is not None:
            return  # a resend that did not work: the recipient asks again, or gives up
        self._advance(flow.request.message_id, Status.FAILED, None, reason=reason)

    # ------------------------------------------------------------------------------ receipts

    def _on_receipt(self, node: Node, now: float) -> bool:
        try:
            receipt = parse_receipt(node)
        except MessageFormatError:
            return False
        if receipt.type == "retry":
            entry = self._sent.get(receipt.id, now)
            if entry is None:
                return False
            self._on_retry(entry, receipt, now)
            return True
        if receipt.type in (None, "delivery"):
            status = Status.DELIVERED
        elif receipt.type in READ_TYPES:
            status = Status.READ
        else:
            return False  # sender, inactive, played, ...: not a recipient's report
        device = receipt.participant or receipt.sender
        if self._is_mine(_user_of(device)):
            return False  # our own devices confirming their copy: not a recipient's report
        handled = False
        for message_id in receipt.ids:
            if self._sent.get(message_id, now) is not None:
                self._advance(message_id, status, receipt.timestamp, device=device)
                handled = True
        return handled

    def _on_retry(self, entry: _Sent, receipt: Receipt, now: float) -> None:
        assert receipt.retry is not None
        device_text = receipt.participant if entry.request.is_group else receipt.sender
        try:
            device = Jid.parse(device_text or "")
        except ProtocolError:
            return
        entry.resends[str(device)] += 1
        if entry.resends[str(device)] > MAX_RESENDS:
            return
        address = SignalAddress.from_jid(device)
        retry = receipt.retry
        if retry.bundle is not None:
            self._resend(entry.request, receipt, retry.bundle, now)
        elif not self._signal.has_session(address) or retry.count >= 2:
            self._signal.delete_sessions([address])
            flow = _Flow(_Step.RESEND_BUNDLE, 0.0, entry.request, devices=[device], receipt=receipt)
            self._query(bundle_query([BundleRequest(device, identity_changed=True)]), flow, now)
        else:
            self._resend(entry.request, receipt, None, now)

    def _resend(self, request: SendRequest, receipt: Receipt, bundle: PreKeyBundle | None, now: float) -> None:
        device = Jid.parse((receipt.participant if request.is_group else receipt.sender) or "")
        entry = self._sent.get(request.message_id, now)
        plaintext = request.message
        if request.is_group:
            if entry is not None and entry.skdm is not None:
                plaintext = sender_key_distribution_message(str(request.to), entry.skdm, content=request.message)
        elif self._is_mine(device):
            plaintext = device_sent_message(request.message, str(request.to))
        try:
            [copy] = self._encrypt(plaintext, [device], {device: bundle} if bundle is not None else {})
        except SignalError:
            return  # no usable session: the device asks again with count + 1 and we fetch a bundle then
        assert receipt.retry is not None
        message_type, media_type = stanza_types(decode_message(request.message).content)
        target = ResendTarget(request.message_id, receipt.sender, participant=receipt.participant,
                              recipient=receipt.recipient, group=request.is_group)
        stanza = resend_message(target, message_type, copy, receipt.retry.count,
                                timestamp=entry.timestamp if entry is not None else None,
                                device_identity=self._device_identity, media_type=media_type)
        self._out.append(Outgoing(stanza, signal_changed=True))

    # ------------------------------------------------------------------------------ helpers

    def _advance(self, message_id: str, status: Status, timestamp: int | None, *, reason: str | None = None,
                 device: str | None = None) -> None:
        entry = self._sent.get(message_id, float("-inf"))
        if entry is not None:
            if entry.status is Status.FAILED or (entry.acked and status is Status.FAILED):
                return
            if status is Status.FAILED and entry.status >= Status.DELIVERED:
                status, timestamp, reason = Status.SENT, None, None  # a recipient has it: it got through
            if status is Status.SENT:
                # Reported once, whatever came first: the server's ack settles the send, and a
                # recipient's receipt may overtake it.
                if entry.acked:
                    return
                entry.acked = True
                entry.status = max(entry.status, status)
            elif status is not Status.FAILED and status <= entry.status:
                return
            else:
                entry.status = status
        self._statuses.append(SendStatus(message_id, status, timestamp, reason, device))

    def _query_devices(self, users: Sequence[Jid], flow: _Flow, now: float) -> None:
        flow.step = _Step.DEVICES
        self._query(device_list_query(users, self._next_id()), flow, now)

    def _query(self, node: Node, flow: _Flow, now: float) -> None:
        iq_id = self._next_id()
        node.attrs["id"] = iq_id
        flow.deadline = now + self._iq_timeout_s
        self._waiting[iq_id] = flow
        self._out.append(Outgoing(node))

    def _sender_jid(self, lid: bool) -> Jid:
        """Our device JID as a group knows us: by LID in a LID-addressed group."""
        if lid and self._my_lid is not None:
            mine = self._my_lid
            return Jid(user=mine.user, server=mine.server, device=mine.device or self._me.device)
        return self._me

    def _is_mine(self, device: Jid | None) -> bool:
        if device is None:
            return False
        return device.user == self._me.user or (self._my_lid is not None and device.user == self._my_lid.user)


def _user_of(jid_text: str) -> Jid | None:
    try:
        return Jid.parse(jid_text)
    except ProtocolError:
        return None
