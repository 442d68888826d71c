"""Identifiers a send carries: the message id and the participant hash (``phash``).

* **Message id** (whatsmeow ``GenerateMessageID``, Baileys ``generateMessageIDV2``): ``"3EB0"`` and the
  first 9 bytes, as 18 uppercase hex digits, of ``sha256(u64be(unix seconds) || user + "@c.us" || 16
  random bytes)``. ``user`` is our own phone number; without one the part is left out. (Baileys hashes a
  fixed 44-byte buffer with the user zero-padded to 20 bytes; the ids look alike and neither side can
  tell, since the server and peers treat the id as opaque.)
* **phash** (``<message phash>`` on group sends, echoed in the server's ``<ack>``): the way whatsmeow's
  ``participantListHashV2`` does it today: each device JID written as ``user.agent:device@server``
  (whatsmeow ``ADString``, device and agent always present), sorted, joined with nothing between,
  SHA-256, the first 6 bytes, standard base64 without padding (8 characters), prefixed ``"2:"``.
  Baileys instead hashes its own ``user:device@server`` strings and keeps the first 6 *characters* of
  the padded base64 (and never attaches it to a 1:1 send). We follow whatsmeow: it checks the phash
  the server echoes in its ack against its own and reports a mismatch, so its rule is the server's.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Final

from connector.protocol.binary import Jid
from connector.protocol.crypto import RandomSource
from shared import message_ids as _ids
from shared.message_ids import MESSAGE_ID_HEX_DIGITS, MESSAGE_ID_PREFIX, MESSAGE_ID_RANDOM_BYTES

__all__ = ["MESSAGE_ID_HEX_DIGITS", "MESSAGE_ID_PREFIX", "MESSAGE_ID_RANDOM_BYTES", "PHASH_HASH_BYTES",
           "PHASH_PREFIX", "new_message_id", "participant_hash"]

PHASH_PREFIX: Final = "2:"
PHASH_HASH_BYTES: Final = 6


def new_message_id(now_s: int, own_user: str | None, rand: RandomSource) -> str:
    """A fresh id for a message we send at unix time ``now_s`` (``3EB0`` + 18 uppercase hex digits); the
    recipe is :func:`shared.message_ids.new_message_id`, which the functions use for ``sendMessage``."""
    return _ids.new_message_id(now_s, own_user, rand(MESSAGE_ID_RANDOM_BYTES))


def participant_hash(device_jids: Iterable[Jid]) -> str:
    """The ``phash`` of the devices a message is encrypted for (order does not matter)."""
    written = sorted(f"{jid.user}.{jid.agent}:{jid.device or 0}@{jid.server}" for jid in device_jids)
    digest = hashlib.sha256("".join(written).encode()).digest()[:PHASH_HASH_BYTES]
    return PHASH_PREFIX + base64.b64encode(digest).decode().rstrip("=")
