"""Our codecs against an independent implementation: pyaileys (a Python port of Baileys, a dev dependency).

Same bytes for the same binary nodes, a Noise handshake between their initiator and our responder
(including their check of our certificate chain), and XEdDSA signatures verified across both.
"""

from __future__ import annotations

import asyncio
import random

import pyaileys.crypto.noise as their_noise
import pytest
from pyaileys.auth.creds import KeyPair as TheirKeyPair
from pyaileys.crypto.curve import DefaultCurve25519Provider
from pyaileys.wabinary.decode import decode_binary_node
from pyaileys.wabinary.encode import encode_binary_node
from pyaileys.wabinary.types import BinaryNode

from connector.protocol import crypto, tokens
from connector.protocol.binary import Node, decode_node, encode_node
from connector.protocol.certs import build_cert_chain
from connector.protocol.crypto import KeyPair
from connector.protocol.frames import WA_INTRO_HEADER, FrameDecoder, encode_frame
from connector.protocol.noise import NoiseHandshake
from connector.protocol.proto import wa_pb2
from shared import signatures
from testkit.protocol.fake_server import NOW
from testkit.protocol.seeded import SeededRandom


def to_theirs(node: Node) -> BinaryNode:
    content = [to_theirs(c) for c in node.content] if isinstance(node.content, list) else node.content
    return BinaryNode(tag=node.tag, attrs=dict(node.attrs), content=content)


def from_theirs(node: BinaryNode) -> Node:
    content = node.content
    if isinstance(content, list):
        return Node(node.tag, dict(node.attrs), [from_theirs(c) for c in content])
    return Node(node.tag, dict(node.attrs), content.encode() if isinstance(content, str) else content)


WORDS = list(tokens.DICTIONARIES[3].single[1:]) + [w for d in tokens.DICTIONARIES[3].double for w in d]
VALUES = [*WORDS, "1780000000", "3EB0ABCDEF", "hello world", "15551234567:3@s.whatsapp.net", "123@lid", "1:4@lid",
          "@s.whatsapp.net", "120363@g.us", "status@broadcast", "12.5-3", "ABC", "x" * 300, "ünï"]


def random_node(rng: random.Random, depth: int = 0) -> Node:
    attrs = {rng.choice(WORDS): rng.choice(VALUES) for _ in range(rng.randint(0, 4))}
    roll = rng.random()
    content: list[Node] | bytes | None = None
    if depth < 3 and roll < 0.4:
        content = [random_node(rng, depth + 1) for _ in range(rng.randint(1, 4))]
    elif roll < 0.7:
        content = rng.randbytes(rng.choice([0, 5, 300, 70000]))
    return Node(rng.choice(WORDS), attrs, content)


def test_binary_nodes_encode_to_the_same_bytes_and_cross_decode() -> None:
    rng = random.Random(7)
    for _ in range(300):
        node = random_node(rng)
        ours, theirs = encode_node(node), encode_binary_node(to_theirs(node))
        assert ours == theirs
        assert from_theirs(decode_binary_node(ours)) == node
        assert decode_node(theirs) == node


def test_their_noise_initiator_completes_a_handshake_with_our_responder(monkeypatch: pytest.MonkeyPatch) -> None:
    rand = SeededRandom("crosscheck")
    root, intermediate, server_static = (KeyPair.generate(rand) for _ in range(3))
    monkeypatch.setattr(their_noise, "WA_CERT_PUBLIC_KEY", root.public)
    ephemeral, noise_key = (KeyPair.generate(rand) for _ in range(2))
    theirs = their_noise.NoiseHandler(key_pair=TheirKeyPair(public=ephemeral.public, private=ephemeral.private))
    ours = NoiseHandshake("responder", WA_INTRO_HEADER, server_static, rand)
    server_frames = FrameDecoder(expect_intro=True)

    hello = wa_pb2.HandshakeMessage(clientHello=wa_pb2.HandshakeMessage.ClientHello(ephemeral=ephemeral.public))
    (frame,) = server_frames.feed(theirs.encode_frame(hello.SerializeToString()))
    ours.read_client_hello(frame)
    chain = build_cert_chain(root=root, intermediate=intermediate, server_static_public=server_static.public,
                             rand=rand, not_before=int(NOW) - 10, not_after=int(NOW) + 10)
    server_hello = wa_pb2.HandshakeMessage.FromString(ours.write_server_hello(chain))
    encrypted_static = theirs.process_handshake(
        server_hello, TheirKeyPair(public=noise_key.public, private=noise_key.private), verify_certificates=True
    )
    encrypted_payload = theirs.encrypt(b"client payload")
    finish = wa_pb2.HandshakeMessage(
        clientFinish=wa_pb2.HandshakeMessage.ClientFinish(static=encrypted_static, payload=encrypted_payload)
    )
    (frame,) = server_frames.feed(theirs.encode_frame(finish.SerializeToString()))
    assert ours.read_client_finish(frame) == b"client payload"
    assert ours.remote_static == noise_key.public

    asyncio.run(theirs.finish_init())
    transport = ours.split()
    (frame,) = server_frames.feed(theirs.encode_frame(b"up"))
    assert transport.decrypt(frame) == b"up"
    received: list[bytes] = []
    asyncio.run(theirs.decode_frame(encode_frame(transport.encrypt(b"down")), received.append))
    assert received == [b"down"]


def test_xeddsa_signatures_verify_across_implementations() -> None:
    rand = SeededRandom("xeddsa-cross")
    curve = DefaultCurve25519Provider()
    for _ in range(10):
        pair = KeyPair.generate(rand)
        message = rand(40)
        assert curve.verify(pair.public, message, signatures.xeddsa_sign(pair.private, message, rand))
        assert signatures.xeddsa_verify(pair.public, message, curve.sign(pair.private, message))
        other = KeyPair.generate(rand)
        assert curve.shared_key(pair.private, other.public) == crypto.x25519(other.private, pair.public)
