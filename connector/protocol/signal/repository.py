"""The Signal layer's API: what the connector and the simulator call (stable; extend, don't change).

::

    repo = SignalRepository(store, random_bytes=os.urandom, now_ms=clock_ms,
                            on_identity_change=None)       # called with the address after a change
    repo.decrypt(sender, "pkmsg" | "msg", data) -> bytes  # raw plaintext (still WhatsApp-padded)
    repo.encrypt(to, plaintext) -> ("pkmsg" | "msg", bytes)
    repo.encrypt_for(plaintext, {address: bundle_or_None}) -> {address: (kind, bytes)}
    repo.has_session(address) -> bool                     # an open session exists
    repo.build_session(address, bundle)                   # X3DH as initiator
    repo.delete_sessions(addresses)
    repo.process_sender_key_distribution(group, sender, skdm)
    repo.group_decrypt(group, sender, data) -> bytes
    repo.group_encrypt(group, me, plaintext) -> (skmsg, skdm)
    repo.sender_key_devices(group) -> frozenset[str]      # device JIDs that have our sender key
    repo.mark_sender_key_devices(group, jids); repo.clear_sender_key_memory(group)
    repo.store_lid_mapping(pn_user, lid_user)
    repo.local_bundle(pre_key_id=None) -> PreKeyBundle    # our keys, as the server hands them out

``group`` is the group JID text (``120363...@g.us``); addresses are
:class:`~connector.protocol.signal.types.SignalAddress`. Each call reads what it needs from the
:class:`~shared.authstore.AuthStore` and writes every change in one ``set_keys`` call (so the
store's listener learns which categories changed); a call that raises changes nothing. Every
error is a :class:`~connector.protocol.signal.errors.SignalError`. Nothing here does I/O:
randomness and time come from the two callables. Use one repository per store: it keeps parsed
sender-key records (checked against the store on every read, so other writers are safe).

Trust is on first use: a ``pkmsg`` or a bundle with an identity key other than the one stored
for that address replaces it, deletes the sessions made with the old one, and is reported to
``on_identity_change`` once the call's changes are stored. A ``pkmsg`` that does not decrypt changes
no trust: Baileys saves the new identity before decrypting, so there a forged ``pkmsg`` is enough
to delete a working session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Literal

from connector.protocol.crypto import RandomSource
from connector.protocol.signal import cipher, group, ratchet
from connector.protocol.signal.errors import (
    InvalidMessageError,
    InvalidRecordError,
    NoSenderKeyError,
    NoSessionError,
    PreKeyError,
)
from connector.protocol.signal.keys import public33
from connector.protocol.signal.session import SessionRecord
from connector.protocol.signal.store import SenderKeyCache, SignalTransaction
from connector.protocol.signal.types import PreKeyBundle, SignalAddress
from connector.protocol.signal.wire import PreKeySignalMessage
from shared.authstore import AuthStore
from shared.errors import KeeperError

MessageKind = Literal["pkmsg", "msg"]


class SignalRepository:
    """Pairwise sessions and group sender keys of one account over its AuthStore."""

    def __init__(self, store: AuthStore, *, random_bytes: RandomSource, now_ms: Callable[[], int],
                 on_identity_change: Callable[[SignalAddress], None] | None = None) -> None:
        self._store = store
        self._random_bytes = random_bytes
        self._now_ms = now_ms
        self._on_identity_change = on_identity_change
        self._sender_keys = SenderKeyCache()

    # --- pairwise ------------------------------------------------------------------------

    def decrypt(self, sender: SignalAddress, kind: MessageKind, data: bytes) -> bytes:
        """Decrypt an ``<enc type=pkmsg|msg>`` payload from ``sender``."""
        tx = SignalTransaction(self._store)
        address = tx.resolve(sender)
        me = tx.local_identity()
        changed = False
        if kind == "pkmsg":
            message = PreKeySignalMessage.parse(data)
            changed = tx.save_identity(address, message.identity_key)
            record = tx.load_session(address) or SessionRecord()
            pre_keys = cipher.PreKeys(tx.signed_pre_key(), tx.load_pre_key)
            plaintext, consumed = cipher.decrypt_pre_key_message(
                record, message, me, pre_keys=pre_keys, now_ms=self._now_ms(), random_bytes=self._random_bytes)
            if consumed is not None:
                tx.remove_pre_key(consumed)
        elif kind == "msg":
            loaded = tx.load_session(address)
            if loaded is None:
                raise NoSessionError(f"no session record for {address}")
            record = loaded
            plaintext = cipher.decrypt_message(record, me, data, self._now_ms(), self._random_bytes)
        else:
            raise InvalidMessageError(f"not a pairwise message type: {kind!r}")
        record.remove_old_sessions()
        tx.store_session(address, record)
        self._commit(tx, address if changed else None)
        return plaintext

    def encrypt(self, to: SignalAddress, plaintext: bytes) -> tuple[MessageKind, bytes]:
        """Encrypt for one device with its open session (``pkmsg`` until the device has replied)."""
        tx = SignalTransaction(self._store)
        result = self._encrypt(tx, tx.resolve(to), plaintext)
        self._commit(tx, None)
        return result

    def encrypt_for(self, plaintext: bytes, devices: Mapping[SignalAddress, PreKeyBundle | None]
                    ) -> dict[SignalAddress, tuple[MessageKind, bytes]]:
        """Encrypt ``plaintext`` for every device, first building a session from each bundle given
        (a device mapped to None must have a session). All or nothing: one failure raises and
        changes nothing."""
        tx = SignalTransaction(self._store)
        me = tx.local_identity()
        replaced: list[SignalAddress] = []
        out: dict[SignalAddress, tuple[MessageKind, bytes]] = {}
        for device, bundle in devices.items():
            address = tx.resolve(device)
            if bundle is not None and self._build(tx, address, bundle, me):
                replaced.append(address)
            out[device] = self._encrypt(tx, address, plaintext)
        tx.commit()
        for address in replaced:
            self._report(address)
        return out

    def has_session(self, address: SignalAddress) -> bool:
        tx = SignalTransaction(self._store)
        record = tx.load_session(tx.resolve(address))
        return record is not None and record.has_open_session()

    def build_session(self, address: SignalAddress, bundle: PreKeyBundle) -> None:
        """X3DH as initiator from the device's bundle; the open session, if any, is closed."""
        tx = SignalTransaction(self._store)
        resolved = tx.resolve(address)
        changed = self._build(tx, resolved, bundle, tx.local_identity())
        self._commit(tx, resolved if changed else None)

    def delete_sessions(self, addresses: Iterable[SignalAddress]) -> None:
        tx = SignalTransaction(self._store)
        for address in addresses:
            resolved = tx.resolve(address)
            if tx.load_session(resolved) is not None:
                tx.store_session(resolved, None)
        tx.commit()

    def local_bundle(self, pre_key_id: int | None = None) -> PreKeyBundle:
        """This device's bundle with one-time pre-key ``pre_key_id`` (or none), as the server's
        ``encrypt`` iq would hand it to a peer: what a simulator serves for a simulated device."""
        tx = SignalTransaction(self._store)
        creds = self._store.get_creds()
        try:
            signed = creds.signed_pre_key
            identity = creds.signed_identity_key.public
            registration_id = creds.registration_id
        except KeeperError as exc:
            raise InvalidRecordError(f"creds: {exc}") from exc
        one_time = None if pre_key_id is None else tx.load_pre_key(pre_key_id)
        if pre_key_id is not None and one_time is None:
            raise PreKeyError(f"no pre-key {pre_key_id}")
        return PreKeyBundle(
            registration_id=registration_id, identity_key=identity, signed_pre_key_id=signed.key_id,
            signed_pre_key=signed.key_pair.public, signed_pre_key_signature=signed.signature,
            pre_key_id=pre_key_id, pre_key=None if one_time is None else one_time.public[1:])

    def store_lid_mapping(self, pn_user: str, lid_user: str) -> None:
        """Record that phone-number user ``pn_user`` is LID user ``lid_user`` (``lid-mapping``)."""
        tx = SignalTransaction(self._store)
        tx.store_lid_mapping(pn_user, lid_user)
        tx.commit()

    # --- groups --------------------------------------------------------------------------

    def process_sender_key_distribution(self, group_id: str, sender: SignalAddress, skdm: bytes) -> None:
        """Take in a sender's key for a group (the SKDM from a decrypted pairwise message)."""
        state = group.state_from_distribution(skdm)
        tx = SignalTransaction(self._store, self._sender_keys)
        record = tx.load_sender_key(group_id, sender) or group.SenderKeyRecord()
        record.add(state)
        tx.store_sender_key(group_id, sender, record)
        tx.commit()

    def group_decrypt(self, group_id: str, sender: SignalAddress, data: bytes) -> bytes:
        """Decrypt an ``<enc type=skmsg>`` payload of ``sender`` in ``group_id``."""
        tx = SignalTransaction(self._store, self._sender_keys)
        record = tx.load_sender_key(group_id, sender)
        if record is None:
            raise NoSenderKeyError(f"no sender key of {sender} for {group_id}")
        plaintext = group.decrypt(record, data)
        tx.store_sender_key(group_id, sender, record)
        tx.commit()
        return plaintext

    def group_encrypt(self, group_id: str, me: SignalAddress, plaintext: bytes) -> tuple[bytes, bytes]:
        """Encrypt for a group with our sender key (made on first use): ``(skmsg, skdm)``; the SKDM
        goes pairwise to the devices that do not have our key yet (:meth:`sender_key_devices`)."""
        tx = SignalTransaction(self._store, self._sender_keys)
        record = tx.load_sender_key(group_id, me)
        state = None if record is None else record.state()
        if state is None or not state.signing_private:
            state = group.create_own_state(self._random_bytes)
        else:
            state = state.copy()  # moved on below; the cached record keeps the stored one
        skdm = group.distribution_message(state)
        skmsg = group.encrypt(state, plaintext, self._random_bytes)
        tx.store_sender_key(group_id, me, group.SenderKeyRecord([state]))
        tx.commit()
        return skmsg, skdm

    def sender_key_devices(self, group_id: str) -> frozenset[str]:
        tx = SignalTransaction(self._store)
        return frozenset(jid for jid, has in tx.sender_key_memory(group_id).items() if has is True)

    def mark_sender_key_devices(self, group_id: str, jids: Iterable[str]) -> None:
        tx = SignalTransaction(self._store)
        memory = tx.sender_key_memory(group_id)
        for jid in jids:
            memory[jid] = True
        tx.set_sender_key_memory(group_id, memory)
        tx.commit()

    def clear_sender_key_memory(self, group_id: str) -> None:
        """Forget who has our key (Baileys does on a retry receipt): the next send carries the SKDM."""
        tx = SignalTransaction(self._store)
        if tx.sender_key_memory(group_id):
            tx.set_sender_key_memory(group_id, None)
            tx.commit()

    # --- internals -----------------------------------------------------------------------

    def _build(self, tx: SignalTransaction, address: SignalAddress, bundle: PreKeyBundle,
               me: cipher.LocalIdentity) -> bool:
        entry = ratchet.initiate(me.identity, bundle, self._now_ms(), self._random_bytes)
        changed = tx.save_identity(address, public33(bundle.identity_key))
        record = tx.load_session(address) or SessionRecord()
        record.close_open_session(self._now_ms())
        record.put(entry)
        record.remove_old_sessions()
        tx.store_session(address, record)
        return changed

    def _encrypt(self, tx: SignalTransaction, address: SignalAddress, plaintext: bytes) -> tuple[MessageKind, bytes]:
        record = tx.load_session(address)
        if record is None:
            raise NoSessionError(f"no session with {address}")
        result = cipher.encrypt(record, tx.local_identity(), plaintext)
        tx.store_session(address, record)
        return result

    def _commit(self, tx: SignalTransaction, identity_changed: SignalAddress | None) -> None:
        tx.commit()
        if identity_changed is not None:
            self._report(identity_changed)

    def _report(self, address: SignalAddress) -> None:
        if self._on_identity_change is not None:
            self._on_identity_change(address)
