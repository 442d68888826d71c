"""One-time pre-keys: generate them through the auth store and build the upload stanza.

Bookkeeping follows Baileys (``getNextPreKeys``): ``creds.nextPreKeyId`` is the next id to generate,
``creds.firstUnuploadedPreKeyId`` the first id the server has not received. Keys are written to the
store (category ``pre-key``) before they are uploaded, so a key the server hands out always exists here;
the upload is marked done only when the server confirms it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from connector.protocol.binary import S_WHATSAPP_NET, Node
from connector.protocol.crypto import SIGNAL_KEY_TYPE, KeyPair, RandomSource
from connector.protocol.errors import MessageFormatError
from shared.authstate import PRE_KEY, StoredKeyPair
from shared.authstore import AuthStore

MAX_PRE_KEY_ID: Final = 0xFFFFFF
"""Pre-key ids travel as 3 bytes."""


@dataclass(frozen=True, slots=True)
class PreKeyBatch:
    """Public halves of the pre-keys to upload, in id order."""

    keys: tuple[tuple[int, bytes], ...]

    @property
    def last_id(self) -> int:
        return self.keys[-1][0]


def prepare_pre_keys(store: AuthStore, count: int, rand: RandomSource) -> PreKeyBatch:
    """Make sure ``count`` not-yet-uploaded pre-keys exist in the store and return them."""
    creds = store.get_creds()
    first = creds.first_unuploaded_pre_key_id
    next_id = max(creds.next_pre_key_id, first)
    missing = max(0, count - (next_id - first))
    if first + count - 1 > MAX_PRE_KEY_ID:
        raise MessageFormatError("pre-key ids exhausted")
    if missing:
        generated = {}
        for key_id in range(next_id, next_id + missing):
            pair = KeyPair.generate(rand)
            generated[str(key_id)] = StoredKeyPair(public=pair.public, private=pair.private).to_json()
        store.set_keys({PRE_KEY: generated})
        store.update_creds({"nextPreKeyId": next_id + missing})
    ids = [str(key_id) for key_id in range(first, first + count)]
    stored = store.get_keys(PRE_KEY, ids)
    keys = tuple(
        (int(key_id), StoredKeyPair.from_json(stored[key_id], f"pre-key {key_id}").public)
        for key_id in ids
        if key_id in stored
    )
    if not keys:
        raise MessageFormatError("no pre-keys available to upload")
    return PreKeyBatch(keys)


def mark_uploaded(store: AuthStore, batch: PreKeyBatch) -> None:
    creds = store.get_creds()
    if batch.last_id + 1 > creds.first_unuploaded_pre_key_id:
        store.update_creds({"firstUnuploadedPreKeyId": batch.last_id + 1})


def upload_stanza(store: AuthStore, batch: PreKeyBatch) -> Node:
    """``<iq xmlns="encrypt" type="set">`` with registration id, identity, the pre-keys and the signed pre-key."""
    creds = store.get_creds()
    signed = creds.signed_pre_key
    return Node(
        "iq",
        {"xmlns": "encrypt", "type": "set", "to": S_WHATSAPP_NET},
        [
            Node("registration", {}, creds.registration_id.to_bytes(4, "big")),
            Node("type", {}, bytes([SIGNAL_KEY_TYPE])),
            Node("identity", {}, creds.signed_identity_key.public),
            Node("list", {}, [_key_node(key_id, public) for key_id, public in batch.keys]),
            Node(
                "skey",
                {},
                [
                    Node("id", {}, signed.key_id.to_bytes(3, "big")),
                    Node("value", {}, signed.key_pair.public),
                    Node("signature", {}, signed.signature),
                ],
            ),
        ],
    )


def _key_node(key_id: int, public: bytes) -> Node:
    return Node("key", {}, [Node("id", {}, key_id.to_bytes(3, "big")), Node("value", {}, public)])
