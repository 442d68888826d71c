"""firebase.json's hosting section served by firebase-tools' Hosting emulator: the page and its headers."""

from __future__ import annotations

import json
import re
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
    assert (REPO_ROOT / "web" / "dist" / "index.html").is_file(), "the web app is not built: run `make web`"
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
    # bundled: the page loads its own hashed assets, nothing from another origin (no CDN)
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page)
    assert scripts and all(src.startswith("/assets/") for src in scripts), scripts
    bundle = ""
    for src in scripts:
        with urllib.request.urlopen(base + src, timeout=10) as response:
            bundle += response.read().decode()
    for name in ("addAccount", "reconnectAccount", "removeAccount", "getMetrics", "sendMessage"):
        assert name in bundle, f"the app does not call {name}"
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    csp = headers["content-security-policy"]
    assert "script-src 'self' https://apis.google.com;" in csp  # no inline script, no CDN
    assert "https://firestore.googleapis.com" in csp and "127.0.0.1" not in csp
