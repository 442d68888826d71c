"""The connector image installs what ``python -m connector`` imports, and copies only its packages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "connector" / "Dockerfile"

PROBE = """
import importlib.metadata, json, os, sys
import connector.__main__, connector.engine.driver, connector.service
import google.cloud.pubsub_v1, google.api_core.retry  # imported when the transport starts
owner = {}
for dist in importlib.metadata.distributions():
    for file in dist.files or []:
        owner[os.path.realpath(dist.locate_file(file))] = dist.metadata["Name"].lower().replace("_", "-")
names = set()
for module in list(sys.modules.values()):
    path = getattr(module, "__file__", None)
    if path and os.path.realpath(path) in owner:
        names.add(owner[os.path.realpath(path)])
names.discard("keeper")  # this repository, installed in development mode
print(json.dumps(sorted(names)))
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in
                         ("functions", "simulator", "keeper", "tests")})))
"""


def requirement_names(text: str) -> set[str]:
    return {m.lower() for m in re.findall(r'"([A-Za-z0-9_.-]+)\s*[<>=]', text)}


def closure(roots: set[str]) -> set[str]:
    """``roots`` and everything they require (unconditional requirements only)."""
    import importlib.metadata

    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for req in requires:
            if ";" in req and "extra" in req.split(";", 1)[1]:
                continue
            match = re.match(r"[A-Za-z0-9_.-]+", req)
            if match:
                todo.append(match.group(0).lower().replace("_", "-"))
    return seen


@pytest.mark.slow
def test_image_installs_every_distribution_the_connector_imports() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, capture_output=True, text=True, check=True)
    imported_line, forbidden_line = out.stdout.strip().splitlines()[-2:]
    installed = closure(requirement_names(DOCKERFILE.read_text()))
    imported = set(json.loads(imported_line))
    assert {"google-cloud-pubsub", "websockets", "cryptography", "aiohttp"} <= imported
    # grpc imports grpc_tools (and with it setuptools) only when it happens to be installed.
    optional = {"grpcio-tools", "setuptools"}
    assert imported - installed - optional == set()
    assert json.loads(forbidden_line) == []  # nothing from functions/, simulator/, keeper/ or tests/


def test_image_runs_the_connector_as_pid_1_as_a_non_root_user() -> None:
    text = DOCKERFILE.read_text()
    assert 'ENTRYPOINT ["python", "-m", "connector"]' in text
    assert re.search(r"^USER keeper$", text, re.MULTILINE)
    assert "COPY shared/ shared/" in text and "COPY connector/ connector/" in text


def test_the_image_serves_health_on_every_interface_for_cloud_run() -> None:
    """The connector listens on loopback by default; Cloud Run reaches $PORT from outside the container."""
    text = DOCKERFILE.read_text()
    assert re.search(r"^\s*KEEPER_HTTP_HOST=0\.0\.0\.0", text, re.MULTILINE)
