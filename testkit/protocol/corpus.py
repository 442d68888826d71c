"""Real stanzas for fuzzing: what keeper's WhatsApp server simulator sends a companion over a session.

The simulator core is driven through registration (``pair-device`` with refs), a QR scan
(``pair-success`` with a signed device identity), a login (``success``), the answers to the client's
after-login queries (pre-key count, key digest, passive/active, ping), an incoming message, and an
unlink (``stream:error`` 401); the client's own stanzas (``connector.protocol.stanzas``) are added.
Each is encoded with the protocol core's codec, as it travels inside a Noise transport frame, plus
a zlib-compressed copy of each. Deterministic: the same seed gives the same bytes.
"""

from __future__ import annotations

import random
from functools import cache

from connector.protocol import pairing as companion_side
from connector.protocol import stanzas
from connector.protocol.binary import Node, encode_node
from simulator.companion import CompanionCreds, ScriptedCompanion
from simulator.core import Send, SimulatorCore
from simulator.identity import new_server_identity
from simulator.state import SimulatorState

PHONE = "+40700000001"


def _seeded(seed: int) -> random.Random:
    return random.Random(seed)


def _rand(seed: int):  # type: ignore[no-untyped-def]
    rng = _seeded(seed)
    return lambda n: bytes(rng.getrandbits(8) for _ in range(n))


def _sent(actions: list[object]) -> list[Node]:
    return [a.node for a in actions if isinstance(a, Send)]


@cache
def server_nodes() -> tuple[Node, ...]:
    """The stanzas the simulator sends over one companion's registration, pairing, login and use."""
    clock = [1_700_000_000.0]
    rand = _rand(1)
    core = SimulatorCore(SimulatorState(identity=new_server_identity(rand, clock[0])), clock=lambda: clock[0],
                         random_bytes=rand)
    core.create_phone(PHONE)
    creds = CompanionCreds.generate(_rand(10))
    companion = ScriptedCompanion("ws://unused", bytes(32), creds)
    out: list[Node] = []
    conn = core.open_connection()
    hello = _sent(core.client_hello(conn, creds.noise.public, companion.registration_payload().SerializeToString()))
    out += hello
    ref = hello[0].children("pair-device")[0].children("ref")[0].content
    assert isinstance(ref, bytes)
    _, actions = core.scan_qr(PHONE, companion.qr(ref))
    [pair_success] = _sent(actions)
    out.append(pair_success)
    container = pair_success.child_bytes("pair-success", "device-identity")
    assert container is not None
    verified = companion_side.companion_verify_device_identity(
        container, adv_secret=creds.adv_secret, identity=creds.identity, rand=_rand(20))
    sign = Node("pair-device-sign", {}, [Node("device-identity", {"key-index": "1"}, verified.reply_identity)])
    out += _sent(core.receive(conn, Node("iq", {"type": "result", "id": pair_success.attrs["id"]}, [sign])))
    core.connection_lost(conn)
    creds.user, creds.device_id = PHONE[1:], 1
    login = core.open_connection()
    out += _sent(core.client_hello(login, creds.noise.public, companion.login_payload().SerializeToString()))
    for n, query in enumerate((stanzas.pre_key_count(), stanzas.key_digest(), stanzas.set_active(),
                               stanzas.ping())):
        query.attrs["id"] = f"q{n}"
        out += _sent(core.receive(login, query))
    _, _, actions = core.deliver_message(PHONE, "+40700000002", message_id="3EB0FUZZ0001")
    out += _sent(actions)
    out += _sent(core.unlink_device(PHONE, 1))
    return tuple(out)


def client_nodes() -> tuple[Node, ...]:
    """The client's own stanzas (the same codec decodes them)."""
    me = "40700000001:1@s.whatsapp.net"
    return (stanzas.ping(), stanzas.pre_key_count(), stanzas.key_digest(), stanzas.set_active(),
            stanzas.remove_companion_device(me), stanzas.offline_batch(), stanzas.iq_error("1", 400, "bad"))


@cache
def encoded_stanzas() -> tuple[bytes, ...]:
    """Every corpus stanza as serialized bytes (flags byte first), plain and zlib-compressed."""
    nodes = (*server_nodes(), *client_nodes())
    return tuple(encode_node(n) for n in nodes) + tuple(encode_node(n, compress=True) for n in nodes)


INTERESTING_BYTES = (0x00, 0x01, 0x02, 0x7F, 0x80, 0xEC, 0xED, 0xEE, 0xEF, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC,
                     0xFD, 0xFE, 0xFF)


def mutate(data: bytes, rng: random.Random, corpus: tuple[bytes, ...] = ()) -> bytes:
    """One to four byte-level mutations: bit flips, interesting bytes (token tags, list/binary markers),
    inserts, deletes, truncation, duplicated runs, big-endian length fields, and splices with ``corpus``."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            i = min(pos, len(buf) - 1)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[min(pos, len(buf) - 1)] = rng.choice(INTERESTING_BYTES)
        elif op == 2:
            buf[pos:pos] = bytes([rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)])
        elif op == 3 and buf:
            del buf[pos:pos + rng.randint(1, 8)]
        elif op == 4:
            del buf[pos:]
        elif op == 5 and buf:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start:start + rng.randint(1, 16)]
        elif op == 6 and len(buf) > 2:
            i = min(pos, len(buf) - 2)
            buf[i:i + 2] = rng.choice((b"\xff\xff", b"\x00\x00", b"\x7f\xff", b"\x80\x00"))
        elif op == 7 and corpus:
            other = rng.choice(corpus)
            cut = rng.randrange(len(other) + 1)
            buf[pos:] = other[cut:]
        elif buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
    return bytes(buf)
