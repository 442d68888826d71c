# ruff: noqa: E402
"""Benchmark: incoming messages through one connector to Pub/Sub accepted (the receive half).

Setup (not timed): emulators, the functions gateway, the simulator (child processes); N accounts are
companion devices of one simulated phone (paired over QR, logged in once, stored in the vault with
an account record), and ``--contacts`` other simulated phones. A connector (``python -m connector``)
claims all N; then each contact sends one message to the phone, which the simulator fans out to
every device: each account now holds one live session per contact (``--contacts`` 20).

Memory: the connector's RSS once idle holding the N accounts and their sessions, minus the RSS of an
identical connector holding no account, divided by N.

Timed: every contact sends ``--rounds`` messages to the phone, concurrently (``--rounds`` x contacts
x N messages reach the connector); the clock runs from the first send until the connector's
``/metrics`` counts every one of them acknowledged (published, accepted by Pub/Sub, its Signal
state durable, the receipt sent). Prints messages per second, the connector's CPU per message (from
/proc), and receive -> published p50/p99 (the connector's ``keeper_connector_message_publish_seconds``
histogram: from the link handing the decrypted message over to Pub/Sub accepting its event,
interpolated within its buckets).

Not measured here yet: the same workload with Baileys 7 (see the report of issue 15).

    .venv/bin/python bench/messages.py [--accounts 100] [--contacts 20] [--rounds 5]
"""

from __future__ import annotations

import sys
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(_BENCH.parent))

import argparse
import asyncio
import os
import re
import time
import urllib.request
import uuid
from typing import Any

from connector_restore import PROJECT, connector, rss_mib, seed, wait_logged_in

from keeper.procs import http_ok
from simulator.testing import ControlClient, simulator_process
from testkit.bench_processes import BenchProcesses
from testkit.connector_stack import start_stack

PHONE = "+40730000000"  # connector_restore.seed's first phone: the N accounts are its companions


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return str(response.read().decode())


def counter(text: str, name: str, label: str) -> float:
    match = re.search(rf'^{name}\{{[a-z]+="{label}"\}} ([0-9.e+]+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def histogram(text: str, name: str) -> list[tuple[float, float]]:
    """Cumulative buckets ``(upper bound s, count)``."""
    found = [(float("inf") if le == "+Inf" else float(le), float(count))
             for le, count in re.findall(rf'^{name}_bucket\{{le="([^"]+)"\}} ([0-9.e+]+)$', text, re.M)]
    return sorted(found)


def quantile(buckets: list[tuple[float, float]], before: list[tuple[float, float]], q: float) -> float:
    """The q-quantile of what was observed between two scrapes, linear within a bucket."""
    old = dict(before)
    counts = [(le, count - old.get(le, 0.0)) for le, count in buckets]
    total = counts[-1][1]
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for le, cumulative in counts:
        if cumulative >= rank:
            if le == float("inf"):
                return lower
            inside = cumulative - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, cumulative
    return lower


async def wait_for(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout_s:.0f} s")
        await asyncio.sleep(0.2)


async def send_all(control: ControlClient, contacts: list[str], rounds: int, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(contact: str, i: int) -> None:
        async with gate:
            await control.request("POST", f"/v1/phones/{contact}/messages", {"to": PHONE, "text": f"bench {i}"})

    await asyncio.gather(*(one(c, i) for i in range(rounds) for c in contacts))


async def stall_report(control: ControlClient, port: int) -> None:
    """What a stalled wait leaves: the connector's message outcomes, and the devices holding messages
    the simulator delivered but the connector never acknowledged."""
    text = scrape(port)
    outcomes = re.findall(r'^keeper_connector_messages_total\{outcome="([a-z_]+)"\} ([0-9.e+]+)$', text, re.M)
    print("stalled: connector outcomes " + ", ".join(f"{o}={float(v):.0f}" for o, v in outcomes), flush=True)
    devices = (await control.request("GET", f"/v1/phones/{PHONE}/devices"))["devices"]
    for device in devices:
        device_id = device.get("device", device.get("id"))
        if not device_id:
            continue
        pending = (await control.request("GET", f"/v1/phones/{PHONE}/devices/{device_id}/messages"))["messages"]
        if pending:
            kinds = sorted({m["encType"] for m in pending})
            print(f"stalled: device {device_id}: {len(pending)} unacknowledged ({', '.join(kinds)}); {device}",
                  flush=True)


async def wait_acked(control: ControlClient, port: int, target: float, timeout_s: float, what: str) -> None:
    try:
        await wait_for(lambda: acked(port) >= target, timeout_s, what)
    except RuntimeError:
        await stall_report(control, port)
        raise


def acked(port: int) -> float:
    return counter(scrape(port), "keeper_connector_messages_total", "acked")


async def run(args: argparse.Namespace, sim: Any, stack: Any, children: Any) -> None:
    await seed(args, sim)
    control = sim.control()
    contacts = [f"+4075{i:07d}" for i in range(args.contacts)]
    for contact in contacts:
        await control.create_phone(contact)

    empty, empty_port = connector(children, stack, sim, "bench-empty", capacity=0)
    await wait_for(lambda: http_ok(f"http://127.0.0.1:{empty_port}/readyz"), 60, "empty connector ready")
    await asyncio.sleep(args.idle_s)
    assert empty.process is not None
    baseline = rss_mib(empty.process.pid)
    empty.stop()

    proc, port = connector(children, stack, sim, "bench-messages", capacity=args.accounts)
    opened = await asyncio.to_thread(wait_logged_in, sim, args.accounts, 300)
    print(f"setup: connector holds {opened} accounts", flush=True)
    await send_all(control, contacts, 1, args.concurrency)  # one live session per contact and account
    sessions = args.contacts * args.accounts
    await wait_acked(control, port, sessions, args.wait_s, "first messages acknowledged")
    await asyncio.sleep(args.idle_s)
    assert proc.process is not None
    idle = rss_mib(proc.process.pid)
    per_account_kib = (idle - baseline) * 1024 / args.accounts
    print(f"memory: {idle:.0f} MiB RSS holding {args.accounts} accounts with {args.contacts} live sessions each, "
          f"{baseline:.0f} MiB empty -> {per_account_kib:.0f} KiB per idle account (target < 256)", flush=True)

    before_text = scrape(port)
    before_acked = counter(before_text, "keeper_connector_messages_total", "acked")
    before_latency = histogram(before_text, "keeper_connector_message_publish_seconds")
    cpu_before = cpu_s(proc.process.pid)
    total = args.rounds * args.contacts * args.accounts
    started = time.monotonic()
    sending = asyncio.create_task(send_all(control, contacts, args.rounds, args.concurrency))
    await wait_acked(control, port, before_acked + total, args.wait_s, "messages acknowledged")
    elapsed = time.monotonic() - started
    await sending
    cpu = cpu_s(proc.process.pid) - cpu_before
    after = scrape(port)
    latency = histogram(after, "keeper_connector_message_publish_seconds")
    undecryptable = sum(float(v) for v in re.findall(
        r"^keeper_connector_messages_undecryptable_total\{[^}]*\} ([0-9.e+]+)$", after, re.M))
    p50, p99 = quantile(latency, before_latency, 0.50), quantile(latency, before_latency, 0.99)
    print(f"throughput: {total} messages ({args.rounds} rounds x {args.contacts} contacts x {args.accounts} accounts) "
          f"acknowledged in {elapsed:.1f} s = {total / elapsed:.0f} messages/s (target >= 1,000)", flush=True)
    print(f"connector CPU: {cpu:.1f} s = {cpu * 1e3 / total:.2f} ms per message", flush=True)
    print(f"receive -> published: p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms (target p99 < 50 ms; "
          "bucket-interpolated)", flush=True)
    print(f"undecryptable: {undecryptable:.0f}", flush=True)
    proc.stop(grace_s=15)
    await control.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=100)
    parser.add_argument("--contacts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16, help="pairings and contact sends in flight")
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--wait-s", type=float, default=600.0, help="how long a phase may wait for its acks")
    args = parser.parse_args()
    if args.accounts > 100:
        parser.error("the accounts are companions of one simulated phone: at most 100")
    processes = BenchProcesses("bench-messages-")
    tmp, children = processes.tmp, processes.children
    try:
        processes.start_emulators(PROJECT)
        stack = start_stack(children, PROJECT, uuid.uuid4().hex[:8], tmp / "home", lease_ttl_s=30)
        with simulator_process(log_path=tmp / "simulator.log") as sim:
            asyncio.run(run(args, sim, stack, children))
    finally:
        processes.stop_all()


if __name__ == "__main__":
    main()
