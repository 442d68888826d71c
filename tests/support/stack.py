"""Running `keeper up` as a user does: in its own process group, its console kept, its process tree known."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from keeper.procs import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return False


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children in their own sessions included: parents still link)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            info = _stat(int(entry.name))
            if info is not None and info[0] not in ("Z", "X"):
                parents[int(entry.name)] = info[1]
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids of ``pids`` that still run (zombies count as gone: they hold no ports)."""
    return {pid for pid in pids if (info := _stat(pid)) is not None and info[0] not in ("Z", "X")}


def stack_ports(parts: tuple[str, ...] = ("FIRESTORE", "PUBSUB", "AUTH", "EMULATOR_HUB", "EMULATOR_LOGGING",
                                          "FUNCTIONS", "SIMULATOR", "CONNECTOR", "WEB")) -> dict[str, int]:
    return {f"KEEPER_{part}_PORT": free_port() for part in parts}


class Stack:
    """`keeper up ARGS` in a new process group, console in a file, like `make up` in a terminal."""

    def __init__(self, home: Path, ports: Mapping[str, int], *args: str, env: Mapping[str, str] | None = None,
                 console: Path | None = None) -> None:
        self.home = home
        self.ports = dict(ports)
        self.console = console or home.parent / f"console-{home.name}.txt"
        full_env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "KEEPER_HOME": str(home), **(env or {})}
        for name in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST",
                     "KEEPER_FUNCTIONS_URL", "KEEPER_CONNECTOR_TOKEN"):
            full_env.pop(name, None)
        with self.console.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "keeper.cli", "up", *args], env=full_env, cwd=REPO_ROOT,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.seen: set[int] = set()

    def output(self) -> str:
        return self.console.read_text(errors="replace")

    def watch(self) -> set[int]:
        """Remember every process below `keeper up` now (to check later that each one is gone)."""
        self.seen |= descendants(self.process.pid)
        return self.seen

    def wait_output(self, text: str, timeout_s: float) -> bool:
        def seen() -> bool:
            self.watch()
            return text in self.output() or self.process.poll() is not None
        return wait_for(seen, timeout_s) and text in self.output()

    def signal_group(self, signum: int) -> None:
        self.watch()
        os.killpg(self.process.pid, signum)

    def wait_exit(self, timeout_s: float) -> int:
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """Last resort for a failed test: SIGKILL keeper up's group and every process it left."""
        self.watch()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        for pid in alive(self.seen):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
