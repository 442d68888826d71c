"""The send half of the messages benchmark: ``sendMessage`` -> the server's ack, on the real local stack.

Starts the Firestore and Pub/Sub emulators, the functions gateway (push subscriptions on the
emulator), the simulator and one connector process (``python -m connector``), pairs an account by
code, then sends to a simulated phone one message at a time and prints, over the sends after a
warm-up:

- ``sendMessage`` answered (accepted: pending in the store, in the outbox);
- ``sendMessage`` called -> the server's ack handled by the connector (the send path: outbox pickup,
  device list, sessions, encryption, the persist-before-send snapshot, the stanza; read from the
  connector's ``send status`` log line, same machine clock; target p99 < 1 s);
- ``sendMessage`` called -> ``sent`` in Firestore (the status event back through Pub/Sub and
  ``recordMessageEvent``; polled every 10 ms).

Run: ``.venv/bin/python bench/messages_send.py [--sends 100]``. The receive half is ``bench/messages.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PROJECT = "demo-bench-messages"
ME, CONTACT = "+40700000051", "+40700000052"
WARMUP = 5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"{name}: n={len(ms)} p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
            f"max {max(ms):.1f} ms")


def acked_at(log_path: Path) -> dict[str, float]:
    """When the connector handled each send's server ack (its ``send status`` line, status sent)."""
    out: dict[str, float] = {}
    for text in log_path.read_text(errors="replace").splitlines():
        if '"send status"' not in text:
            continue
        entry = json.loads(text)
        if entry.get("status") == "sent":
            out[entry["messageId"]] = datetime.fromisoformat(entry["time"]).timestamp()
    return out


async def until(check: Any, timeout_s: float, what: str, pause_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not met within {timeout_s:.0f} s")
        await asyncio.sleep(pause_s)


async def run(sends: int) -> None:
    from google.cloud import firestore

    from keeper import emulators
    from keeper.procs import ChildProcess, free_port
    from simulator.testing import simulator_process
    from testkit.connector_stack import Stack, start_stack

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        fs_port, ps_port = free_port(), free_port()
        children: list[ChildProcess] = [emulators.firestore(fs_port, log_dir=home),
                                        emulators.pubsub(ps_port, project=PROJECT, log_dir=home)]
        for child in children:
            child.start()
        os.environ.update({"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{fs_port}",
                           "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ps_port}", "GOOGLE_CLOUD_PROJECT": PROJECT})

        def start_child(name: str, argv: list[str], **kwargs: Any) -> ChildProcess:
            proc = ChildProcess(name, argv, log_path=home / f"{name}.log", cwd=REPO_ROOT, **kwargs)
            proc.start()
            children.append(proc)
            return proc

        try:
            with simulator_process(log_path=home / "simulator.log", state_dir=home / "sim") as sim:
                stack: Stack = start_stack(start_child, PROJECT, "bench", home / "keeper", lease_ttl_s=30.0)
                proc, _ = stack.start_connector("c-bench", KEEPER_WA_URL=sim.ws_url,
                                                KEEPER_WA_ROOT_KEY=sim.root_public_key_b64)
                db = firestore.Client(project=PROJECT)
                async with sim.control() as control:
                    await control.create_phone(ME)
                    await control.create_phone(CONTACT)
                    account_id = await asyncio.to_thread(stack.add_account, ME, "code")
                    account = db.collection("accounts").document(account_id)
                    code = await until(lambda: ((account.get().to_dict() or {}).get("pairing") or {}).get("code"),
                                       60, "pairing code")
                    await control.link_code(ME, code)
                    await until(lambda: (account.get().to_dict() or {}).get("status") == "connected", 60,
                                "connected")
                    answered: list[float] = []
                    started_at: dict[str, float] = {}
                    stored: list[float] = []
                    for n in range(sends + WARMUP):
                        started = time.time()
                        result = await asyncio.to_thread(stack.call, "sendMessage", {
                            "accountId": account_id, "to": CONTACT, "text": f"bench {n}"})
                        took = time.time() - started
                        message_id = result["messageId"]
                        doc = account.collection("messages").document(message_id)
                        await until(lambda d=doc: (d.get().to_dict() or {}).get("status") in
                                    ("sent", "delivered", "read"), 30, f"send {n} sent", pause_s=0.01)
                        if n >= WARMUP:
                            answered.append(took)
                            started_at[message_id] = started
                            stored.append(time.time() - started)
                    assert proc.log_path is not None
                    acks = acked_at(proc.log_path)
                    to_ack = [acks[m] - t for m, t in started_at.items() if m in acks]
                    phone = await control.request("GET", f"/v1/phones/{CONTACT}/messages")
                    arrived = sum(1 for m in phone["messages"] if m["text"] and m["text"].startswith("bench "))
        finally:
            for child in reversed(children):
                child.stop()
    print(f"sends: {sends} (after {WARMUP} warm-up), arrived decrypted at the phone: {arrived - WARMUP}")
    print(line("sendMessage answered", answered))
    print(line("sendMessage -> server ack at the connector", to_ack))
    print(line("sendMessage -> sent in Firestore", stored))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=100)
    args = parser.parse_args()
    asyncio.run(run(args.sends))


if __name__ == "__main__":
    main()
