"""Phone numbers against the JIDs WhatsApp links them as (shared: the connector refuses a link by the
wrong phone, the functions record it and never restore one)."""

from __future__ import annotations


def same_number(phone_number: str, jid: str) -> bool:
    """Whether ``jid`` (``40700000001[:device]@s.whatsapp.net``) is the account of ``phone_number``
    (E.164, ``+40700000001``)."""
    user = jid.split("@", 1)[0].split(":", 1)[0]
    return user == "".join(ch for ch in phone_number if ch.isdigit())
