"""firebase.json's hosting section served by firebase-tools' Hosting emulator: the page and its headers."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from keeper.emulators import firebase_tools
from keeper.procs import free_port, http_ok

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_hosting_serves_the_page_with_its_security_headers(children: Any, tmp_path: Path) -> None:
    cli = firebase_tools()
    assert cli is not None, "firebase-tools is not in node_modules: run `make npm`"
    firebase = json.loads((REPO_ROOT / "firebase.json").read_text())
    hosting = firebase["hosting"]
    shutil.copytree(REPO_ROOT / hosting["public"], tmp_path / hosting["public"])  # laid out as in the repo
    port = free_port()
    config = tmp_path / "firebase.json"
    config.write_text(json.dumps({"hosting": hosting, "emulators": {
        "hosting": {"host": "127.0.0.1", "port": port}, "ui": {"enabled": False}}}))
    base = f"http://127.0.0.1:{port}"
    children("hosting-emulator", [str(cli), "emulators:start", "--only", "hosting", "--project", "demo-keeper",
                                  "--config", str(config)],
             cwd=tmp_path, ready=lambda: http_ok(base + "/"), ready_timeout_s=90)

    with urllib.request.urlopen(base + "/", timeout=10) as response:
        page = response.read().decode()
        headers = {k.lower(): v for k, v in response.headers.items()}
    assert "<title>keeper</title>" in page
    for name in ("listAccounts", "addAccount", "reconnectAccount", "removeAccount"):
        assert f'"{name}"' in page, f"the page does not call {name}"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    # The page reads nothing from Firestore directly: every read goes through the callables.
    assert "firestore" not in page.lower().replace("firestore.rules", "")
