"""`keeper up` starts its parts, says where they are, and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keeper.procs import free_port, port_open

pytestmark = pytest.mark.integration


def _wait(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_up_starts_emulators_and_ctrl_c_stops_them(tmp_path: Path) -> None:
    ports = {"KEEPER_FIRESTORE_PORT": free_port(), "KEEPER_PUBSUB_PORT": free_port(), "KEEPER_AUTH_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "KEEPER_HOME": str(tmp_path / "home")}
    env.pop("FIRESTORE_EMULATOR_HOST", None)
    env.pop("PUBSUB_EMULATOR_HOST", None)
    console = tmp_path / "console.txt"
    with console.open("w") as out:
        up = subprocess.Popen([sys.executable, "-m", "keeper.cli", "up", "--only", "emulators"], env=env,
                              stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    fs, ps = ports["KEEPER_FIRESTORE_PORT"], ports["KEEPER_PUBSUB_PORT"]
    try:
        # keeper up prints "local stack is up" only after every part it started is ready
        assert _wait(lambda: "local stack is up" in console.read_text(), 120), console.read_text()
        assert port_open("127.0.0.1", fs) and port_open("127.0.0.1", ps)
        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        up.wait(timeout=90)
        output = console.read_text()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert up.returncode == 0, output
    assert f"Firestore http://127.0.0.1:{fs}" in output
    assert "local stack is up" in output
    assert "stopped emulators" in output
    assert not port_open("127.0.0.1", fs)
    assert not port_open("127.0.0.1", ps)


def test_unknown_part_is_refused(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "keeper.cli", "up", "--only", "nonsense"],
                            env={**os.environ, "KEEPER_HOME": str(tmp_path)}, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 2
    assert "unknown part(s) nonsense" in result.stderr
