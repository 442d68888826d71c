from __future__ import annotations

import pytest

from connector.protocol.crypto import KeyPair
from connector.protocol.errors import NoiseError
from connector.protocol.frames import WA_INTRO_HEADER
from connector.protocol.noise import NoiseHandshake
from connector.protocol.proto import wa_pb2
from testkit.protocol.seeded import SeededRandom


def make_pair(seed: str = "noise") -> tuple[NoiseHandshake, NoiseHandshake, KeyPair, KeyPair]:
    rand = SeededRandom(seed)
    client_static, server_static = KeyPair.generate(rand), KeyPair.generate(rand)
    client = NoiseHandshake("initiator", WA_INTRO_HEADER, client_static, rand)
    server = NoiseHandshake("responder", WA_INTRO_HEADER, server_static, rand)
    return client, server, client_static, server_static


def test_full_handshake_exchanges_statics_payloads_and_transport_keys() -> None:
    client, server, client_static, server_static = make_pair()
    hello = client.write_client_hello()
    assert wa_pb2.HandshakeMessage.FromString(hello).clientHello.ephemeral
    server.read_client_hello(hello)
    server_hello = server.write_server_hello(b"certificate chain")
    assert client.read_server_hello(server_hello) == b"certificate chain"
    assert client.remote_static == server_static.public
    finish = client.write_client_finish(b"client payload")
    assert server.read_client_finish(finish) == b"client payload"
    assert server.remote_static == client_static.public

    client_transport, server_transport = client.split(), server.split()
    for i in range(5):
        assert server_transport.decrypt(client_transport.encrypt(b"up %d" % i)) == b"up %d" % i
        assert client_transport.decrypt(server_transport.encrypt(b"down %d" % i)) == b"down %d" % i


def test_transport_uses_counters_so_replayed_frames_fail() -> None:
    client, server, *_ = make_pair()
    server.read_client_hello(client.write_client_hello())
    client.read_server_hello(server.write_server_hello(b"c"))
    server.read_client_finish(client.write_client_finish(b"p"))
    sender, receiver = client.split(), server.split()
    frame = sender.encrypt(b"once")
    assert receiver.decrypt(frame) == b"once"
    with pytest.raises(NoiseError):
        receiver.decrypt(frame)


def test_different_prologue_breaks_the_handshake() -> None:
    rand = SeededRandom("prologue")
    client = NoiseHandshake("initiator", WA_INTRO_HEADER, KeyPair.generate(rand), rand)
    server = NoiseHandshake("responder", b"WA\x06\x02", KeyPair.generate(rand), rand)
    server.read_client_hello(client.write_client_hello())
    with pytest.raises(NoiseError):
        client.read_server_hello(server.write_server_hello(b"c"))


def test_tampered_server_hello_is_rejected() -> None:
    client, server, *_ = make_pair()
    server.read_client_hello(client.write_client_hello())
    message = wa_pb2.HandshakeMessage.FromString(server.write_server_hello(b"c"))
    message.serverHello.payload = bytes([message.serverHello.payload[0] ^ 1]) + message.serverHello.payload[1:]
    with pytest.raises(NoiseError):
        client.read_server_hello(message.SerializeToString())


def test_steps_out_of_order_or_wrong_role_raise() -> None:
    client, server, *_ = make_pair()
    with pytest.raises(NoiseError):
        client.read_server_hello(b"")
    with pytest.raises(NoiseError):
        server.write_server_hello(b"c")
    with pytest.raises(NoiseError):
        client.split()
    with pytest.raises(NoiseError):
        client.read_client_hello(b"")


def test_garbage_and_incomplete_messages_raise_noise_error() -> None:
    client, server, *_ = make_pair()
    with pytest.raises(NoiseError):
        server.read_client_hello(b"\xff\xff\xff")
    with pytest.raises(NoiseError):
        server.read_client_hello(wa_pb2.HandshakeMessage().SerializeToString())
    client.write_client_hello()
    with pytest.raises(NoiseError):
        client.read_server_hello(
            wa_pb2.HandshakeMessage(serverHello=wa_pb2.HandshakeMessage.ServerHello(ephemeral=b"x" * 32))
            .SerializeToString()
        )
