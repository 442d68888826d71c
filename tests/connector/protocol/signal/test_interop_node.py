"""Interop with a real third-party Signal implementation: Baileys 7's Signal layer on libsignal-node
(npm, pinned in package.json), run as a Node child process (``peer.mjs``). Baileys 6.17.16 writes
the 6.x sender-key files."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from connector.protocol.signal import keys
from connector.protocol.signal.errors import DuplicateMessageError, TooFarAheadError
from connector.protocol.signal.session import SessionRecord
from connector.protocol.signal.store import sender_key_id
from connector.protocol.signal.types import SignalAddress
from shared.authstate import SENDER_KEY
from shared.authstore import MemoryAuthStore
from shared.baileys import read_folder, write_folder
from testkit.protocol.seeded import SeededRandom

from .nodepeer import NodePeer
from .parties import Party, make_party

pytestmark = pytest.mark.integration

PY_JID = "4915550001@s.whatsapp.net"
PY_ADDR = SignalAddress("4915550001", 0)
NODE_JID = "4915550002@s.whatsapp.net"
NODE_ADDR = SignalAddress("4915550002", 0)
GROUP = "120363000000000009@g.us"

PeerFactory = Callable[..., NodePeer]


@pytest.fixture
def node_peer(tmp_path: Path) -> Iterator[PeerFactory]:
    started: list[NodePeer] = []

    def start(name: str = "node", jid: str = NODE_JID, folder: Path | None = None, baileys: int = 7) -> NodePeer:
        peer = NodePeer(folder or tmp_path / name, tmp_path / f"{name}.log", jid, baileys=baileys)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        peer.close()


def _py(name: str = "py", address: SignalAddress = PY_ADDR) -> Party:
    return make_party(name, address=address)


def _node_to_python_session(node: NodePeer, py: Party) -> None:
    node.inject(PY_JID, py.bundle())
    kind, data = node.encrypt(PY_JID, b"hello from node")
    assert kind == "pkmsg"
    assert py.repo.decrypt(NODE_ADDR, "pkmsg", data) == b"hello from node"


def test_node_pkmsg_then_python_msg_and_fifty_alternating(node_peer: PeerFactory) -> None:
    node, py = node_peer(), _py()
    _node_to_python_session(node, py)
    kind, data = py.repo.encrypt(NODE_ADDR, b"hello from python")
    assert kind == "msg"
    assert node.decrypt(PY_JID, kind, data) == b"hello from python"
    for i in range(50):
        text = f"turn {i}".encode()
        if i % 2:
            kind, data = py.repo.encrypt(NODE_ADDR, text)
            assert kind == "msg"
            assert node.decrypt(PY_JID, kind, data) == text
        else:
            kind, data = node.encrypt(PY_JID, text)
            assert kind == "msg"  # Node's pendingPreKey went with our first reply
            assert py.repo.decrypt(NODE_ADDR, kind, data) == text


def test_out_of_order_duplicate_and_gap_from_node(node_peer: PeerFactory) -> None:
    node, py = node_peer(), _py()
    _node_to_python_session(node, py)
    py.repo.decrypt(NODE_ADDR, *node_reply(node, py))
    sent = [node.encrypt(PY_JID, f"n{i}".encode()) for i in range(8)]
    order = list(range(8))
    random.Random(7).shuffle(order)
    for i in order:
        assert py.repo.decrypt(NODE_ADDR, "msg", sent[i][1]) == f"n{i}".encode()
    with pytest.raises(DuplicateMessageError):
        py.repo.decrypt(NODE_ADDR, "msg", sent[3][1])
    held = node.encrypt(PY_JID, b"held back")
    for _ in range(2000):
        node.encrypt(PY_JID, b"lost")
    far = node.encrypt(PY_JID, b"too far")
    before = py.store.snapshot()
    with pytest.raises(TooFarAheadError):
        py.repo.decrypt(NODE_ADDR, "msg", far[1])
    assert py.store.snapshot() == before
    assert py.repo.decrypt(NODE_ADDR, "msg", held[1]) == b"held back"


def node_reply(node: NodePeer, py: Party) -> tuple[str, bytes]:
    """Python answers Node once (so Node leaves pkmsg) and returns Node's next message."""
    kind, data = py.repo.encrypt(NODE_ADDR, b"ack")
    node.decrypt(PY_JID, kind, data)
    return node.encrypt(PY_JID, b"after ack")


def test_out_of_order_duplicate_and_gap_from_python(node_peer: PeerFactory) -> None:
    node, py = node_peer(), _py()
    _node_to_python_session(node, py)
    sent = [py.repo.encrypt(NODE_ADDR, f"p{i}".encode()) for i in range(6)]
    for i in (2, 0, 5, 1, 4, 3):
        assert node.decrypt(PY_JID, *sent[i]) == f"p{i}".encode()
    node.decrypt_error(PY_JID, *sent[1])  # duplicate: refused
    held = py.repo.encrypt(NODE_ADDR, b"held")
    for _ in range(2001):
        py.repo.encrypt(NODE_ADDR, b"lost")
    far = py.repo.encrypt(NODE_ADDR, b"far")
    assert "No matching sessions" in node.decrypt_error(PY_JID, *far)
    assert node.decrypt(PY_JID, *held) == b"held"


def test_python_initiated_session_from_node_bundle(node_peer: PeerFactory) -> None:
    node, py = node_peer(), _py()
    py.repo.build_session(NODE_ADDR, node.bundle())  # checks the bundle's signed pre-key signature
    first = py.repo.encrypt(NODE_ADDR, b"py first")
    second = py.repo.encrypt(NODE_ADDR, b"py second")
    assert first[0] == second[0] == "pkmsg"
    assert node.decrypt(PY_JID, *first) == b"py first"
    assert node.decrypt(PY_JID, *second) == b"py second"
    kind, data = node.encrypt(PY_JID, b"node reply")
    assert kind == "msg"
    assert py.repo.decrypt(NODE_ADDR, kind, data) == b"node reply"
    kind, data = py.repo.encrypt(NODE_ADDR, b"py third")
    assert kind == "msg"
    assert node.decrypt(PY_JID, kind, data) == b"py third"
    # Without a one-time pre-key as well.
    other = node_peer("node2", jid="4915550003@s.whatsapp.net")
    address = SignalAddress("4915550003", 0)
    py.repo.build_session(address, other.bundle(pre_key=False))
    assert other.decrypt(PY_JID, *py.repo.encrypt(address, b"no opk")) == b"no opk"


def test_signatures_verify_both_ways(node_peer: PeerFactory) -> None:
    node, py = node_peer(), _py()
    rand = SeededRandom("signatures")
    identity = py.identity_pair()
    for i in range(24):
        message = rand(10 + i)
        node_signature = node.sign(message)
        assert keys.verify(node.identity, message, node_signature)
        assert not keys.verify(node.identity, message + b"!", node_signature)
        py_signature = keys.sign(identity.private, message, rand)
        assert node.verify(identity.public, message, py_signature)
        assert not node.verify(identity.public, message + b"!", py_signature)


def test_groups_both_ways_with_baileys_odd_iterations(node_peer: PeerFactory) -> None:
    node, py = node_peer(), _py()
    _node_to_python_session(node, py)
    sent = [node.group_encrypt(GROUP, f"g{i}".encode()) for i in range(7)]
    skdm = sent[0][1]
    py.repo.process_sender_key_distribution(GROUP, NODE_ADDR, skdm)
    order = list(range(7))
    random.Random(3).shuffle(order)
    for i in order:
        assert py.repo.group_decrypt(GROUP, NODE_ADDR, sent[i][0]) == f"g{i}".encode()
    with pytest.raises(DuplicateMessageError):
        py.repo.group_decrypt(GROUP, NODE_ADDR, sent[2][0])
    # Python's sender key to Node: SKDM first (it travels pairwise), then skmsgs, in order (Baileys 7
    # cannot use a skipped sender key it stored itself: see group._node_buffer).
    skmsg, py_skdm = py.repo.group_encrypt(GROUP, PY_ADDR, b"py g0")
    node.process_skdm(GROUP, PY_JID, py_skdm)
    assert node.group_decrypt(GROUP, PY_JID, skmsg) == b"py g0"
    for i in range(1, 6):
        skmsg, _ = py.repo.group_encrypt(GROUP, PY_ADDR, f"py g{i}".encode())
        assert node.group_decrypt(GROUP, PY_JID, skmsg) == f"py g{i}".encode()


def test_node_folder_imported_by_python_continues(node_peer: PeerFactory, tmp_path: Path) -> None:
    node, py = node_peer(), _py()
    _node_to_python_session(node, py)
    py.repo.decrypt(NODE_ADDR, *node_reply(node, py))
    late = node.encrypt(PY_JID, b"in flight during the move")
    node_skmsg, node_skdm = node.group_encrypt(GROUP, b"node group 0")
    py.repo.process_sender_key_distribution(GROUP, NODE_ADDR, node_skdm)
    assert py.repo.group_decrypt(GROUP, NODE_ADDR, node_skmsg) == b"node group 0"
    py_skmsg, py_skdm = py.repo.group_encrypt(GROUP, PY_ADDR, b"py group 0")
    node.process_skdm(GROUP, PY_JID, py_skdm)
    assert node.group_decrypt(GROUP, PY_JID, py_skmsg) == b"py group 0"
    node.close()
    # The Node device's folder, imported: a Python device with the same identity and sessions.
    moved = make_party("moved", address=NODE_ADDR, state=read_folder(node.folder))
    assert moved.repo.decrypt(PY_ADDR, "msg", py.repo.encrypt(NODE_ADDR, b"to the moved device")[1]) \
        == b"to the moved device"
    assert py.repo.decrypt(NODE_ADDR, *moved.repo.encrypt(PY_ADDR, b"from the moved device")) \
        == b"from the moved device"
    assert py.repo.decrypt(NODE_ADDR, *late) == b"in flight during the move"
    # Its sender keys: ours it received, and its own, which goes on from where Node left it.
    later, _ = py.repo.group_encrypt(GROUP, PY_ADDR, b"py group 1")
    assert moved.repo.group_decrypt(GROUP, PY_ADDR, later) == b"py group 1"
    skmsg, skdm = moved.repo.group_encrypt(GROUP, NODE_ADDR, b"node group 1")
    assert skdm != node_skdm
    assert py.repo.group_decrypt(GROUP, NODE_ADDR, skmsg) == b"node group 1"


def test_python_folder_continues_in_node(node_peer: PeerFactory, tmp_path: Path) -> None:
    node, py = node_peer(), _py()
    _node_to_python_session(node, py)
    py.repo.decrypt(NODE_ADDR, *node_reply(node, py))
    late = py.repo.encrypt(NODE_ADDR, b"in flight during the move")
    py_skmsg, py_skdm = py.repo.group_encrypt(GROUP, PY_ADDR, b"py group 0")
    node.process_skdm(GROUP, PY_JID, py_skdm)
    assert node.group_decrypt(GROUP, PY_JID, py_skmsg) == b"py group 0"
    node_skmsg, node_skdm = node.group_encrypt(GROUP, b"node group 0")
    py.repo.process_sender_key_distribution(GROUP, NODE_ADDR, node_skdm)
    assert py.repo.group_decrypt(GROUP, NODE_ADDR, node_skmsg) == b"node group 0"
    held_back, _ = node.group_encrypt(GROUP, b"node group held back")
    after, _ = node.group_encrypt(GROUP, b"node group after")
    assert py.repo.group_decrypt(GROUP, NODE_ADDR, after) == b"node group after"  # keeps held_back's key
    assert isinstance(py.store, MemoryAuthStore)
    folder = tmp_path / "exported"
    write_folder(py.store.snapshot(), folder)
    moved = node_peer("moved", jid=PY_JID, folder=folder)
    assert moved.identity == py.identity_public()[1:]
    kind, data = node.encrypt(PY_JID, b"to the moved device")
    assert moved.decrypt(NODE_JID, kind, data) == b"to the moved device"
    kind, data = moved.encrypt(NODE_JID, b"from the moved device")
    assert kind == "msg"
    assert node.decrypt(PY_JID, kind, data) == b"from the moved device"
    assert node.decrypt(PY_JID, *late) == b"in flight during the move"
    # Sender keys Python wrote (7.x format) go on in Node: its own and the one it received, whose
    # skipped key (stored by Python) Node uses.
    assert moved.group_decrypt(GROUP, NODE_JID, held_back) == b"node group held back"
    assert moved.group_decrypt(GROUP, NODE_JID, node.group_encrypt(GROUP, b"node group 1")[0]) == b"node group 1"
    skmsg, skdm = moved.group_encrypt(GROUP, b"py group 1")
    assert skdm != py_skdm
    assert node.group_decrypt(GROUP, PY_JID, skmsg) == b"py group 1"
    moved.reload()  # the state Node wrote back reads again
    assert node.decrypt(PY_JID, *moved.encrypt(NODE_JID, b"after reload")) == b"after reload"


def test_baileys6_sender_key_files_are_read(node_peer: PeerFactory) -> None:
    six = node_peer("six", jid="4915550006@s.whatsapp.net", baileys=6)
    seven = node_peer()
    own_skmsg, own_skdm = six.group_encrypt(GROUP, b"six 0")
    six.group_encrypt(GROUP, b"six 1")
    seven_skmsg, seven_skdm = seven.group_encrypt(GROUP, b"seven 0")
    six.process_skdm(GROUP, NODE_JID, seven_skdm)
    assert six.group_decrypt(GROUP, NODE_JID, seven_skmsg) == b"seven 0"
    six.close()
    state = read_folder(six.folder)
    own_key = sender_key_id(GROUP, SignalAddress("4915550006", 0))
    received_key = sender_key_id(GROUP, NODE_ADDR)
    stored = state.entries(SENDER_KEY) or {}
    assert isinstance(stored[own_key], list) and isinstance(stored[received_key], list)  # the 6.x format
    moved = make_party("six-moved", address=SignalAddress("4915550006", 0), state=state)
    # The sender key it received goes on...
    for i in range(1, 4):
        skmsg, _ = seven.group_encrypt(GROUP, f"seven {i}".encode())
        assert moved.repo.group_decrypt(GROUP, NODE_ADDR, skmsg) == f"seven {i}".encode()
    # ...and so does its own: Baileys 7 took its first SKDM and reads what Python sends next.
    seven.process_skdm(GROUP, "4915550006@s.whatsapp.net", own_skdm)
    assert seven.group_decrypt(GROUP, "4915550006@s.whatsapp.net", own_skmsg) == b"six 0"
    skmsg, _ = moved.repo.group_encrypt(GROUP, SignalAddress("4915550006", 0), b"six 2, from python")
    assert seven.group_decrypt(GROUP, "4915550006@s.whatsapp.net", skmsg) == b"six 2, from python"
    assert isinstance(moved.store.get_keys(SENDER_KEY, [own_key])[own_key], bytes)  # written back as 7.x


def test_lid_addresses_and_lid_mapping_carry_over_from_node(node_peer: PeerFactory) -> None:
    py_lid_jid, py_lid = "98765@lid", SignalAddress("98765", 0, 1)
    node_lid = SignalAddress("55555", 0, 1)
    node, py = node_peer(jid="55555@lid"), _py(address=py_lid)
    node.inject(py_lid_jid, py.bundle())
    assert py.repo.decrypt(node_lid, *node.encrypt(py_lid_jid, b"over lid")) == b"over lid"
    assert node.decrypt(py_lid_jid, *py.repo.encrypt(node_lid, b"back over lid")) == b"back over lid"
    node.call("lid_mapping", lid=py_lid_jid, pn=PY_JID)
    # Baileys 7 resolves the phone-number JID to the LID session.
    assert py.repo.decrypt(node_lid, *node.encrypt(PY_JID, b"to the pn jid")) == b"to the pn jid"
    node.close()
    state = read_folder(node.folder)
    assert "98765_1.0" in (state.entries("session") or {})
    assert (state.entries("lid-mapping") or {}).get("4915550001") == "98765"
    moved = make_party("moved-lid", address=node_lid, state=state)
    kind, data = py.repo.encrypt(node_lid, b"after the move")
    assert moved.repo.decrypt(PY_ADDR, kind, data) == b"after the move"  # the PN address, through lid-mapping
    assert py.repo.decrypt(node_lid, *moved.repo.encrypt(py_lid, b"and back")) == b"and back"


def test_node_written_session_files_round_trip_byte_for_byte(node_peer: PeerFactory) -> None:
    node, py = node_peer(), _py()
    _node_to_python_session(node, py)
    for i in range(6):  # a few turns: closed chains, skipped seeds, a second session
        if i == 3:
            node.inject(PY_JID, py.bundle())
        kind, data = node.encrypt(PY_JID, b"n")
        py.repo.decrypt(NODE_ADDR, kind, data)
        py.repo.encrypt(NODE_ADDR, b"never delivered")  # Node keeps its seed
        node.decrypt(PY_JID, *py.repo.encrypt(NODE_ADDR, b"p"))
    node.encrypt(PY_JID, b"held")
    node.decrypt(PY_JID, *py.repo.encrypt(NODE_ADDR, b"last"))
    text = (node.folder / f"session-{PY_ADDR.name}.json").read_text()
    record = SessionRecord.from_json(json.loads(text))
    assert len(record.sessions) == 2
    assert any(chain.message_keys for entry in record.sessions.values() for chain in entry.chains.values())
    assert json.dumps(record.to_json(), separators=(",", ":")) == text


def test_baileys6_folder_sessions_continue_in_python(node_peer: PeerFactory) -> None:
    six_jid, six_addr = "4915550006@s.whatsapp.net", SignalAddress("4915550006", 0)
    six, py = node_peer("six", jid=six_jid, baileys=6), _py()
    six.inject(PY_JID, py.bundle())
    assert py.repo.decrypt(six_addr, *six.encrypt(PY_JID, b"from baileys 6")) == b"from baileys 6"
    assert six.decrypt(PY_JID, *py.repo.encrypt(six_addr, b"to baileys 6")) == b"to baileys 6"
    late = six.encrypt(PY_JID, b"in flight")
    six.close()
    moved = make_party("six-moved", address=six_addr, state=read_folder(six.folder))
    assert py.repo.decrypt(six_addr, *late) == b"in flight"
    assert py.repo.decrypt(six_addr, *moved.repo.encrypt(PY_ADDR, b"moved")) == b"moved"
    assert moved.repo.decrypt(PY_ADDR, *py.repo.encrypt(six_addr, b"back")) == b"back"
