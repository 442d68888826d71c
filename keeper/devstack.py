"""The local stack: each part a child process, started in order, stopped together.

`keeper up` runs `keeper emulators`, `keeper functions`, `keeper simulator` and `keeper connector` as child
processes with one shared configuration (`keeper.config.StackConfig`), so what it runs is exactly what an
operator runs to restart one part alone. A part whose command does not exist yet is reported and skipped;
a part whose port already answers is assumed to be running already and is left alone.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from keeper import emulators
from keeper.cli import available_commands
from keeper.config import StackConfig
from keeper.procs import ChildProcess, ProcessError, http_ok, port_open

POLL_S = 0.5
PART_STOP_GRACE_S = 20.0
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Part:
    """One service of the local stack."""

    name: str
    command: str
    port_key: str
    ready_path: str | None  # HTTP path that answers when ready; None = TCP port only
    describe: Callable[[StackConfig], str]


PARTS: tuple[Part, ...] = (
    Part("emulators", "emulators", "pubsub", None,
         lambda c: (f"Firestore http://{c.address('firestore')}  Pub/Sub {c.address('pubsub')}  "
                    f"Auth http://{c.address('auth')}")),
    Part("functions", "functions", "functions", None,
         lambda c: f"{c.functions_base}/<function>"),
    Part("simulator", "simulator", "simulator", "/healthz",
         lambda c: f"ws://{c.address('simulator')}/ws/chat  control http://{c.address('simulator')}/v1"),
    Part("connector", "connector", "connector", "/healthz",
         lambda c: f"http://{c.address('connector')}/healthz /readyz /metrics"),
)


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def _keeper_argv(command: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "keeper.cli", command, *extra]


def _child_env(config: StackConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(config.emulator_env())
    env.setdefault("KEEPER_CONNECTOR_TOKEN", "local-dev-connector-token")
    env.setdefault("PORT", str(config.ports["connector"]))
    return env


def _ready_check(config: StackConfig, part: Part) -> Callable[[], bool]:
    host, port = "127.0.0.1", config.ports[part.port_key]
    if part.ready_path is None:
        if part.name == "emulators":
            # the Auth emulator (firebase-tools) is part of it when installed; it is the slowest to start
            keys = ("firestore", "pubsub", "auth") if emulators.firebase_tools() else ("firestore", "pubsub")

            def all_emulators() -> bool:
                return all(port_open(host, config.ports[k]) for k in keys)
            return all_emulators
        return lambda: port_open(host, port)
    url = f"http://{host}:{port}{part.ready_path}"
    return lambda: http_ok(url)


def _supervise(children: Sequence[ChildProcess], for_seconds: float | None) -> int:
    """Wait until Ctrl-C / SIGTERM / the time limit; report children that exit on their own."""
    reported: set[str] = set()
    deadline = None if for_seconds is None else time.monotonic() + for_seconds
    while deadline is None or time.monotonic() < deadline:
        for child in children:
            if not child.running and child.name not in reported:
                reported.add(child.name)
                code = child.process.returncode if child.process else None
                print(f"keeper: {child.name} exited (code {code}); last log lines:\n{child.log_tail(15)}",
                      flush=True)
        time.sleep(POLL_S)
    return 0


def _run_children(specs: list[tuple[Part | None, ChildProcess]], config: StackConfig,
                  for_seconds: float | None, *, independent: bool = False) -> int:
    """Start ``specs`` in order, supervise, stop them: in reverse order (the connector releases its
    leases through the functions), or all at once when ``independent`` (the emulators: each may take
    seconds to shut its JVM down, and one after another they made Ctrl-C slow)."""
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    # Ctrl-C stops the stack even when this process was started with SIGINT ignored (a background job
    # of a non-interactive shell inherits that, and Python then never raises KeyboardInterrupt).
    previous_int = signal.signal(signal.SIGINT, _raise_stop)
    started: list[ChildProcess] = []
    code = 0
    try:
        for part, child in specs:
            label = part.name if part else child.name
            print(f"keeper: starting {label} (log: {child.log_path})", flush=True)
            started.append(child)  # before start(): an interrupt during start must still stop it
            child.start()
            if part is not None:
                print(f"keeper: {label:<10} {part.describe(config)}", flush=True)
        print("keeper: local stack is up; Ctrl-C stops it", flush=True)
        code = _supervise(started, for_seconds)
    except ProcessError as exc:
        print(f"keeper: {exc}", file=sys.stderr, flush=True)
        code = 1
    except (KeyboardInterrupt, _Stop):
        print("\nkeeper: stopping", flush=True)
    finally:
        if independent and len(started) > 1:
            with ThreadPoolExecutor(len(started)) as pool:
                list(pool.map(lambda child: child.stop(), started))
            for child in reversed(started):
                print(f"keeper: stopped {child.name}", flush=True)
        else:
            for child in reversed(started):
                child.stop()
                print(f"keeper: stopped {child.name}", flush=True)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    return code


def run_stack(only: Sequence[str] | None = None, for_seconds: float | None = None,
              config: StackConfig | None = None) -> int:
    config = config or StackConfig.from_env()
    log_dir = config.home / "logs"
    commands = set(available_commands())
    env = _child_env(config)
    wanted = set(only) if only else {p.name for p in PARTS}
    unknown = wanted - {p.name for p in PARTS}
    if unknown:
        print(f"keeper: unknown part(s) {', '.join(sorted(unknown))}; parts are "
              f"{', '.join(p.name for p in PARTS)}", file=sys.stderr)
        return 2
    specs: list[tuple[Part | None, ChildProcess]] = []
    for part in PARTS:
        if part.name not in wanted:
            continue
        if part.command not in commands:
            print(f"keeper: {part.name}: not built yet, not started", flush=True)
            continue
        if _ready_check(config, part)():
            print(f"keeper: {part.name}: already answering on port {config.ports[part.port_key]}, "
                  "leaving it alone", flush=True)
            continue
        specs.append((part, ChildProcess(
            part.name, _keeper_argv(part.command), log_path=log_dir / f"{part.name}.log", env=env,
            cwd=REPO_ROOT, ready=_ready_check(config, part), ready_timeout_s=180.0,
            # a part stops its own children first (the connector has an 8 s shutdown budget)
            stop_grace_s=PART_STOP_GRACE_S,
        )))
    print(f"keeper: project {config.project}, region {config.region}, state in {config.home}", flush=True)
    return _run_children(specs, config, for_seconds)


def run_emulators(with_auth: bool = True, config: StackConfig | None = None) -> int:
    """`keeper emulators`: Firestore, Pub/Sub and (when firebase-tools is installed) Auth."""
    config = config or StackConfig.from_env()
    log_dir = config.home / "logs"
    try:
        specs: list[tuple[Part | None, ChildProcess]] = [
            (None, emulators.firestore(config.ports["firestore"], log_dir=log_dir,
                                       rules=REPO_ROOT / "firestore.rules")),
            (None, emulators.pubsub(config.ports["pubsub"], project=config.project, log_dir=log_dir,
                                    data_dir=config.home / "pubsub")),
        ]
        if with_auth:
            if emulators.firebase_tools() is None:
                print("keeper: auth emulator not started: firebase-tools is not installed (run `make npm`)",
                      flush=True)
            else:
                specs.append((None, emulators.auth(config.ports["auth"], project=config.project,
                                                   log_dir=log_dir)))
    except emulators.EmulatorMissing as exc:
        print(f"keeper: {exc}", file=sys.stderr)
        return 1
    addresses = {"firestore-emulator": f"http://{config.address('firestore')}",
                 "pubsub-emulator": config.address("pubsub"), "auth-emulator": f"http://{config.address('auth')}"}
    for _, child in specs:
        print(f"keeper: {child.name:<18} {addresses[child.name]}", flush=True)
    return _run_children(specs, config, None, independent=True)
