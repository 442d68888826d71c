"""sendMessage to the holding connector's dispatcher, and message events into the store, on the local stack.

Starts the Firestore and Pub/Sub emulators and the functions gateway (``keeper functions``, push delivery
off: events are posted the way the relay posts them), seeds a linked account, opens a connector's outbox
subscription (``connector/outbox.py``) and then measures, one request at a time:

- ``sendMessage`` answered (accepted into the outbox, pending in the store);
- ``sendMessage`` called -> the send handed to the connector's handler (the pickup; target p99 < 1 s);
- ``recordMessageEvent`` for a new incoming message (one transaction) and for its redelivery.

Run: ``.venv/bin/python -m bench.send_pickup [--sends 100] [--events 200]``.
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
import uuid
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

PROJECT = "demo-bench-send"
REGION = "us-central1"
PEER = "40711111111@s.whatsapp.net"


def emulator_id_token(project: str, uid: str) -> str:
    """An unsigned ID token as the Firebase Auth emulator issues them (the functions accept it in emulator mode)."""
    import base64

    now = int(time.time())
    claims = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "sub": uid, "user_id": uid,
              "iat": now, "exp": now + 3600, "auth_time": now, "firebase": {"sign_in_provider": "custom"}}

    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def line(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (f"{name}: n={len(ms)} p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
            f"max {max(ms):.1f} ms")


async def run(sends: int, events: int) -> None:
    import requests
    from google.cloud import firestore

    from connector.outbox import OutboxDispatcher, OutboxSubscription
    from functions.firestore_stores import account_to_doc
    from functions.model import Account, AccountStatus, PairingMethod
    from keeper import emulators
    from keeper.gateway import ensure_local_pubsub
    from keeper.procs import ChildProcess, free_port, http_ok
    from keeper.relay import Delivery, Route, cloud_event
    from shared.events import MessageKey, MessageReceived, OutboundSend

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        fs_port, ps_port, gw_port = free_port(), free_port(), free_port()
        children = [emulators.firestore(fs_port, log_dir=home),
                    emulators.pubsub(ps_port, project=PROJECT, log_dir=home)]
        for child in children:
            child.start()
        os.environ.update({"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{fs_port}",
                           "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ps_port}", "KEEPER_PROJECT": PROJECT,
                           "GOOGLE_CLOUD_PROJECT": PROJECT, "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9",
                           "KEEPER_HOME": str(home), "KEEPER_KEK_FILE": str(home / "kek.json")})
        gateway = ChildProcess("functions", [sys.executable, "-m", "keeper.cli", "functions", "--port", str(gw_port),
                                             "--no-pubsub"], log_path=home / "functions.log", env=dict(os.environ),
                               cwd=REPO_ROOT, ready=lambda: http_ok(f"http://127.0.0.1:{gw_port}/"),
                               ready_timeout_s=90.0)
        gateway.start()
        children.append(gateway)
        try:
            base = f"http://127.0.0.1:{gw_port}/{PROJECT}/{REGION}"
            ensure_local_pubsub(PROJECT, base)
            client = firestore.Client(project=PROJECT)
            now = datetime.now(UTC)
            client.collection("accounts").document("bench-1").set(account_to_doc(Account(
                account_id="bench-1", owner_uid="bench", phone_number="+40700000001", method=PairingMethod.CODE,
                status=AccountStatus.CONNECTED, serve=False, created_at=now, updated_at=now,
                linked_jid="40700000001:4@s.whatsapp.net")))
            headers = {"Content-Type": "application/json",
                       "Authorization": f"Bearer {emulator_id_token(PROJECT, 'bench')}"}
            session = requests.Session()

            handed: dict[str, float] = {}
            arrived = asyncio.Event()

            async def handler(send: OutboundSend) -> None:
                handed[send.message_id] = time.perf_counter()
                arrived.set()

            dispatcher = OutboxDispatcher(lambda account: account == "bench-1", handler)
            feed = OutboxSubscription(PROJECT, "outbox", f"bench-{uuid.uuid4().hex[:6]}", dispatcher.offer)
            await feed.start()
            answered: list[float] = []
            picked: list[float] = []
            try:
                for n in range(sends + 5):
                    arrived.clear()
                    started = time.perf_counter()
                    response = await asyncio.to_thread(
                        session.post, f"{base}/sendMessage", headers=headers, timeout=30,
                        data=json.dumps({"data": {"accountId": "bench-1", "to": PEER, "text": f"bench {n}"}}))
                    took = time.perf_counter() - started
                    message_id = response.json()["result"]["messageId"]
                    await asyncio.wait_for(arrived.wait(), 10)
                    if n >= 5:  # the first few warm the gateway and the subscription
                        answered.append(took)
                        picked.append(handed[message_id] - started)
            finally:
                await feed.close()
                await dispatcher.close()

            route = Route("recordMessageEvent", f"projects/{PROJECT}/topics/messages",
                          f"projects/{PROJECT}/subscriptions/bench", f"{base}/recordMessageEvent")
            new: list[float] = []
            again: list[float] = []
            for n in range(events):
                event = MessageReceived("bench-1", MessageKey(PEER, False, f"3EB0BENCH{n:08d}"),
                                        {"conversation": f"incoming {n}"}, PEER, PEER, int(time.time()), "text",
                                        f"incoming {n}", "Peer")
                for timings in (new, again):
                    request_headers, body = cloud_event(route, Delivery(str(n), event.to_json(), event.attributes(),
                                                                         datetime.now(UTC)))
                    started = time.perf_counter()
                    response = session.post(route.endpoint, data=body, headers=request_headers, timeout=30)
                    assert response.status_code == 200, response.text
                    timings.append(time.perf_counter() - started)
            chat = client.collection("accounts").document("bench-1").collection("chats").document(PEER).get()
            assert chat.to_dict()["unreadCount"] == events
        finally:
            for child in reversed(children):
                child.stop()
    print(line("sendMessage answered", answered))
    print(line("sendMessage -> connector handler (pickup)", picked))
    print(line("recordMessageEvent, new message", new))
    print(line("recordMessageEvent, redelivery", again))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=100)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.sends, args.events))


if __name__ == "__main__":
    main()
