"""`keeper simulator` starts the server on the asked port, prints the root key it serves, keeps state."""

from __future__ import annotations

import base64
import json
import sys
import urllib.request
from pathlib import Path

import pytest

from keeper.cli import build_parser
from keeper.procs import ChildProcess, free_port, http_ok

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_keeper_simulator_is_a_registered_command() -> None:
    args = build_parser().parse_args(["simulator", "--port", "7301", "--ephemeral"])
    assert (args.port, args.ephemeral, args.host) == (7301, True, "127.0.0.1")


@pytest.mark.integration
def test_keeper_simulator_prints_the_root_key_it_serves(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "keeper.cli", "simulator", "--port", str(port), "--state-dir", str(tmp_path / "s")]
    child = ChildProcess(
        "simulator", argv, log_path=tmp_path / "sim.log", cwd=REPO_ROOT, ready=lambda: http_ok(base + "/healthz")
    )
    with child:
        with urllib.request.urlopen(base + "/v1/root-key", timeout=5) as response:
            served = json.load(response)["publicKey"]
        assert len(base64.b64decode(served)) == 32
        assert f"simulator: root-key {served}" in child.log_tail(20)
    assert json.loads((tmp_path / "s" / "state.json").read_text())["format"] == "keeper.simulator.state.v1"
    assert (tmp_path / "s" / "root-key.b64").read_text().strip() == served
