"""WhatsApp message ids for the messages keeper sends.

WhatsApp clients name each message they send (``<message id=...>``); the server and the peers treat
the id as opaque. keeper fixes the id when ``sendMessage`` accepts a send, long before a connector
sends it, so that a send retried after a crash goes out under the same id and is shown once.

* :func:`new_message_id`: the form WhatsApp Web uses (whatsmeow ``GenerateMessageID``, Baileys
  ``generateMessageIDV2``): ``"3EB0"`` and the first 9 bytes, as 18 uppercase hex digits, of
  ``sha256(u64be(unix seconds) || user + "@c.us" || 16 random bytes)``.
* :func:`client_message_id`: the same form, derived from the account and the caller's
  ``clientMessageId``, so a repeated request names the same message (the store's transaction turns
  that into "the same send").
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

MESSAGE_ID_PREFIX: Final = "3EB0"
MESSAGE_ID_RANDOM_BYTES: Final = 16
MESSAGE_ID_HEX_DIGITS: Final = 18
#: What :func:`new_message_id` and :func:`client_message_id` produce.
MESSAGE_ID_RE: Final = re.compile(r"3EB0[0-9A-F]{18}")
_CLIENT_ID_CONTEXT: Final = b"keeper.clientMessageId.v1\x00"


def _finish(data: bytes) -> str:
    return MESSAGE_ID_PREFIX + hashlib.sha256(data).hexdigest()[:MESSAGE_ID_HEX_DIGITS].upper()


def new_message_id(now_s: int, own_user: str | None, random_bytes: bytes) -> str:
    """A fresh id for a message sent at unix time ``now_s`` by ``own_user`` (the phone number,
    left out when unknown); ``random_bytes`` must be :data:`MESSAGE_ID_RANDOM_BYTES` random bytes."""
    if len(random_bytes) != MESSAGE_ID_RANDOM_BYTES:
        raise ValueError(f"a message id needs {MESSAGE_ID_RANDOM_BYTES} random bytes")
    data = (now_s & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
    if own_user:
        data += f"{own_user}@c.us".encode()
    return _finish(data + random_bytes)


def client_message_id(account_id: str, client_id: str) -> str:
    """The id of the send an account's caller named ``client_id`` (the same for every repeat)."""
    return _finish(_CLIENT_ID_CONTEXT + account_id.encode() + b"\x00" + client_id.encode())
