"""The local stack: each part a child process, started in order, stopped together.

`keeper up` runs `keeper emulators`, `keeper functions`, `keeper simulator` and `keeper connector` as child
processes with one shared configuration (`keeper.config.StackConfig`), so what it runs is exactly what an
operator runs to restart one part alone. A part whose command does not exist yet is reported and skipped;
a part whose port already answers is assumed to be running already and is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from keeper import emulators, firestore_data
from keeper.cli import available_commands
from keeper.config import StackConfig, interval_s
from keeper.procs import ChildProcess, ProcessError, StartCancelled, http_ok, port_open

POLL_S = 0.5
PART_STOP_GRACE_S = 20.0
#: How often `keeper emulators` saves the Firestore emulator's documents (also once when it stops).
DEFAULT_EXPORT_INTERVAL_S = 10.0
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
    Part("web", "web", "web", "/",
         lambda c: f"http://{c.address('web')}/  (the web app, on the emulators)"),
)


class StopRequest:
    """SIGINT / SIGTERM handlers that only record the request; the start loop and the supervisor poll it.

    A terminal's Ctrl-C reaches every process of the foreground group, and make passes a SIGTERM on to
    its child: `make up` gets two signals for one stop. Raising from the handler would interrupt the
    cleanup the first one started (and orphan the children); so the first signal starts the stop, later
    ones only say it is under way. Children run in their own sessions and are stopped by the cleanup.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            os.write(2, b"keeper: already stopping\n")  # os.write: print() is not reentrant
        self.requested = True

    def __enter__(self) -> StopRequest:
        # SIGINT explicitly too: a background job of a non-interactive shell inherits it ignored
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def __call__(self) -> bool:
        return self.requested


def _pid_file(config: StackConfig, child: ChildProcess) -> Path:
    return config.home / "run" / f"{child.name}.pid"


def _write_pid(config: StackConfig, child: ChildProcess) -> None:
    """``$KEEPER_HOME/run/<part>.pid`` while it runs: stop one part by its pid (`kill $(cat ...)`), never
    by a name pattern that would match other clones' stacks too."""
    if child.process is not None:
        path = _pid_file(config, child)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{child.process.pid}\n")


def _remove_pid(config: StackConfig, child: ChildProcess) -> None:
    """Remove the part's pid file once it is gone, unless another `keeper up` (a part restarted alone in
    another terminal) has written its own pid there since."""
    path = _pid_file(config, child)
    with contextlib.suppress(OSError):
        if child.process is not None and path.read_text().strip() == str(child.process.pid):
            path.unlink()


def _keeper_argv(command: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "keeper.cli", command, *extra]


def _child_env(config: StackConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(config.local_env())
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


def _supervise(children: Sequence[ChildProcess], for_seconds: float | None, stop: StopRequest,
               config: StackConfig) -> int:
    """Wait until Ctrl-C / SIGTERM / the time limit; report children that exit on their own (and remove
    their pid files)."""
    reported: set[str] = set()
    deadline = None if for_seconds is None else time.monotonic() + for_seconds
    while not stop.requested and (deadline is None or time.monotonic() < deadline):
        for child in children:
            if not child.running and child.name not in reported:
                reported.add(child.name)
                _remove_pid(config, child)
                code = child.process.returncode if child.process else None
                print(f"keeper: {child.name} exited (code {code}); last log lines:\n{child.log_tail(15)}",
                      flush=True)
        time.sleep(POLL_S)
    return 0


def _run_children(specs: list[tuple[Part | None, ChildProcess]], config: StackConfig,
                  for_seconds: float | None, *, independent: bool = False,
                  before_stop: Callable[[], None] | None = None) -> int:
    """Start ``specs`` in order, supervise, stop them: in reverse order (the connector releases its
    leases through the functions), or all at once when ``independent`` (the emulators: each may take
    seconds to shut its JVM down, and one after another they made Ctrl-C slow). ``before_stop`` runs
    first when every child started (the Firestore export)."""
    started: list[ChildProcess] = []
    code = 0
    with StopRequest() as stop:
        try:
            for part, child in specs:
                if stop.requested:
                    break
                label = part.name if part else child.name
                print(f"keeper: starting {label} (log: {child.log_path})", flush=True)
                started.append(child)  # before start(): an interrupted start must still stop it
                child.start(cancelled=stop)
                _write_pid(config, child)
                if part is not None:
                    print(f"keeper: {label:<10} {part.describe(config)}", flush=True)
            if not stop.requested:
                web = next((c for c in started if c.name == "web"), None)
                where = f"; open http://{config.address('web')}/" if web is not None else ""
                print(f"keeper: local stack is up{where}; Ctrl-C stops it", flush=True)
                code = _supervise(started, for_seconds, stop, config)
        except StartCancelled:
            pass
        except ProcessError as exc:
            print(f"keeper: {exc}", file=sys.stderr, flush=True)
            print("keeper: the stack did not start; stopping what did", file=sys.stderr, flush=True)
            code = 1
        finally:
            if stop.requested:
                print("\nkeeper: stopping", flush=True)
            if before_stop is not None and started and all(c.running for c in started):
                before_stop()
            for child in started:
                _remove_pid(config, child)
            if independent and len(started) > 1:
                with ThreadPoolExecutor(len(started)) as pool:
                    list(pool.map(lambda child: child.stop(), started))
                for child in reversed(started):
                    print(f"keeper: stopped {child.name}", flush=True)
            else:
                for child in reversed(started):
                    child.stop()
                    print(f"keeper: stopped {child.name}", flush=True)
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
    data_root = config.home / "firestore"
    previous = firestore_data.latest_export(data_root)
    if previous is not None:
        print(f"keeper: Firestore data from {previous.parent}", flush=True)
    try:
        specs: list[tuple[Part | None, ChildProcess]] = [
            (None, emulators.firestore(config.ports["firestore"], log_dir=log_dir,
                                       rules=REPO_ROOT / "firestore.rules", import_data=previous)),
            (None, emulators.pubsub(config.ports["pubsub"], project=config.project, log_dir=log_dir,
                                    data_dir=config.home / "pubsub")),
        ]
        if with_auth:
            if emulators.firebase_tools() is None:
                print("keeper: auth emulator not started: firebase-tools is not installed (run `make npm`)",
                      flush=True)
            else:
                specs.append((None, emulators.auth(
                    config.ports["auth"], project=config.project, log_dir=log_dir,
                    hub_port=config.ports["hub"], logging_port=config.ports["logging"],
                    data_dir=config.home / "auth")))
    except emulators.EmulatorMissing as exc:
        print(f"keeper: {exc}", file=sys.stderr)
        return 1
    addresses = {"firestore-emulator": f"http://{config.address('firestore')}",
                 "pubsub-emulator": config.address("pubsub"), "auth-emulator": f"http://{config.address('auth')}"}
    for _, child in specs:
        print(f"keeper: {child.name:<18} {addresses[child.name]}", flush=True)
    exporter = firestore_data.PeriodicExport(
        config.address("firestore"), config.project, data_root,
        interval_s(os.environ, "KEEPER_FIRESTORE_EXPORT_INTERVAL_S", DEFAULT_EXPORT_INTERVAL_S))

    def save_data() -> None:
        if exporter.final():
            print(f"keeper: Firestore data saved under {data_root}", flush=True)

    ready = specs[0][1].ready

    def firestore_ready() -> bool:  # the exports start once the emulator answers
        ok = ready is None or ready()
        if ok:
            exporter.start()
        return ok

    specs[0][1].ready = firestore_ready
    return _run_children(specs, config, None, independent=True, before_stop=save_data)
