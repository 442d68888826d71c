from __future__ import annotations

import sys
from pathlib import Path

import pytest

from keeper.procs import ChildProcess, ProcessError, free_port, port_open


def test_child_is_ready_when_its_port_opens_and_stops_with_its_group(tmp_path: Path) -> None:
    port = free_port()
    # The child spawns a grandchild that listens: stop() must take down the whole process group.
    script = (
        "import subprocess, sys; subprocess.Popen([sys.executable, '-m', 'http.server', "
        f"'{port}', '--bind', '127.0.0.1']).wait()"
    )
    proc = ChildProcess("server", [sys.executable, "-c", script], log_path=tmp_path / "s.log",
                        ready=lambda: port_open("127.0.0.1", port), ready_timeout_s=20)
    with proc:
        assert port_open("127.0.0.1", port)
    assert not proc.running
    assert not port_open("127.0.0.1", port)


def test_child_that_dies_early_reports_its_log(tmp_path: Path) -> None:
    proc = ChildProcess("crasher", [sys.executable, "-c", "print('boom-marker'); raise SystemExit(3)"],
                        log_path=tmp_path / "c.log", ready=lambda: False, ready_timeout_s=10)
    with pytest.raises(ProcessError, match="boom-marker"):
        proc.start()
