"""Byte-level fuzz targets of the protocol core, shared by the suite and ``bench/protocol_fuzz.py``.

Each target takes one input and returns None when the core answered as it must (decoded it, or refused
it with a ``ProtocolError``), or the name of an *escape*: any other exception, or a client left
half-way (an exception out of ``receive_data``, a close that says an internal error was caught, a
state that does not match its events). Inputs are real stanzas and frames (``corpus``) mutated at
the byte level.
"""

from __future__ import annotations

import random
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from connector.protocol import stanzas
from connector.protocol.binary import Node, decode_node
from connector.protocol.certs import verify_cert_chain
from connector.protocol.client import Client, ClientState
from connector.protocol.crypto import KeyPair
from connector.protocol.errors import ProtocolError
from connector.protocol.events import Closed
from connector.protocol.frames import FrameDecoder, encode_frame
from connector.protocol.pairing import companion_verify_device_identity

from .corpus import encoded_stanzas, mutate, server_nodes
from .fake_server import NOW, FakeServer, connect, registered_store
from .seeded import SeededRandom


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    last = frames[-1] if frames else None
    at = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}" if last else "?"
    return f"{type(exc).__name__} at {at}"


def _only_protocol_errors(run: Callable[[], object]) -> str | None:
    try:
        run()
    except ProtocolError:
        return None
    except Exception as exc:
        return _where(exc)
    return None


def node_target(data: bytes) -> str | None:
    """``decode_node`` on the bytes; a decoded node also goes through the client's stanza parsers."""
    def run() -> None:
        node = decode_node(data)
        for part in node.walk():
            stanzas.count_value(part)
            if part.tag == "message":
                stanzas.incoming_message(part)
    return _only_protocol_errors(run)


def frame_target(data: bytes, chunk: int) -> str | None:
    """A stream of frames (``chunk`` bytes at a time) through a client-side and a server-side decoder."""
    def run() -> None:
        for expect_intro in (False, True):
            decoder = FrameDecoder(expect_intro=expect_intro)
            for start in range(0, len(data), max(1, chunk)):
                decoder.feed(data[start:start + max(1, chunk)])
    return _only_protocol_errors(run)


@dataclass
class _Pairing:
    container: bytes
    adv_secret: bytes
    identity: KeyPair


def signal_wire_corpus() -> dict[str, bytes]:
    """One of each Signal wire message and a few WhatsApp ``Message`` protobufs, as peers send them."""
    from connector.protocol import wamessage_encode as enc
    from connector.protocol.signal import wire

    key = b"\x05" + bytes(range(1, 33))
    message = wire.SignalMessage.build(key, 7, 3, bytes(range(48))).with_mac(bytes(8))
    return {
        "signal/msg": message,
        "signal/pkmsg": wire.PreKeySignalMessage(1234, 5, 6, key, key, message).encode(),
        "signal/skdm": wire.SenderKeyDistributionMessage(9, 0, bytes(32), key).encode(),
        "signal/skmsg": wire.SenderKeyMessage.build(9, 4, bytes(range(32))).with_signature(bytes(64)),
        "wamessage": enc.text_message("hello", message_secret=bytes(32)),
        "wamessage/reply": enc.reply_message("re", enc.ReplyTarget("3EB0AA", "1@s.whatsapp.net",
                                                                    enc.text_message("quoted"))),
        "wamessage/device_sent": enc.device_sent_message(enc.text_message("x"), "2@s.whatsapp.net"),
    }


def signal_wire_target(kind: str, data: bytes) -> str | None:
    """The decoders of bytes a peer encrypts to us: Signal messages and the WhatsApp ``Message`` inside."""
    from connector.protocol import wamessage
    from connector.protocol.signal import wire

    parse: Callable[[bytes], object] = {
        "signal/msg": wire.SignalMessage.parse, "signal/pkmsg": wire.PreKeySignalMessage.parse,
        "signal/skdm": wire.SenderKeyDistributionMessage.parse, "signal/skmsg": wire.SenderKeyMessage.parse,
    }.get(kind, wamessage.decode_message)
    return _only_protocol_errors(lambda: parse(data))


def protobuf_target(kind: str, data: bytes, server: FakeServer) -> str | None:
    """The protobuf decoders: certificate chain, device identity container, Noise handshake message."""
    if kind == "certs":
        return _only_protocol_errors(lambda: verify_cert_chain(data, server.static.public,
                                                               root_public_key=server.root.public, now=NOW))
    if kind == "device_identity":
        identity = KeyPair.generate(SeededRandom("identity"))
        return _only_protocol_errors(lambda: companion_verify_device_identity(
            data, adv_secret=b"\x01" * 32, identity=identity, rand=SeededRandom("sign")))
    raise ValueError(kind)


class ClientHarness:
    """A client of the protocol core kept in AUTHENTICATING or OPEN against the in-test server; fed one
    mutated stanza (encrypted and framed as the server would) per input. A client that closed is
    replaced by a fresh one."""

    def __init__(self, open_: bool, registered: bool) -> None:
        if open_ and not registered:
            raise ValueError("only a registered client logs in")
        self._open = open_
        self._registered = registered
        self._fresh()

    def _fresh(self) -> None:
        from shared.authstate import AuthState
        from shared.authstore import MemoryAuthStore

        store = registered_store() if self._registered else MemoryAuthStore(AuthState.generate(SeededRandom("fz")))
        self.server = FakeServer()
        self.client: Client = connect(store, self.server)
        if self._open:
            self.client.receive_data(self.server.send(Node("success", {"lid": "987654321:3@lid",
                                                                       "t": "1780000000"})), NOW)
            self.client.data_to_send()
            self.client.events()
            assert self.client.state is ClientState.OPEN

    def feed(self, plaintext: bytes, at: float = NOW) -> str | None:
        assert self.server.transport is not None
        wire = encode_frame(self.server.transport.encrypt(plaintext))
        try:
            self.client.receive_data(wire, at)
            self.client.tick(at)
        except Exception as exc:
            self._fresh()
            return "raised " + _where(exc)
        self.client.data_to_send()
        events = self.client.events()
        closes = [e for e in events if isinstance(e, Closed)]
        escape = None
        if len(closes) > 1 or (self.client.state is ClientState.CLOSED) != bool(closes):
            escape = f"half-way: state {self.client.state.value} after {len(closes)} close events"
        elif closes and closes[0].info.detail and closes[0].info.detail.startswith("internal error"):
            escape = "caught " + closes[0].info.detail
        if self.client.state is ClientState.CLOSED:
            self._fresh()
        return escape


@dataclass
class Campaign:
    """Counts of one fuzz run: inputs per target and escapes by kind."""

    inputs: Counter[str] = field(default_factory=Counter)
    escapes: Counter[str] = field(default_factory=Counter)
    examples: dict[str, bytes] = field(default_factory=dict)

    def record(self, target: str, data: bytes, escape: str | None) -> None:
        self.inputs[target] += 1
        if escape is not None:
            key = f"{target}: {escape}"
            self.escapes[key] += 1
            self.examples.setdefault(key, data)


def _server_hello_payloads() -> tuple[bytes, bytes]:
    """A certificate chain and a pair-success device-identity container, as real servers send them."""
    server = FakeServer()
    from connector.protocol.certs import build_cert_chain

    chain = build_cert_chain(root=server.root, intermediate=server.intermediate,
                             server_static_public=server.static.public, rand=server.rand,
                             not_before=int(NOW) - 86400, not_after=int(NOW) + 86400)
    pair_success = next(n for n in server_nodes() if n.child("pair-success") is not None)
    container = pair_success.child_bytes("pair-success", "device-identity")
    assert container is not None
    return chain, container


def run_campaign(inputs: int, seed: int = 16, *, client_share: float = 0.05) -> Campaign:
    """``inputs`` mutated inputs spread over every target (``client_share`` of them through whole
    clients, which cost a handshake after each close)."""
    rng = random.Random(seed)
    corpus = encoded_stanzas()
    frames = tuple(encode_frame(s) for s in corpus)
    chain, container = _server_hello_payloads()
    server = FakeServer()
    clients = [ClientHarness(open_=o, registered=r) for o, r in ((False, True), (False, False), (True, True))]
    campaign = Campaign()
    wanted_proto = max(1, inputs // 20)
    wanted_wire = max(1, inputs // 10)
    wanted_frames = max(1, inputs // 20)
    wanted_clients = max(1, int(inputs * client_share))
    wanted_nodes = max(1, inputs - wanted_proto - wanted_wire - wanted_frames - wanted_clients)
    for _ in range(wanted_nodes):
        data = mutate(rng.choice(corpus), rng, corpus)
        campaign.record("node", data, node_target(data))
    for _ in range(wanted_frames):
        stream = b"".join(rng.sample(frames, rng.randint(1, 3)))
        data = mutate(stream, rng, frames)
        campaign.record("frames", data, frame_target(data, rng.choice((1, 3, 7, 64, 4096))))
    for n in range(wanted_proto):
        kind, base = ("certs", chain) if n % 2 == 0 else ("device_identity", container)
        data = mutate(base, rng)
        campaign.record(f"protobuf/{kind}", data, protobuf_target(kind, data, server))
    wire_corpus = signal_wire_corpus()
    wire_kinds = sorted(wire_corpus)
    for n in range(wanted_wire):
        kind = wire_kinds[n % len(wire_kinds)]
        data = mutate(wire_corpus[kind], rng)
        campaign.record(kind, data, signal_wire_target(kind, data))
    for n in range(wanted_clients):
        harness = clients[n % len(clients)]
        data = mutate(rng.choice(corpus), rng, corpus)
        campaign.record("client", data, harness.feed(data))
    return campaign
