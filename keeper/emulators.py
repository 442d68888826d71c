"""The Firestore, Pub/Sub and Firebase Auth emulators as child processes.

Firestore and Pub/Sub are the emulators shipped with the Google Cloud CLI (Java). The Auth emulator comes
from firebase-tools in the repo's node_modules (its own Firestore/Pub/Sub emulators refuse Java 17 here).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from keeper.procs import ChildProcess, free_port, http_ok

REPO_ROOT = Path(__file__).resolve().parent.parent
FIRESTORE_COMPONENT = "cloud-firestore-emulator"
PUBSUB_COMPONENT = "pubsub-emulator"
AUTH_EXPORT_METADATA = "firebase-export-metadata.json"  # what firebase-tools writes beside an export


class EmulatorMissing(RuntimeError):
    """A tool the emulators need is not installed; the message says which and how to get it."""


@dataclass(frozen=True)
class Tooling:
    gcloud: str
    sdk_root: Path


def find_gcloud() -> Tooling:
    """Locate gcloud and check that both emulator components are installed."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise EmulatorMissing(
            "gcloud is not on PATH: install the Google Cloud CLI "
            "(Debian: apt-get install google-cloud-cli google-cloud-cli-firestore-emulator "
            "google-cloud-cli-pubsub-emulator)"
        )
    sdk_root = Path(gcloud).resolve().parent.parent
    missing = [
        (component, package)
        for component, package in (
            (FIRESTORE_COMPONENT, "google-cloud-cli-firestore-emulator"),
            (PUBSUB_COMPONENT, "google-cloud-cli-pubsub-emulator"),
        )
        if not (sdk_root / "platform" / component).is_dir()
    ]
    if missing:
        names = ", ".join(c for c, _ in missing)
        packages = " ".join(p for _, p in missing)
        raise EmulatorMissing(
            f"the Google Cloud CLI at {sdk_root} lacks the emulator component(s) {names}: "
            f"apt-get install {packages} (or: gcloud components install {names})"
        )
    if shutil.which("java") is None:
        raise EmulatorMissing("java is not on PATH: the gcloud emulators need a Java 11+ runtime")
    return Tooling(gcloud=gcloud, sdk_root=sdk_root)


def firestore(port: int, *, log_dir: Path, rules: Path | None = None, host: str = "127.0.0.1",
              import_data: Path | None = None) -> ChildProcess:
    """The gcloud Firestore emulator; ``import_data`` is an export's ``.overall_export_metadata`` file
    (see :mod:`keeper.firestore_data`) to start from instead of an empty database."""
    tools = find_gcloud()
    argv = [tools.gcloud, "emulators", "firestore", "start", f"--host-port={host}:{port}"]
    if rules is not None:
        argv.append(f"--rules={rules}")
    if import_data is not None:
        argv.append(f"--import-data={import_data}")
    return ChildProcess(
        "firestore-emulator",
        argv,
        log_path=log_dir / "firestore.log",
        ready=lambda: http_ok(f"http://{host}:{port}/"),
        ready_timeout_s=90.0,
    )


def pubsub(port: int, *, project: str, log_dir: Path, data_dir: Path | None = None,
           host: str = "127.0.0.1") -> ChildProcess:
    tools = find_gcloud()
    argv = [tools.gcloud, "beta", "emulators", "pubsub", "start", f"--project={project}",
            f"--host-port={host}:{port}"]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        argv.append(f"--data-dir={data_dir}")
    return ChildProcess(
        "pubsub-emulator",
        argv,
        log_path=log_dir / "pubsub.log",
        ready=lambda: http_ok(f"http://{host}:{port}/"),
        ready_timeout_s=90.0,
    )


def firebase_tools() -> Path | None:
    """The firebase-tools CLI installed in the repo's node_modules, if any."""
    path = REPO_ROOT / "node_modules" / ".bin" / "firebase"
    return path if path.exists() else None


def auth(port: int, *, project: str, log_dir: Path, host: str = "127.0.0.1", hub_port: int | None = None,
         logging_port: int | None = None, data_dir: Path | None = None) -> ChildProcess:
    """The Firebase Auth emulator (firebase-tools), on `port`, with a generated config file.

    firebase-tools also opens an emulator hub and a logging port (4400 and 4500 unless the config names
    others): they are part of the config, free ports unless given, so two stacks (or test runs) coexist.
    With ``data_dir`` the users are saved there when the emulator stops on a signal and loaded from
    there at the next start (firebase-tools' ``--export-on-exit`` and ``--import``).
    firebase-tools finds "the running hub" of a project through a file in the temporary directory
    (``hub-<project>.json``): each instance gets its own TMPDIR, or the export at the stop would ask
    another stack's hub of the same project (another clone, a test run) and save that stack's users.
    """
    hub_port = free_port(host) if hub_port is None else hub_port
    logging_port = free_port(host) if logging_port is None else logging_port
    cli = firebase_tools()
    if cli is None:
        raise EmulatorMissing("firebase-tools is not in node_modules: run `make npm` (npm ci) first")
    log_dir.mkdir(parents=True, exist_ok=True)
    config = log_dir / "firebase.auth.json"
    config.write_text(json.dumps({"emulators": {
        "auth": {"host": host, "port": port}, "hub": {"host": host, "port": hub_port},
        "logging": {"host": host, "port": logging_port}, "ui": {"enabled": False}}}))
    argv = [str(cli), "emulators:start", "--only", "auth", "--project", project, "--config", str(config)]
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        if (data_dir / AUTH_EXPORT_METADATA).exists():
            argv += ["--import", str(data_dir)]
        argv += ["--export-on-exit", str(data_dir)]
    tmp = log_dir / "auth-tmp"
    tmp.mkdir(exist_ok=True)
    return ChildProcess(
        "auth-emulator",
        argv,
        log_path=log_dir / "auth.log",
        env={**os.environ, "TMPDIR": str(tmp)},
        cwd=REPO_ROOT,
        ready=lambda: http_ok(f"http://{host}:{port}/"),
        ready_timeout_s=90.0,
    )
