"""Child processes of the local stack and the tests: started in their own process group, logs kept.

A `ChildProcess` starts a command with its output written to a log file, waits until it is ready (a TCP
port accepts, or an HTTP URL answers), and stops the whole process group on `stop()`: the gcloud
emulators run Java under a Python wrapper, and killing only the wrapper would leave Java running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

STOP_GRACE_S = 5.0
READY_POLL_S = 0.1


def _live_process_groups() -> list[int]:
    """Process-group ids of every running, non-zombie process (Linux /proc)."""
    groups: list[int] = []
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # fields after the parenthesised command name: state ppid pgrp ...
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] not in ("Z", "X"):
            groups.append(int(fields[2]))
    return groups


class ProcessError(RuntimeError):
    """A child process failed to start, died early, or did not become ready in time."""


class StartCancelled(ProcessError):
    """A stop was requested while the child was still starting; it has been stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout_s):
        return True
    return False


def http_ok(url: str, timeout_s: float = 0.5) -> bool:
    """True when `url` answers with any HTTP status below 500."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (loopback URLs only)
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


class ChildProcess:
    """One started command: its log file, readiness check and clean stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        ready: Callable[[], bool] | None = None,
        ready_timeout_s: float = 60.0,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.ready = ready
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, cancelled: Callable[[], bool] | None = None) -> ChildProcess:
        """Start and wait until ready; ``cancelled`` is polled while waiting (a stop request)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise ProcessError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        finally:
            log.close()
        if self.ready is not None:
            self.wait_ready(cancelled)
        return self

    def wait_ready(self, cancelled: Callable[[], bool] | None = None) -> None:
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if cancelled is not None and cancelled():
                self.stop()
                raise StartCancelled(f"{self.name}: stopped while starting")
            if self.process is not None and self.process.poll() is not None:
                raise ProcessError(
                    f"{self.name} exited with code {self.process.returncode} before it was ready;"
                    f" last log lines:\n{self.log_tail()}"
                )
            if self.ready is not None and self.ready():
                return
            time.sleep(READY_POLL_S)
        self.stop()
        raise ProcessError(
            f"{self.name} was not ready after {self.ready_timeout_s:.0f} s; last log lines:\n{self.log_tail()}"
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send `signum` to the whole process group (the command and its children)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)

    def stop(self, grace_s: float | None = None) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace_s`; returns the exit code."""
        grace_s = self.stop_grace_s if grace_s is None else grace_s
        if self.process is None:
            return None
        deadline = time.monotonic() + grace_s
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.process.wait(timeout=grace_s)
        # The rest of the group (Java under the gcloud wrapper) got the same SIGTERM: give it what is left
        # of the grace to finish, then sweep the group and wait until it is gone, so the ports are free
        # when stop() returns.
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.signal(signal.SIGKILL)
        deadline = time.monotonic() + grace_s
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.process.returncode

    def _group_alive(self) -> bool:
        """True while any non-zombie process of the child's group exists (zombies hold no ports)."""
        if self.process is None:
            return False
        return any(pgid == self.process.pid for pgid in _live_process_groups())

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> ChildProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
