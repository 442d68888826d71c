"""Whatever stanza a logged-in or registering client sends, the core answers or refuses it cleanly.

Bad peer input may only surface as ``ClientProtocolError`` (the driver closes that socket); anything
else escaping the core would take the simulator's event loop down with it.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol.binary import Node
from simulator.companion import CompanionCreds, ScriptedCompanion
from simulator.core import Send, SimulatorCore
from simulator.errors import ClientProtocolError
from tests.simulator.test_units import make_core, pair_device_sign, registered_core, seeded, signed_device_identity

TAGS = [
    "iq", "ack", "receipt", "count", "digest", "key", "user", "list", "skey", "id", "value", "signature",
    "identity", "registration", "type", "rotate", "ping", "active", "passive", "link_code_companion_reg",
    "pair-device-sign", "device-identity", "remove-companion-device", "props", "error",
]
ATTR_NAMES = ["id", "type", "xmlns", "jid", "stage", "class", "to", "reason"]
ATTR_VALUES = [
    "get", "set", "result", "error", "encrypt", "w:p", "md", "passive", "w", "companion_hello",
    "companion_finish", "message", "40700000001:1@s.whatsapp.net", "40700000001@s.whatsapp.net", "@s.whatsapp.net",
    "x@", "1", "",
]


def nodes(depth: int = 3) -> st.SearchStrategy[Node]:
    leaf_content: st.SearchStrategy[list[Node] | bytes | None] = st.one_of(
        st.none(), st.binary(max_size=40), st.sampled_from([bytes(3), bytes(32), bytes(64), b"\x05", bytes(4)])
    )
    content = leaf_content if depth == 0 else st.one_of(leaf_content, st.lists(nodes(depth - 1), max_size=4))
    attrs = st.dictionaries(st.sampled_from(ATTR_NAMES), st.sampled_from(ATTR_VALUES), max_size=4)
    return st.builds(Node, st.sampled_from(TAGS), attrs, content)


def logged_in_core() -> tuple[SimulatorCore, int]:
    core, conn, creds, iq = registered_core()
    core.receive(conn, pair_device_sign(iq, signed_device_identity(creds, iq, seed=20)))
    core.connection_lost(conn)
    creds.user, creds.device_id = "40700000001", 1
    login = core.open_connection()
    payload = ScriptedCompanion("ws://unused", bytes(32), creds).login_payload().SerializeToString()
    actions = core.client_hello(login, creds.noise.public, payload)
    assert any(isinstance(a, Send) and a.node.tag == "success" for a in actions)
    return core, login


def registering_core() -> tuple[SimulatorCore, int]:
    core = make_core()
    core.create_phone("+40700000001")
    creds = CompanionCreds.generate(seeded(21))
    conn = core.open_connection()
    payload = ScriptedCompanion("ws://unused", bytes(32), creds).registration_payload().SerializeToString()
    core.client_hello(conn, creds.noise.public, payload)
    return core, conn


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(nodes(), min_size=1, max_size=5), st.booleans())
def test_any_stanza_is_answered_or_refused_cleanly(stanzas: list[Node], logged_in: bool) -> None:
    core, conn = logged_in_core() if logged_in else registering_core()
    for stanza in stanzas:
        try:
            actions = core.receive(conn, stanza)
        except ClientProtocolError:
            return  # the driver closes the socket
        assert all(action.conn == conn for action in actions)  # no other socket exists to address
    assert core.stats()["connections"] == 1
