"""`keeper up` starts its parts, says where they are, and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keeper.procs import port_open
from tests.support.stack import Stack, alive, stack_ports

pytestmark = pytest.mark.integration

EMULATOR_PORTS = ("FIRESTORE", "PUBSUB", "AUTH", "EMULATOR_HUB", "EMULATOR_LOGGING")


def _wait(predicate: object, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


def test_up_starts_emulators_and_ctrl_c_stops_them(tmp_path: Path) -> None:
    ports = stack_ports(EMULATOR_PORTS)  # the Auth emulator's hub and logging ports too
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



def _firestore_doc(port: int, path: str, value: str | None = None) -> str | None:
    """Write (``value``) or read a string field of a document through the emulator's REST API."""
    import json
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{port}/v1/projects/demo-keeper/databases/(default)/documents/{path}"
    data = None if value is None else json.dumps({"fields": {"v": {"stringValue": value}}}).encode()
    request = urllib.request.Request(url, data=data, method="GET" if value is None else "PATCH",
                                     headers={"authorization": "Bearer owner", "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(json.load(response)["fields"]["v"]["stringValue"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def _auth_user(port: int, action: str) -> int:
    """Sign up or sign in (``action``) bob through the Auth emulator's REST API; returns the HTTP status."""
    import json
    import urllib.error
    import urllib.request

    url = f"http://127.0.0.1:{port}/identitytoolkit.googleapis.com/v1/accounts:{action}?key=any"
    body = json.dumps({"email": "bob@example.com", "password": "secret12", "returnSecureToken": True}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_up_keeps_firestore_data_and_a_double_sigterm_leaves_no_process(tmp_path: Path) -> None:
    """What `make up` gets from a terminal's Ctrl-C: the signal twice (make passes it on)."""
    ports = stack_ports(EMULATOR_PORTS)
    home = tmp_path / "home"
    # no periodic export: the data must come from the export made when the stack stops
    env = {"KEEPER_FIRESTORE_EXPORT_INTERVAL_S": "0"}
    first = Stack(home, ports, "--only", "emulators", env=env)
    try:
        assert first.wait_output("local stack is up", 150), first.output()
        # the Auth emulator's hub and logging ports follow the configuration
        assert port_open("127.0.0.1", ports["KEEPER_EMULATOR_HUB_PORT"]), first.output()
        assert port_open("127.0.0.1", ports["KEEPER_EMULATOR_LOGGING_PORT"]), first.output()
        assert _firestore_doc(ports["KEEPER_FIRESTORE_PORT"], "kept/one", "before the restart") == "before the restart"
        assert _auth_user(ports["KEEPER_AUTH_PORT"], "signUp") == 200
        tree = first.watch()
        assert len(tree) >= 4, tree  # keeper emulators, gcloud wrappers, Java, firebase-tools
        first.signal_group(signal.SIGTERM)
        time.sleep(0.3)
        first.signal_group(signal.SIGTERM)
        assert first.wait_exit(90) == 0, first.output()
    finally:
        first.kill()
    output = first.output()
    assert "Traceback" not in output, output
    assert "Firestore data saved" in (home / "logs" / "emulators.log").read_text(), output
    assert alive(first.seen) == set(), f"left running: {alive(first.seen)}\n{output}"
    assert not any(port_open("127.0.0.1", port) for port in ports.values())

    second = Stack(home, ports, "--only", "emulators", env=env, console=tmp_path / "second.txt")
    try:
        assert second.wait_output("local stack is up", 150), second.output()
        assert "Firestore data from" in (home / "logs" / "emulators.log").read_text()
        assert _firestore_doc(ports["KEEPER_FIRESTORE_PORT"], "kept/one") == "before the restart"
        # the users signed up before the restart sign in again (their uids own the accounts)
        assert _auth_user(ports["KEEPER_AUTH_PORT"], "signInWithPassword") == 200
        second.signal_group(signal.SIGINT)
        assert second.wait_exit(90) == 0, second.output()
    finally:
        second.kill()
    assert alive(second.seen) == set(), second.output()


def test_a_stop_during_the_start_leaves_no_process(tmp_path: Path) -> None:
    ports = stack_ports(EMULATOR_PORTS)
    stack = Stack(tmp_path / "home", ports, "--only", "emulators")
    try:
        # signal once the emulators' processes exist, long before they answer
        assert stack.wait_output("starting emulators", 60), stack.output()
        assert _wait(lambda: len(stack.watch()) >= 3, 60), stack.output()
        stack.signal_group(signal.SIGINT)
        time.sleep(0.2)
        stack.signal_group(signal.SIGTERM)
        assert stack.wait_exit(90) == 0, stack.output()
    finally:
        stack.kill()
    output = stack.output()
    assert "Traceback" not in output, output
    assert "local stack is up" not in output, output
    assert alive(stack.seen) == set(), f"left running: {alive(stack.seen)}\n{output}"


def test_a_part_that_dies_at_start_is_reported_and_the_stack_is_not_up(tmp_path: Path) -> None:
    ports = stack_ports(("FUNCTIONS",))
    # the functions refuse this configuration and exit at once
    stack = Stack(tmp_path / "home", ports, "--only", "functions", env={"KEEPER_LEASE_TTL_S": "not-a-number"})
    try:
        code = stack.wait_exit(120)
    finally:
        stack.kill()
    output = stack.output()
    assert code == 1, output
    assert "functions exited with code" in output and "before it was ready" in output, output
    assert "KEEPER_LEASE_TTL_S" in output, output  # its last log lines say why
    assert "the stack did not start" in output, output
    assert "local stack is up" not in output, output
    assert alive(stack.seen) == set()


def test_a_part_that_dies_loses_its_pid_file_and_a_restarted_one_keeps_its_own(tmp_path: Path) -> None:
    """The README's restart: kill -9 the part by its pid, start it again alone in another terminal."""
    ports = stack_ports(("SIMULATOR",))
    home = tmp_path / "home"
    pid_file = home / "run" / "simulator.pid"
    first = Stack(home, ports, "--only", "simulator")
    try:
        assert first.wait_output("local stack is up", 120), first.output()
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        assert first.wait_output("simulator exited (code -9)", 60), first.output()
        assert _wait(lambda: not pid_file.exists(), 10), "a dead part's pid file stayed"
        second = Stack(home, ports, "--only", "simulator", console=tmp_path / "second.txt")
        try:
            assert second.wait_output("local stack is up", 120), second.output()
            restarted = pid_file.read_text()
            first.signal_group(signal.SIGINT)  # the first terminal stops: the second part's pid file stays
            assert first.wait_exit(60) == 0, first.output()
            assert pid_file.read_text() == restarted
            second.signal_group(signal.SIGINT)
            assert second.wait_exit(60) == 0, second.output()
        finally:
            second.kill()
    finally:
        first.kill()
    assert not pid_file.exists()
