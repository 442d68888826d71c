"""Benchmark of the Signal layer next to libsignal-node, in the same run.

CPU per operation of :class:`connector.protocol.signal.repository.SignalRepository` over a
``MemoryAuthStore`` (every call reads its records from the store and writes them back, as in the
connector), and of the same operations in Baileys 7's Signal layer (libsignal 6.0.0 plus Baileys'
group cipher) over an in-memory key store (``bench/signal_node.mjs``):

- ``encrypt``: a ``msg`` for one device on an established session;
- ``msg``: decrypt of a ``msg`` on the current receiving chain;
- ``msg (ratchet step)``: decrypt of a ``msg`` answering ours (a DH ratchet step each);
- ``pkmsg``: decrypt of a first message from a new device (X3DH as responder, pre-key consumed);
- ``skmsg`` and ``group encrypt``: sender-key messages. Baileys sends every other iteration, so
  a receiver's record grows by a skipped key per message (up to 2000, ~200 KB): both sides decrypt
  what a Baileys sender sends; ours sends consecutive iterations (its own row).

Then the bytes a session record (its JSON as stored) grows per 1,000 messages, one way and
alternating (every message a ratchet step: libsignal-node keeps every closed receiving chain).

    .venv/bin/python bench/signal_cipher.py [-n 1000] [--profile msg|pkmsg|skmsg|encrypt]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connector.protocol import prekeys  # noqa: E402
from connector.protocol.signal import group  # noqa: E402
from connector.protocol.signal.repository import SignalRepository  # noqa: E402
from connector.protocol.signal.types import PreKeyBundle, SignalAddress  # noqa: E402
from shared.authstate import SESSION, AuthState  # noqa: E402
from shared.authstore import MemoryAuthStore  # noqa: E402
from shared.bufferjson import dumps  # noqa: E402

T = TypeVar("T")
TEXT = bytes([7]) * 64
GROUP = "120363000000000001@g.us"


class Device:
    def __init__(self, user: str, seed: int) -> None:
        import random

        rng = random.Random(seed)
        self.random = rng.randbytes
        self.clock = iter(range(1_700_000_000_000, 1_800_000_000_000))
        self.store = MemoryAuthStore(AuthState.generate(self.random))
        self.address = SignalAddress(user, 0)
        self.repo = SignalRepository(self.store, random_bytes=self.random, now_ms=lambda: next(self.clock))

    def bundle(self) -> PreKeyBundle:
        creds = self.store.get_creds()
        batch = prekeys.prepare_pre_keys(self.store, 1, self.random)
        prekeys.mark_uploaded(self.store, batch)
        signed = creds.signed_pre_key
        return PreKeyBundle(creds.registration_id, creds.signed_identity_key.public, signed.key_id,
                            signed.key_pair.public, signed.signature, batch.keys[0][0], batch.keys[0][1])

    def record_bytes(self, peer: Device) -> int:
        value = self.store.get_keys(SESSION, [peer.address.name])[peer.address.name]
        return len(dumps(value))


def cpu_ms_per(items: Iterable[T], fn: Callable[[T], object]) -> float:
    items = list(items)
    start = time.process_time()
    for item in items:
        fn(item)
    return (time.process_time() - start) * 1000 / len(items)


def paired() -> tuple[Device, Device]:
    alice, bob = Device("4915550001", 1), Device("4915550002", 2)
    alice.repo.build_session(bob.address, bob.bundle())
    bob.repo.decrypt(alice.address, *alice.repo.encrypt(bob.address, b"hello"))
    alice.repo.decrypt(bob.address, *bob.repo.encrypt(alice.address, b"hi"))
    return alice, bob


def python_figures(n: int) -> dict[str, float]:
    alice, bob = paired()
    sent: list[tuple[Any, bytes]] = []
    out: dict[str, float] = {}
    out["encrypt"] = cpu_ms_per(range(n), lambda _: sent.append(alice.repo.encrypt(bob.address, TEXT)))
    out["msg"] = cpu_ms_per(sent, lambda m: bob.repo.decrypt(alice.address, *m))
    ratchet = 0.0
    count = min(n, 200)
    for i in range(count):
        sender, receiver = (alice, bob) if i % 2 else (bob, alice)
        message = sender.repo.encrypt(receiver.address, TEXT)
        start = time.process_time()
        receiver.repo.decrypt(sender.address, *message)
        ratchet += time.process_time() - start
    out["ratchet"] = ratchet * 1000 / count
    pkmsgs = []
    for i in range(min(n, 200)):
        sender = Device(f"49160000{i:04d}", 100 + i)
        sender.repo.build_session(bob.address, bob.bundle())
        pkmsgs.append((sender.address, sender.repo.encrypt(bob.address, TEXT)))
    out["pkmsg"] = cpu_ms_per(pkmsgs, lambda item: bob.repo.decrypt(item[0], *item[1]))
    skmsgs: list[bytes] = []
    skdm: list[bytes] = []

    def group_encrypt(_: int) -> None:
        skmsg, distribution = alice.repo.group_encrypt(GROUP, alice.address, TEXT)
        skmsgs.append(skmsg)
        skdm.append(distribution)

    out["groupEncrypt"] = cpu_ms_per(range(n), group_encrypt)
    bob.repo.process_sender_key_distribution(GROUP, alice.address, skdm[0])
    out["skmsgConsecutive"] = cpu_ms_per(skmsgs, lambda data: bob.repo.group_decrypt(GROUP, alice.address, data))
    # What Baileys sends: iteration 0, then chain + 1, so the receiver keeps every other key.
    carol = Device("4915550003", 3)
    state = group.create_own_state(carol.random)
    bob.repo.process_sender_key_distribution(GROUP, carol.address, group.distribution_message(state))
    odd = []
    for _ in range(n):
        iteration = 0 if state.iteration == 0 else state.iteration + 1
        if iteration:
            state.message_seed(iteration - 1)
        odd.append(group.encrypt(state, TEXT, carol.random))
    out["skmsg"] = cpu_ms_per(odd, lambda data: bob.repo.group_decrypt(GROUP, carol.address, data))
    return out


def node_figures(n: int) -> dict[str, float]:
    result = subprocess.run(["node", str(ROOT / "bench" / "signal_node.mjs"), str(n)], cwd=ROOT, check=True,
                            capture_output=True, timeout=600)
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def growth() -> tuple[int, int, int]:
    """Record bytes after pairing, after 1,000 more one way, and after 1,000 alternating."""
    alice, bob = paired()
    start = bob.record_bytes(alice)
    for _ in range(1000):
        bob.repo.decrypt(alice.address, *alice.repo.encrypt(bob.address, TEXT))
    one_way = bob.record_bytes(alice)
    alice, bob = paired()
    for i in range(1000):
        sender, receiver = (alice, bob) if i % 2 else (bob, alice)
        receiver.repo.decrypt(sender.address, *sender.repo.encrypt(receiver.address, TEXT))
    return start, one_way, bob.record_bytes(alice)


LABELS = [("encrypt", "encrypt (msg, one device)"), ("msg", "decrypt msg"),
          ("ratchet", "decrypt msg (ratchet step)"), ("pkmsg", "decrypt pkmsg"),
          ("skmsg", "decrypt skmsg (Baileys sender)"), ("groupEncrypt", "group encrypt (skmsg)")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="messages per operation (pkmsg: at most 200)")
    parser.add_argument("--profile", choices=["msg", "pkmsg", "skmsg", "encrypt"], help="profile the Python side")
    args = parser.parse_args()
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        python_figures(args.n)
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
        return
    py = python_figures(args.n)
    node = node_figures(args.n)
    print(f"Signal layer, CPU ms per operation (n={args.n}; pkmsg and ratchet steps {min(args.n, 200)})")
    print(f"{'operation':30} {'python':>9} {'libsignal-node':>15} {'python/node':>12}")
    for key, label in LABELS:
        print(f"{label:30} {py[key]:9.4f} {node[key]:15.4f} {py[key] / node[key]:12.2f}")
    print(f"{'decrypt skmsg (our sender)':30} {py['skmsgConsecutive']:9.4f} {'-':>15} {'-':>12}")
    start, one_way, alternating = growth()
    print("\nsession record (stored JSON) bytes         python  libsignal-node")
    print(f"  after pairing                     {start:8d}  {int(node['growthStart']):8d}")
    print(f"  growth per 1,000 messages one way {one_way - start:8d}")
    print(f"  growth per 1,000 alternating      {alternating - start:8d}  {int(node['growthAlternating']):8d}")


if __name__ == "__main__":
    main()
