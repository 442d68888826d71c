"""CPU time of the client side of one login handshake (target: under 2 ms).

Measures, per handshake: building the client hello, reading the server hello (two X25519, AES-GCM,
certificate chain verification with two XEdDSA checks), the login ClientPayload, the client finish and
the transport split; then decoding ``<success>`` and emitting the after-login queries. The server side is
simulated in-process with the same codecs and is not counted. Run: ``.venv/bin/python bench/handshake.py``.
"""

from __future__ import annotations

import os
import statistics
import time

from connector.protocol.binary import Node, encode_node
from connector.protocol.certs import build_cert_chain
from connector.protocol.client import Client, ClientConfig
from connector.protocol.crypto import KeyPair
from connector.protocol.frames import WA_INTRO_HEADER, FrameDecoder, encode_frame
from connector.protocol.noise import NoiseHandshake
from shared.authstate import AdvSignedDeviceIdentity, AuthState
from shared.authstore import MemoryAuthStore

ROUNDS = 300


def main() -> None:
    now = time.time()
    root, intermediate, server_static = (KeyPair.generate(os.urandom) for _ in range(3))
    chain = build_cert_chain(root=root, intermediate=intermediate, server_static_public=server_static.public,
                             rand=os.urandom, not_before=int(now) - 60, not_after=int(now) + 3600)
    store = MemoryAuthStore(AuthState.generate())
    store.update_creds({
        "me": {"id": "15551234567:3@s.whatsapp.net"},
        "account": AdvSignedDeviceIdentity(b"d", b"k" * 32, b"s" * 64, b"t" * 64).to_json(),
    })
    config = ClientConfig(root_public_key=root.public)
    client_cpu: list[float] = []
    for _ in range(ROUNDS):
        server = NoiseHandshake("responder", WA_INTRO_HEADER, server_static, os.urandom)
        frames = FrameDecoder(expect_intro=True)

        started = time.process_time()
        client = Client(store, config, os.urandom)
        client.start(now)
        hello = client.data_to_send()
        spent = time.process_time() - started

        server.read_client_hello(frames.feed(b"".join(hello))[0])
        server_hello = encode_frame(server.write_server_hello(chain))

        started = time.process_time()
        client.receive_data(server_hello, now)
        finish = client.data_to_send()
        spent += time.process_time() - started

        server.read_client_finish(frames.feed(b"".join(finish))[0])
        transport = server.split()
        success = encode_frame(transport.encrypt(encode_node(Node("success", {"t": str(int(now))}))))

        started = time.process_time()
        client.receive_data(success, now)
        client.data_to_send()
        client.events()
        spent += time.process_time() - started
        client_cpu.append(spent * 1000)

    client_cpu.sort()
    print(f"login handshakes measured: {ROUNDS}")
    print(f"client CPU per handshake: mean {statistics.mean(client_cpu):.3f} ms, "
          f"median {statistics.median(client_cpu):.3f} ms, p95 {client_cpu[int(ROUNDS * 0.95)]:.3f} ms")
    print("target: < 2 ms")


if __name__ == "__main__":
    main()
