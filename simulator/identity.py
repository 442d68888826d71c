"""The simulator's own trust root: a root key, an intermediate, and the Noise static key they certify.

Clients verify the chain exactly as they verify WhatsApp's (``connector.protocol.certs``), configured
with the simulator's root public key instead of WhatsApp's. The chain is built once and persisted with
the state, so the root key a client was given stays valid across simulator restarts.
"""

from __future__ import annotations

from connector.protocol.certs import build_cert_chain
from connector.protocol.crypto import KeyPair
from simulator import crypto
from simulator.state import ServerIdentity

CERT_VALIDITY_S = 10 * 365 * 24 * 3600
CERT_BACKDATE_S = 24 * 3600  # tolerate client clocks that run behind


def new_server_identity(random_bytes: crypto.RandomBytes, now: float) -> ServerIdentity:
    root = KeyPair.generate(random_bytes)
    intermediate = KeyPair.generate(random_bytes)
    static = KeyPair.generate(random_bytes)
    chain = build_cert_chain(
        root=root,
        intermediate=intermediate,
        server_static_public=static.public,
        rand=random_bytes,
        not_before=int(now) - CERT_BACKDATE_S,
        not_after=int(now) + CERT_VALIDITY_S,
    )
    return ServerIdentity(
        root_private=root.private,
        root_public=root.public,
        static_private=static.private,
        static_public=static.public,
        cert_chain=chain,
    )
