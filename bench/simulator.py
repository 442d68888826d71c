"""Benchmark: the simulator holding 1,000 logged-in device sockets.

Runs the simulator as a child process (``python -m simulator``, in-memory state), pairs N companion
devices over QR (scripted companions, spread over phones of 4 devices), then logs all N in at
once and holds them. Prints: pairing time, time until all N got ``<success>``, the simulator's RSS
before and while holding, ping round trips across every held socket, and the live-socket count the
control API reports. Then the relay: every device sends ``--messages`` 1:1 messages (one ``<enc>`` of
``MESSAGE_BYTES`` each) to a device of another phone, each receiver confirms each with a receipt
(routed back to the sender); prints messages relayed per second (sent until the last one arrived)
and the simulator's CPU per relayed message (server ack, delivery, queueing, receipt routing).

    .venv/bin/python bench/simulator.py [--devices 1000] [--concurrency 100] [--messages 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from connector.protocol.binary import Node  # noqa: E402
from simulator.companion import ScriptedCompanion  # noqa: E402
from simulator.testing import ControlClient, SimulatorHandle, simulator_process  # noqa: E402

DEVICES_PER_PHONE = 4  # WhatsApp's limit of linked companions; a receipt goes to each of the sender's devices
MESSAGE_BYTES = 160  # about a short text's pkmsg/msg
T = TypeVar("T")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def pair_one(sim: SimulatorHandle, control: ControlClient, phone: str) -> ScriptedCompanion:
    companion = ScriptedCompanion(sim.ws_url, sim.root_public_key)
    refs = await companion.connect_and_register(timeout=60)
    await control.scan(phone, companion.qr(refs[0]))
    await companion.complete_pairing(timeout=60)
    await companion.wait_closed(timeout=60)
    return companion


async def bounded(concurrency: int, coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    gate = asyncio.Semaphore(concurrency)

    async def run(coro: Coroutine[Any, Any, T]) -> T:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(run(c) for c in coros)))


async def relay_round(companions: list[ScriptedCompanion], messages: int) -> tuple[int, float]:
    """Each companion sends ``messages`` to its peer on the next phone; each peer confirms every one
    with a receipt. Returns (messages delivered, seconds until the last one arrived)."""
    peers = {id(c): companions[(i + DEVICES_PER_PHONE) % len(companions)] for i, c in enumerate(companions)}
    delivered = 0

    async def send(companion: ScriptedCompanion) -> None:
        peer = peers[id(companion)]
        user, device = peer.creds.user, peer.creds.device_id
        for n in range(messages):
            enc = Node("enc", {"v": "2", "type": "msg"}, os.urandom(MESSAGE_BYTES))
            to = Node("to", {"jid": f"{user}:{device}@s.whatsapp.net"}, [enc])
            message_id = f"3EB0{companion.creds.user[-4:]}{companion.creds.device_id:04d}{n:04d}"
            await companion.send(Node("message", {"id": message_id, "to": f"{user}@s.whatsapp.net", "type": "text"},
                                      [Node("participants", {}, [to])]))

    async def receive(companion: ScriptedCompanion) -> None:
        nonlocal delivered
        for _ in range(messages):
            got = await companion.wait_for(lambda n: n.tag == "message", timeout=120)
            delivered += 1
            await companion.send(Node("receipt", {"id": got.attrs["id"], "to": got.attrs["from"]}))

    started = time.perf_counter()
    await asyncio.gather(*(send(c) for c in companions), *(receive(c) for c in companions))
    elapsed = time.perf_counter() - started
    for companion in companions:  # the server acks and the routed receipts, not measured further
        companion.inbox.clear()
    return delivered, elapsed


async def bench(devices: int, concurrency: int, messages: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, simulator_process(log_path=Path(tmp) / "sim.log") as sim:
        assert sim.process is not None and sim.process.process is not None
        pid = sim.process.process.pid
        async with sim.control() as control:
            phones = [f"+4071{i:07d}" for i in range((devices + DEVICES_PER_PHONE - 1) // DEVICES_PER_PHONE)]
            for phone in phones:
                await control.create_phone(phone)
            rss_idle = rss_mib(pid)

            started = time.perf_counter()
            companions = await bounded(
                concurrency, [pair_one(sim, control, phones[i // DEVICES_PER_PHONE]) for i in range(devices)]
            )
            pairing_s = time.perf_counter() - started
            rss_paired = rss_mib(pid)

            started, cpu_before = time.perf_counter(), cpu_s(pid)
            results = await asyncio.gather(*(c.connect_and_login(timeout=120) for c in companions))
            login_s = time.perf_counter() - started
            login_cpu_s = cpu_s(pid) - cpu_before
            succeeded = sum(1 for r in results if r.tag == "success")
            health = await control.healthz()
            rss_holding = rss_mib(pid)

            started = time.perf_counter()
            rtts: list[float] = []

            async def ping(companion: ScriptedCompanion) -> None:
                t0 = time.perf_counter()
                await companion.iq("w:p", "get", [Node("ping")], timeout=60)
                rtts.append(time.perf_counter() - t0)

            await asyncio.gather(*(ping(c) for c in companions))
            ping_all_s = time.perf_counter() - started
            live = 0
            for phone in phones:
                live += sum(d["liveSockets"] for d in await control.devices(phone))

            await asyncio.sleep(2)
            rss_after_hold = rss_mib(pid)

            await relay_round(companions[: min(len(companions), 2 * DEVICES_PER_PHONE)], 1)  # warm-up
            cpu_before = cpu_s(pid)
            delivered, relay_s = await relay_round(companions, messages)
            relay_cpu_s = cpu_s(pid) - cpu_before
            relayed_total = (await control.healthz())["relayedTotal"]
            for companion in companions:
                await companion.close()

    rtts.sort()
    per_socket_kib = (rss_holding - rss_paired) * 1024 / max(succeeded, 1)
    p99_ms = rtts[int(len(rtts) * 0.99) - 1] * 1000
    print(f"devices paired over QR:        {devices} in {pairing_s:.1f} s "
          f"({devices / pairing_s:.0f}/s, concurrency {concurrency})")
    print(f"concurrent logins accepted:    {succeeded}/{devices} in {login_s:.2f} s ({succeeded / login_s:.0f}/s); "
          f"simulator CPU {login_cpu_s:.2f} s ({login_cpu_s * 1000 / max(succeeded, 1):.2f} ms per login)")
    print(f"machine load average:          {os.getloadavg()[0]:.1f} (client and simulator share the cores)")
    print(f"live sockets (control API):    {live}; simulator reports {health['loggedIn']} logged in, "
          f"{health['sockets']} sockets")
    print(f"ping round trip, all at once:  {ping_all_s:.2f} s total; "
          f"median {statistics.median(rtts) * 1000:.1f} ms, p99 {p99_ms:.1f} ms")
    print(f"simulator RSS idle:            {rss_idle:.1f} MiB")
    print(f"simulator RSS after pairing:   {rss_paired:.1f} MiB")
    print(f"simulator RSS holding {succeeded}:    {rss_holding:.1f} MiB ({per_socket_kib:.1f} KiB per socket), "
          f"{rss_after_hold:.1f} MiB 2 s later")
    print(f"messages relayed, {succeeded} connected: {delivered} in {relay_s:.2f} s ({delivered / relay_s:.0f}/s; "
          f"{messages} per device, each confirmed by a receipt routed back); simulator relayed {relayed_total} "
          f"stanzas in total")
    print(f"simulator CPU per message:     {relay_cpu_s * 1000 / max(delivered, 1):.3f} ms "
          f"({relay_cpu_s:.2f} CPU-s for {delivered}: ack, delivery, queue, receipt routing)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--messages", type=int, default=5, help="1:1 messages each device sends")
    args = parser.parse_args()
    asyncio.run(bench(args.devices, args.concurrency, args.messages))


if __name__ == "__main__":
    main()
