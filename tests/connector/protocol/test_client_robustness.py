"""Whatever well-framed stanzas a server sends, the client either keeps going or closes with a reason.

It must never raise to its caller: bad peer input is a classified close, not a crash.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.protocol.binary import Node
from connector.protocol.client import ClientState
from connector.protocol.events import Closed
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore
from testkit.protocol.fake_server import NOW, FakeServer
from testkit.protocol.seeded import SeededRandom

from .test_client import connect, registered_store

TAGS = ["iq", "success", "failure", "stream:error", "ib", "message", "notification", "receipt", "call", "ack",
        "pair-device", "pair-success", "ref", "device-identity", "device", "count", "enc", "conflict", "offline",
        "edge_routing", "routing_info", "link_code_companion_reg", "link_code_pairing_ref", "xmlstreamend"]
ATTRS = ["id", "type", "from", "code", "reason", "value", "lid", "jid", "t", "participant", "xmlns", "count", "v"]
VALUES = st.one_of(st.sampled_from(["result", "error", "set", "get", "401", "515", "0", "3", "x", "md", "encrypt",
                                    "link_code_companion_reg", "urn:xmpp:ping", "1@s.whatsapp.net", "2:1@lid"]),
                   st.text(max_size=8))

nodes = st.recursive(
    st.builds(Node, st.sampled_from(TAGS), st.dictionaries(st.sampled_from(ATTRS), VALUES, max_size=4),
              st.one_of(st.none(), st.binary(max_size=40))),
    lambda children: st.builds(Node, st.sampled_from(TAGS),
                               st.dictionaries(st.sampled_from(ATTRS), VALUES, max_size=4),
                               st.lists(children, min_size=1, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(nodes, min_size=1, max_size=6), st.booleans())
def test_arbitrary_stanzas_never_crash_the_client(stanzas: list[Node], registered: bool) -> None:
    store = registered_store() if registered else MemoryAuthStore(AuthState.generate(SeededRandom("fuzz")))
    server = FakeServer()
    client = connect(store, server)
    for offset, stanza in enumerate(stanzas):
        client.receive_data(server.send(stanza), NOW + offset)
        client.tick(NOW + offset)
        client.data_to_send()
    events = client.events()
    closes = [e for e in events if isinstance(e, Closed)]
    assert len(closes) <= 1
    assert (client.state is ClientState.CLOSED) == bool(closes)
