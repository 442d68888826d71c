"""A minimal WhatsApp server side built from the protocol codecs (responder role), and a client connected to it.

It only does what the client tests need: the Noise responder handshake with a certificate chain from a
test root, and stanza encode/decode over the transport. Flows (success, pair-device, ...) are written
by each test as explicit stanzas, so tests read like protocol transcripts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from connector.protocol.binary import Node, decode_node, encode_node
from connector.protocol.certs import build_cert_chain
from connector.protocol.client import Client, ClientConfig, ClientState
from connector.protocol.crypto import KeyPair
from connector.protocol.frames import WA_INTRO_HEADER, FrameDecoder, encode_frame
from connector.protocol.noise import NoiseHandshake, NoiseTransport
from connector.protocol.proto import wa_pb2
from shared.authstate import AdvSignedDeviceIdentity, AuthState
from shared.authstore import MemoryAuthStore

from .seeded import SeededRandom

NOW = 1_780_000_000.0
ME = "15551234567:3@s.whatsapp.net"


class FakeServer:
    def __init__(self, seed: str = "server", *, root: KeyPair | None = None, now: float = NOW) -> None:
        self.now = now
        self.rand = SeededRandom(seed)
        self.root = root or KeyPair.generate(self.rand)
        self.static = KeyPair.generate(self.rand)
        self.intermediate = KeyPair.generate(self.rand)
        self.frames = FrameDecoder(expect_intro=True)
        self.noise = NoiseHandshake("responder", WA_INTRO_HEADER, self.static, self.rand)
        self.transport: NoiseTransport | None = None
        self.client_payload: wa_pb2.ClientPayload | None = None
        self.client_static: bytes | None = None

    def handshake(self, client_bytes: list[bytes]) -> bytes:
        """Consume the client hello; return the server hello frame."""
        (frame,) = self.frames.feed(b"".join(client_bytes))
        self.noise.read_client_hello(frame)
        chain = build_cert_chain(
            root=self.root, intermediate=self.intermediate, server_static_public=self.static.public,
            rand=self.rand, not_before=int(self.now) - 86400, not_after=int(self.now) + 86400,
        )
        return encode_frame(self.noise.write_server_hello(chain))

    def finish(self, client_bytes: list[bytes]) -> list[Node]:
        """Consume the client finish (and any stanzas after it)."""
        frames = self.frames.feed(b"".join(client_bytes))
        payload = self.noise.read_client_finish(frames[0])
        self.client_static = self.noise.remote_static
        self.client_payload = wa_pb2.ClientPayload.FromString(payload)
        self.transport = self.noise.split()
        return [decode_node(self.transport.decrypt(f)) for f in frames[1:]]

    def receive(self, client_bytes: list[bytes]) -> list[Node]:
        assert self.transport is not None
        return [decode_node(self.transport.decrypt(f)) for f in self.frames.feed(b"".join(client_bytes))]

    def send(self, *nodes: Node) -> bytes:
        assert self.transport is not None
        return b"".join(encode_frame(self.transport.encrypt(encode_node(n))) for n in nodes)


def registered_store(seed: str = "creds") -> MemoryAuthStore:
    """A store whose creds say the account is registered (logs in, never pairs)."""
    store = MemoryAuthStore(AuthState.generate(SeededRandom(seed)))
    store.update_creds({
        "me": {"id": ME, "name": "Shop"},
        "account": AdvSignedDeviceIdentity(b"d", b"k" * 32, b"s" * 64, b"t" * 64).to_json(),
    })
    return store


def config_for(server: FakeServer, **changes: Any) -> ClientConfig:
    return dataclasses.replace(ClientConfig(root_public_key=server.root.public, initial_pre_key_count=20), **changes)


def connect(store: MemoryAuthStore, server: FakeServer, **config: Any) -> Client:
    """Run the Noise handshake against `server`; return the client in AUTHENTICATING."""
    client = Client(store, config_for(server, **config), SeededRandom("client"))
    client.start(NOW)
    client.receive_data(server.handshake(client.data_to_send()), NOW)
    assert server.finish(client.data_to_send()) == []
    assert client.state is ClientState.AUTHENTICATING
    return client
