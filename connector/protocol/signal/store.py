"""Signal state in Baileys' key-store categories, read and written through the account's AuthStore.

One :class:`SignalTransaction` serves one repository call: reads see the call's own writes, and
:meth:`SignalTransaction.commit` hands every change to ``AuthStore.set_keys`` at once, so the
store's listener sees one report naming every category that changed, and a call that fails
changes nothing. Records (Baileys 7 names, SIGNAL.md section 3):

=========================================  ==================================================
``session-<address>``                      libsignal-node's SessionRecord JSON (:mod:`.session`)
``identity-key-<address>``                 the peer's 33-byte identity key (trusted on first use)
``pre-key-<id>``                           our one-time pre-keys; a consumed one is removed
``sender-key-<group>::<user>::<device>``   a sender's key for a group (:mod:`.group`)
``sender-key-memory-<group>``              ``{deviceJid: true}``: who has our sender key
``lid-mapping-<pnUser>``                   the LID user of a phone-number user (and
                                           ``<lidUser>_reverse`` the other way)
=========================================  ==================================================

Addresses are ``user[_domain].device`` (:class:`~.types.SignalAddress`). As Baileys 7 does, a
phone-number address whose user has a ``lid-mapping`` is stored under its LID address; a session
or identity still under the phone-number name (written before the mapping was known) moves to
the LID name the first time it is read.
"""

from __future__ import annotations

from collections import OrderedDict

from connector.protocol.signal.cipher import LocalIdentity
from connector.protocol.signal.errors import InvalidRecordError
from connector.protocol.signal.group import SenderKeyRecord
from connector.protocol.signal.keys import SignalKeyPair
from connector.protocol.signal.session import SessionRecord
from connector.protocol.signal.types import (
    DOMAIN_HOSTED,
    DOMAIN_HOSTED_LID,
    DOMAIN_LID,
    DOMAIN_PN,
    SignalAddress,
)
from shared.authstate import (
    IDENTITY_KEY,
    LID_MAPPING,
    PRE_KEY,
    SENDER_KEY,
    SENDER_KEY_MEMORY,
    SESSION,
    StoredKeyPair,
)
from shared.authstore import AuthStore
from shared.bufferjson import JsonValue
from shared.errors import KeeperError

_LID_DOMAIN_OF: dict[int, int] = {DOMAIN_PN: DOMAIN_LID, DOMAIN_HOSTED: DOMAIN_HOSTED_LID}


def sender_key_id(group: str, sender: SignalAddress) -> str:
    """Baileys' ``SenderKeyName.serialize()``: ``group::user[_domain]::device``."""
    user = sender.name.rpartition(".")[0]
    return f"{group}::{user}::{sender.device}"


class SenderKeyCache:
    """Parsed sender-key records by key id, each with the stored bytes it was parsed from.

    A record from a Baileys sender holds up to 2000 skipped keys (~200 KB of JSON): parsing it on
    every ``skmsg`` would cost milliseconds. A record is reused only while the store still hands
    out the very bytes object it came from (an in-memory store keeps what it was given), so any
    other writer of the record makes it parse again.
    """

    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._entries: OrderedDict[str, tuple[bytes, SenderKeyRecord]] = OrderedDict()

    def get(self, key_id: str, stored: bytes) -> SenderKeyRecord | None:
        entry = self._entries.get(key_id)
        if entry is None or entry[0] is not stored:
            return None
        self._entries.move_to_end(key_id)
        return SenderKeyRecord(list(entry[1].states))  # callers replace states, never edit them

    def put(self, key_id: str, stored: bytes, record: SenderKeyRecord) -> None:
        self._entries[key_id] = (stored, SenderKeyRecord(list(record.states)))
        self._entries.move_to_end(key_id)
        while len(self._entries) > self._limit:
            self._entries.popitem(last=False)


class SignalTransaction:
    """The reads and buffered writes of one repository call (see the module docstring)."""

    def __init__(self, store: AuthStore, sender_keys: SenderKeyCache | None = None) -> None:
        self._store = store
        self._pending: dict[str, dict[str, JsonValue | None]] = {}
        self._sender_keys = sender_keys
        self._parsed: list[tuple[str, bytes, SenderKeyRecord]] = []

    # --- plumbing ------------------------------------------------------------------------

    def _get(self, category: str, key: str) -> JsonValue | None:
        pending = self._pending.get(category)
        if pending is not None and key in pending:
            return pending[key]
        return self._store.get_keys(category, (key,)).get(key)

    def _set(self, category: str, key: str, value: JsonValue | None) -> None:
        self._pending.setdefault(category, {})[key] = value

    @property
    def changed_categories(self) -> frozenset[str]:
        return frozenset(self._pending)

    def commit(self) -> None:
        if self._pending:
            self._store.set_keys(self._pending)
            self._pending = {}
        if self._sender_keys is not None:
            for key_id, stored, record in self._parsed:
                self._sender_keys.put(key_id, stored, record)
        self._parsed = []

    # --- our own keys --------------------------------------------------------------------

    def local_identity(self) -> LocalIdentity:
        creds = self._store.get_creds()
        try:
            identity = creds.signed_identity_key
            pair = SignalKeyPair.from_raw(identity.public, identity.private)
            return LocalIdentity(pair, creds.registration_id)
        except KeeperError as exc:
            raise InvalidRecordError(f"creds: {exc}") from exc

    def signed_pre_key(self) -> SignalKeyPair:
        try:
            signed = self._store.get_creds().signed_pre_key
        except KeeperError as exc:
            raise InvalidRecordError(f"creds: {exc}") from exc
        return SignalKeyPair.from_raw(signed.key_pair.public, signed.key_pair.private)

    def load_pre_key(self, key_id: int) -> SignalKeyPair | None:
        value = self._get(PRE_KEY, str(key_id))
        if value is None:
            return None
        try:
            pair = StoredKeyPair.from_json(value, f"pre-key {key_id}")
        except KeeperError as exc:
            raise InvalidRecordError(str(exc)) from exc
        return SignalKeyPair.from_raw(pair.public, pair.private)

    def remove_pre_key(self, key_id: int) -> None:
        self._set(PRE_KEY, str(key_id), None)

    # --- addresses -----------------------------------------------------------------------

    def resolve(self, address: SignalAddress) -> SignalAddress:
        """The address Baileys 7 stores ``address``'s records under (its LID one when mapped)."""
        lid_domain = _LID_DOMAIN_OF.get(address.domain)
        if lid_domain is None:
            return address
        lid_user = self._get(LID_MAPPING, address.user)
        if not isinstance(lid_user, str) or not lid_user:
            return address
        lid = SignalAddress(user=lid_user, device=address.device, domain=lid_domain)
        self._migrate(address, lid)
        return lid

    def _migrate(self, pn: SignalAddress, lid: SignalAddress) -> None:
        # Baileys' migrateSession: a record written under the phone-number name moves to the LID one.
        for category in (SESSION, IDENTITY_KEY):
            old = self._get(category, pn.name)
            if old is not None and self._get(category, lid.name) is None:
                self._set(category, lid.name, old)
                self._set(category, pn.name, None)

    def store_lid_mapping(self, pn_user: str, lid_user: str) -> None:
        self._set(LID_MAPPING, pn_user, lid_user)
        self._set(LID_MAPPING, f"{lid_user}_reverse", pn_user)

    # --- sessions and identities (addresses already resolved) -----------------------------

    def load_session(self, address: SignalAddress) -> SessionRecord | None:
        value = self._get(SESSION, address.name)
        return None if value is None else SessionRecord.from_json(value)

    def store_session(self, address: SignalAddress, record: SessionRecord | None) -> None:
        self._set(SESSION, address.name, None if record is None else record.to_json())

    def identity(self, address: SignalAddress) -> bytes | None:
        value = self._get(IDENTITY_KEY, address.name)
        if value is None:
            return None
        if not isinstance(value, bytes):
            raise InvalidRecordError(f"identity-key-{address.name} is not binary")
        return value

    def save_identity(self, address: SignalAddress, identity_key: bytes) -> bool:
        """Trust ``identity_key`` for ``address``; True when it replaced another key (and the
        sessions made with that one were deleted), False on first use or when unchanged."""
        known = self.identity(address)
        if known == identity_key:
            return False
        self._set(IDENTITY_KEY, address.name, identity_key)
        if known is None:
            return False
        self._set(SESSION, address.name, None)
        return True

    # --- sender keys ---------------------------------------------------------------------

    def load_sender_key(self, group: str, sender: SignalAddress) -> SenderKeyRecord | None:
        key_id = sender_key_id(group, sender)
        value = self._get(SENDER_KEY, key_id)
        if value is None:
            return None
        if isinstance(value, bytes) and self._sender_keys is not None:
            cached = self._sender_keys.get(key_id, value)
            if cached is not None:
                return cached
        return SenderKeyRecord.from_store(value)

    def store_sender_key(self, group: str, sender: SignalAddress, record: SenderKeyRecord) -> None:
        key_id = sender_key_id(group, sender)
        stored = record.to_store()
        self._set(SENDER_KEY, key_id, stored)
        self._parsed.append((key_id, stored, SenderKeyRecord(list(record.states))))

    def sender_key_memory(self, group: str) -> dict[str, JsonValue]:
        value = self._get(SENDER_KEY_MEMORY, group)
        return dict(value) if isinstance(value, dict) else {}

    def set_sender_key_memory(self, group: str, memory: dict[str, JsonValue] | None) -> None:
        self._set(SENDER_KEY_MEMORY, group, memory or None)
