"""Each simulated phone is a Signal party of its own (its primary device, 0), on keeper's Signal layer
(``connector.protocol.signal.SignalRepository`` over a ``shared.authstore.MemoryAuthStore``) and the
client's message codec (``connector.protocol.wamessage``, ``padding``, ``message_stanzas``).

- What the server delivers to device 0 (``simulator.core.offline``) is decrypted here: the pairwise
  ``pkmsg``/``msg`` first (a sender key distribution in it is taken in), then the ``skmsg``; the text
  goes to the phone's inbox, the message leaves its queue and the sender gets a delivery receipt.
  A message that does not decrypt is listed as ``undecryptable`` and answered with a retry receipt
  to the sending device (at most 5), whose resend replaces it.
- ``send`` encrypts a text for every device of a contact (and, as ``deviceSentMessage``, for the
  phone's own companions) or for a group (sender key, distributed pairwise to the devices that do
  not have it yet), building sessions from the bundles the server holds, and relays the stanza as
  if device 0 had sent it (``simulator.core.messages.relay_from``).
- ``mark_read`` sends read receipts for received messages.

The phone addresses everyone by LID, as Baileys 7 does; PN forms are mapped from the ``sender_lid``
/ ``participant_pn`` attributes of what it receives. Its Signal state is kept in
``Phone.signal_state`` (canonical auth-state text) so a restarted simulator keeps its sessions.
"""

from __future__ import annotations

import logging
from typing import Any

from connector.protocol.binary import Jid, Node
from connector.protocol.errors import ProtocolError
from connector.protocol.message_ids import new_message_id
from connector.protocol.message_stanzas import DeviceCiphertext
from connector.protocol.padding import pad, unpad
from connector.protocol.signal.errors import DuplicateMessageError, SignalError
from connector.protocol.signal.repository import SignalRepository
from connector.protocol.signal.types import DOMAIN_LID, PreKeyBundle, SignalAddress
from connector.protocol.wamessage import decode_message
from connector.protocol.wamessage_encode import device_sent_message, sender_key_distribution_message, text_message
from shared.authstate import AuthState, Credentials, SignedKeyPair, StoredKeyPair
from shared.authstore import MemoryAuthStore
from shared.snapshot import canonical_state_bytes, parse_state
from simulator import crypto
from simulator.core import bundles, offline, receipts
from simulator.core.actions import Action
from simulator.core.context import Context
from simulator.core.messages import Origin, relay_from
from simulator.core.phones import ensure_primary
from simulator.errors import InvalidRequestError
from simulator.state import GROUP_SERVER, LID_SERVER, USER_SERVER, Phone

log = logging.getLogger(__name__)

PRE_KEY = "pre-key"
MAX_RETRIES = 5  # Baileys' and whatsmeow's limit of retry receipts per message
_ALT_ATTRS = ("sender_lid", "sender_pn", "participant_pn", "participant_lid")


class PhoneParties:
    """The phones' Signal parties, made on first use. Installs itself as the phone's receiver."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._repos: dict[str, tuple[MemoryAuthStore, SignalRepository]] = {}
        self._retries: dict[tuple[str, str], int] = {}  # (phone, message id) -> retry receipts sent
        ctx.phone_received = self.received

    # ------------------------------------------------------------------ the phone's Signal store

    def _repo(self, phone: Phone) -> SignalRepository:
        entry = self._repos.get(phone.user)
        if entry is None:
            state = parse_state(phone.signal_state.encode()) if phone.signal_state else self._new_state(phone)
            store = MemoryAuthStore(state)
            repo = SignalRepository(store, random_bytes=self._ctx.random,
                                    now_ms=lambda: int(self._ctx.clock() * 1000))
            repo.store_lid_mapping(phone.user, phone.lid_user)  # its own companions write either form
            entry = self._repos[phone.user] = (store, repo)
        store, repo = entry
        primary = ensure_primary(self._ctx, phone)
        if primary.pre_key_privates:  # pre-keys the phone published since: their private halves
            store.set_keys({PRE_KEY: {
                str(key_id): StoredKeyPair(public=crypto.x25519_public(private), private=private).to_json()
                for key_id, private in primary.pre_key_privates.items()}})
            primary.pre_key_privates.clear()
        return repo

    def _new_state(self, phone: Phone) -> AuthState:
        primary = ensure_primary(self._ctx, phone)
        spk = primary.signed_pre_key
        creds = Credentials.generate(self._ctx.random).updated({
            "signedIdentityKey": StoredKeyPair(public=phone.identity_public, private=phone.identity_private).to_json(),
            "signedPreKey": SignedKeyPair(StoredKeyPair(public=spk.public, private=primary.signed_pre_key_private),
                                          spk.signature, spk.key_id).to_json(),
            "registrationId": primary.registration_id,
            "registered": True,
        })
        return AuthState(creds)

    def _save(self, phone: Phone) -> None:
        store, _ = self._repos[phone.user]
        phone.signal_state = canonical_state_bytes(store.snapshot()).decode()
        self._ctx.on_change()

    # ------------------------------------------------------------------ receiving

    def received(self, phone: Phone, node: Node) -> list[Action]:
        if node.tag == "receipt":
            self._receipt(phone, node)
            return []
        if node.tag != "message":  # a group change: the phone reads groups from the state itself
            offline.confirm(self._ctx, phone, 0, node.tag, [node.attrs.get("id", "")])
            return []
        repo = self._repo(phone)
        from_text = node.attrs.get("from", "")
        group = from_text if from_text.endswith("@" + GROUP_SERVER) else None
        author_text = node.attrs.get("participant", "") if group else from_text
        try:
            author = Jid.parse(author_text)
            self._learn_mapping(repo, author, node)
            sender = SignalAddress.from_jid(author)
            text, chat = self._open(repo, sender, group, node)
        except DuplicateMessageError:
            # a copy it has read already (as Baileys: acknowledged with 487, no retry)
            offline.confirm(self._ctx, phone, 0, "message", [node.attrs.get("id", "")])
            return []
        except (ProtocolError, SignalError, ValueError) as exc:
            log.info("phone %s could not decrypt message %s: %s", phone.user, node.attrs.get("id"), exc)
            self._save_if_known(phone)
            self._record(phone, node, author_text, group or author_text, None, error=type(exc).__name__,
                         from_me=False)
            return self._retry(phone, node, group, author_text)
        self._retries.pop((phone.user, node.attrs.get("id", "")), None)
        self._save(phone)
        offline.confirm(self._ctx, phone, 0, "message", [node.attrs.get("id", "")])
        if node.attrs.get("category") == "peer":
            return []  # a companion's request to its own phone (a placeholder resend): nothing to list
        own = author.user in (phone.user, phone.lid_user)
        if text is not None:  # protocol messages (a sender key alone, a revoke, ...) are not listed
            self._record(phone, node, author_text, group or chat or _account(author), text, from_me=own)
        attrs = {"id": node.attrs.get("id", ""), "to": group or _account(author)}
        if group:
            attrs["participant"] = author_text
        receipt = Node("receipt", attrs)
        return receipts.route(self._ctx, phone, 0, receipt, to_text=attrs["to"], kind=None)

    def _retry(self, phone: Phone, node: Node, group: str | None, author: str) -> list[Action]:
        """Ask the sender's device to encrypt the message again (a retry receipt, as Baileys and
        whatsmeow send; at most ``MAX_RETRIES``), and let the undecryptable copy go: the resend
        replaces it."""
        message_id = node.attrs.get("id", "")
        offline.confirm(self._ctx, phone, 0, "message", [message_id])
        key = (phone.user, message_id)
        count = self._retries.get(key, 0) + 1
        if count > MAX_RETRIES:
            return []
        self._retries[key] = count
        primary = ensure_primary(self._ctx, phone)
        attrs = {"id": message_id, "to": group or author, "type": "retry"}
        if group:
            attrs["participant"] = author
        retry = Node("retry", {"count": str(count), "id": message_id, "t": node.attrs.get("t", "0"), "v": "1",
                               "error": "0"})
        registration = Node("registration", {}, primary.registration_id.to_bytes(4, "big"))
        receipt = Node("receipt", attrs, [retry, registration])
        return receipts.route(self._ctx, phone, 0, receipt, to_text=attrs["to"], kind="retry")

    def _save_if_known(self, phone: Phone) -> None:
        if phone.user in self._repos:
            self._save(phone)

    def _learn_mapping(self, repo: SignalRepository, author: Jid, node: Node) -> None:
        for name in _ALT_ATTRS:
            alt_text = node.attrs.get(name)
            if not alt_text:
                continue
            alt = Jid.parse(alt_text)
            pn, lid = (author, alt) if author.server == USER_SERVER else (alt, author)
            if pn.server == USER_SERVER and lid.server == LID_SERVER:
                repo.store_lid_mapping(pn.user, lid.user)

    def _open(self, repo: SignalRepository, sender: SignalAddress, group: str | None,
              node: Node) -> tuple[str | None, str | None]:
        """Decrypt the stanza's payloads in order; returns the text and, for a copy of the phone's
        own companion's message, the chat it went to."""
        text: str | None = None
        chat: str | None = None
        for enc in node.children("enc"):
            kind = enc.attrs.get("type")
            data = enc.content if isinstance(enc.content, bytes) else b""
            if kind in ("pkmsg", "msg"):
                decoded = decode_message(unpad(repo.decrypt(sender, kind, data)))  # type: ignore[arg-type]
                distribution = decoded.sender_key_distribution
                if distribution is not None:
                    repo.process_sender_key_distribution(group or distribution.group_id, sender,
                                                         distribution.axolotl_message)
                if decoded.device_sent is not None:
                    chat = decoded.device_sent.destination_jid
            elif kind == "skmsg" and group is not None:
                decoded = decode_message(unpad(repo.group_decrypt(group, sender, data)))
            else:
                continue
            text = decoded.text if decoded.text is not None else text
        return text, chat

    def _record(self, phone: Phone, node: Node, author: str, chat: str, text: str | None, *,
                from_me: bool, error: str | None = None) -> None:
        """Keep what arrived; ``from_me``: one of the phone's own companions sent it (to ``chat``)."""
        message_id = node.attrs.get("id", "")
        phone.inbox[:] = [m for m in phone.inbox if not (m["id"] == message_id and "read" in m)]
        entry: dict[str, Any] = {"id": message_id, "fromMe": from_me, "chat": chat, "author": author,
                                 "t": int(node.attrs.get("t", "0")), "text": text, "read": from_me}
        if error is not None:
            entry["undecryptable"] = error
        phone.inbox.append(entry)
        self._ctx.on_change()

    def _receipt(self, phone: Phone, node: Node) -> None:
        offline.confirm(self._ctx, phone, 0, "receipt", [node.attrs.get("id", "")],
                        peer=node.attrs.get("from"), participant=node.attrs.get("participant"))
        status = "read" if node.attrs.get("type") in ("read", "read-self") else "delivered"
        for entry in phone.inbox:
            if entry["fromMe"] and entry["id"] == node.attrs.get("id") and entry.get("status") != "read":
                entry["status"] = status
                self._ctx.on_change()

    # ------------------------------------------------------------------ sending

    def send(self, phone: Phone, to: str, text: str) -> tuple[str, list[Action]]:
        """The phone's owner sends ``text`` to a phone number or a group JID; returns the message id."""
        if not text:
            raise InvalidRequestError("text must not be empty")
        ctx = self._ctx
        repo = self._repo(phone)
        now = int(ctx.clock())
        message_id = new_message_id(now, phone.user, ctx.random)
        plaintext = text_message(text)
        if to.endswith("@" + GROUP_SERVER):
            group = ctx.state.group(to)
            if phone.user not in group.participants:
                raise InvalidRequestError(f"{phone.user} is not a member of {group.jid}")
            node, actions = self._group_stanza(phone, repo, group.jid, sorted(group.participants),
                                               message_id=message_id, plaintext=plaintext)
            chat = group.jid
        else:
            contact = ctx.state.phone(to)
            if contact.user == phone.user:
                raise InvalidRequestError("a phone cannot message itself here")
            others = [(contact, d) for d in contact.device_ids()]
            own = [(phone, d) for d in sorted(phone.devices)]
            actions = []
            copies = self._encrypt(repo, others, pad(plaintext, ctx.random), actions)
            copies += self._encrypt(repo, own, pad(device_sent_message(plaintext, contact.jid), ctx.random),
                                    actions)
            node = _primary_stanza(message_id, Jid(contact.user, USER_SERVER), copies)
            chat = contact.jid
        self._save(phone)
        phone.inbox.append({"id": message_id, "fromMe": True, "chat": chat, "author": phone.jid, "t": now,
                            "text": text, "status": "sent"})
        ctx.on_change()
        return message_id, [*actions, *relay_from(ctx, Origin(phone, 0, None), node)]

    def _group_stanza(self, phone: Phone, repo: SignalRepository, group_jid: str, members: list[str], *,
                      message_id: str, plaintext: bytes) -> tuple[Node, list[Action]]:
        ctx = self._ctx
        me = SignalAddress(user=phone.lid_user, device=0, domain=DOMAIN_LID)
        skmsg, skdm = repo.group_encrypt(group_jid, me, pad(plaintext, ctx.random))
        have = repo.sender_key_devices(group_jid)
        targets = [(ctx.state.phones[user], d) for user in members if user in ctx.state.phones
                   for d in ctx.state.phones[user].device_ids() if (user, d) != (phone.user, 0)]
        missing = [(p, d) for p, d in targets if str(_lid_device(p, d)) not in have]
        actions: list[Action] = []
        distribution = pad(sender_key_distribution_message(group_jid, skdm), ctx.random)
        copies = self._encrypt(repo, missing, distribution, actions)
        repo.mark_sender_key_devices(group_jid, [str(_lid_device(p, d)) for p, d in missing])
        node = _primary_stanza(message_id, Jid.parse(group_jid), copies, skmsg=skmsg)
        return node, actions

    def _encrypt(self, repo: SignalRepository, devices: list[tuple[Phone, int]], plaintext: bytes,
                 actions: list[Action]) -> list[DeviceCiphertext]:
        """One ciphertext per device, building a session from the device's bundle where there is none."""
        wanted: dict[SignalAddress, PreKeyBundle | None] = {}
        jids: dict[SignalAddress, Jid] = {}
        for contact, device_id in devices:
            jid = _lid_device(contact, device_id)
            address = SignalAddress.from_jid(jid)
            bundle = None
            if not repo.has_session(address):
                bundle, more = bundles.bundle_for(self._ctx, contact, device_id)
                actions += more
            wanted[address], jids[address] = bundle, jid
        if not wanted:
            return []
        encrypted = repo.encrypt_for(plaintext, wanted)
        return [DeviceCiphertext(jids[a], kind, data) for a, (kind, data) in encrypted.items()]

    # ------------------------------------------------------------------ reading

    def mark_read(self, phone: Phone, ids: list[str] | None) -> tuple[int, list[Action]]:
        """Read receipts for received messages (all unread ones when ``ids`` is None)."""
        actions: list[Action] = []
        count = 0
        for entry in phone.inbox:
            if entry["fromMe"] or entry["read"] or (ids is not None and entry["id"] not in ids):
                continue
            entry["read"] = True
            count += 1
            group = entry["chat"] if entry["chat"].endswith("@" + GROUP_SERVER) else None
            author = Jid.parse(entry["author"])
            attrs = {"id": entry["id"], "to": group or _account(author), "type": "read"}
            if group:
                attrs["participant"] = entry["author"]
            actions += receipts.route(self._ctx, phone, 0, Node("receipt", attrs), to_text=attrs["to"], kind="read")
        self._ctx.on_change()
        return count, actions


def _primary_stanza(message_id: str, to: Jid, copies: list[DeviceCiphertext], *, skmsg: bytes | None = None) -> Node:
    """The ``<message>`` a primary device sends. Unlike a companion's (``message_stanzas``) it has no
    ``<device-identity>``: the primary is the account and has no ADV identity to show."""
    content: list[Node] = []
    if skmsg is not None:
        content.append(Node("enc", {"v": "2", "type": "skmsg"}, skmsg))
    if copies:
        content.append(Node("participants", {}, [
            Node("to", {"jid": str(c.device)}, [Node("enc", {"v": "2", "type": c.type}, c.ciphertext)])
            for c in copies]))
    attrs = {"id": message_id, "to": str(to), "type": "text"}
    if skmsg is not None:
        attrs["addressing_mode"] = "lid"
    return Node("message", attrs, content)


def _lid_device(phone: Phone, device_id: int) -> Jid:
    return Jid(phone.lid_user, LID_SERVER, device_id or None)


def _account(jid: Jid) -> str:
    return f"{jid.user}@{jid.server}"

