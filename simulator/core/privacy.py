"""``iq xmlns=privacy get <privacy/>``: the account's privacy settings (Baileys
``fetchPrivacySettings``, which it reads before sending read receipts). Simulated accounts share
WhatsApp's defaults."""

from __future__ import annotations

from connector.protocol.binary import Node
from simulator.core.actions import Action, Send
from simulator.core.connections import Connection
from simulator.core.stanzas import iq_error, iq_result

DEFAULT_SETTINGS = {
    "readreceipts": "all",
    "last": "all",
    "online": "all",
    "profile": "all",
    "status": "contacts",
    "groupadd": "all",
    "calladd": "all",
}


def privacy_iq(conn: Connection, iq: Node) -> list[Action]:
    if iq.attrs.get("type") == "get" and iq.child("privacy") is not None:
        categories = [Node("category", {"name": k, "value": v}) for k, v in DEFAULT_SETTINGS.items()]
        return [Send(conn.conn_id, iq_result(iq, [Node("privacy", {}, categories)]))]
    return [Send(conn.conn_id, iq_error(iq, 501, "feature-not-implemented"))]
