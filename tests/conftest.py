"""Fixtures shared by every test.

- `firestore_emulator` / `pubsub_emulator` (session scope): the real gcloud emulators, started once per run
  on free loopback ports when a test first asks for them, with FIRESTORE_EMULATOR_HOST / PUBSUB_EMULATOR_HOST
  set for the test process and its children. A missing gcloud or emulator component fails the tests that
  need them with a message that says what is missing; they are never skipped.
- `firestore_client`: a google-cloud-firestore client on an emptied emulator database.
- `pubsub_names`: unique topic and subscription names for one test.
- `children`: starts child processes (servers under test) with their logs kept under `.keeper/test-logs/`;
  the last lines of each log are printed when the test fails.

Every process started here is stopped at the end of the run, also on failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import atexit
import os
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from keeper import emulators
from keeper.procs import ChildProcess, free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_ID = "demo-keeper-test"
LOG_ROOT = REPO_ROOT / ".keeper" / "test-logs" / time.strftime("%Y%m%d-%H%M%S")

_started: list[ChildProcess] = []


def _stop_all() -> None:
    while _started:
        _started.pop().stop()


atexit.register(_stop_all)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    signal.signal(signal.SIGTERM, _sigterm)


def _start(proc: ChildProcess) -> ChildProcess:
    _started.append(proc)
    try:
        proc.start()
    except Exception:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="session")
def project_id() -> str:
    return PROJECT_ID


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[str]:
    """host:port of a running Firestore emulator (rules from firestore.rules)."""
    port = free_port()
    proc = _start(emulators.firestore(port, log_dir=LOG_ROOT, rules=REPO_ROOT / "firestore.rules"))
    host = f"127.0.0.1:{port}"
    os.environ["FIRESTORE_EMULATOR_HOST"] = host
    yield host
    proc.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(project_id: str) -> Iterator[str]:
    """host:port of a running Pub/Sub emulator."""
    port = free_port()
    proc = _start(emulators.pubsub(port, project=project_id, log_dir=LOG_ROOT))
    host = f"127.0.0.1:{port}"
    os.environ["PUBSUB_EMULATOR_HOST"] = host
    yield host
    proc.stop()


def clear_firestore(host: str, project: str) -> None:
    """Delete every document of the emulator's default database (the emulator's reset endpoint)."""
    url = f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents"
    request = urllib.request.Request(url, method="DELETE")
    # Generous: after a test that stored thousands of documents, on a loaded machine, the reset
    # takes seconds; a timeout here fails an unrelated test.
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


@pytest.fixture
def firestore_client(firestore_emulator: str, project_id: str) -> Any:
    from google.cloud import firestore

    clear_firestore(firestore_emulator, project_id)
    return firestore.Client(project=project_id)


@dataclass(frozen=True)
class PubSubNames:
    """Unique Pub/Sub resource names for one test."""

    project: str
    suffix: str

    def topic(self, name: str = "events") -> str:
        return f"projects/{self.project}/topics/{name}-{self.suffix}"

    def subscription(self, name: str = "events") -> str:
        return f"projects/{self.project}/subscriptions/{name}-{self.suffix}"


@pytest.fixture
def pubsub_names(pubsub_emulator: str, project_id: str) -> PubSubNames:
    return PubSubNames(project=project_id, suffix=uuid.uuid4().hex[:12])


StartChild = Callable[..., ChildProcess]


@pytest.fixture
def children(request: pytest.FixtureRequest) -> Iterator[StartChild]:
    """Start child processes for one test: `children(name, argv, ready=..., env=...)`."""
    mine: list[ChildProcess] = []
    test_dir = LOG_ROOT / request.node.name.replace("/", "_")[:120]

    def start(name: str, argv: Sequence[str], **kwargs: Any) -> ChildProcess:
        proc = ChildProcess(name, argv, log_path=test_dir / f"{name}.log", **kwargs)
        mine.append(proc)
        return _start(proc)

    yield start
    failed = getattr(request.node, "rep_call", None)
    for proc in reversed(mine):
        proc.stop()
        if proc in _started:
            _started.remove(proc)
        if failed is not None and failed.failed:
            print(f"\n--- last lines of {proc.name} ({proc.log_path}) ---\n{proc.log_tail()}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
