"""Firestore emulator data that survives a restart of the local stack.

The gcloud Firestore emulator keeps documents in memory. `keeper emulators` exports them through the
emulator's own export endpoint (``POST /emulator/v1/projects/P:export``, the format ``--import-data``
reads back) every few seconds and once more before it stops the emulator, and starts the emulator
from the newest complete export. The simulator persists its phones and linked devices under the same
``$KEEPER_HOME``, so both sides of a pairing come back together; ``make clean`` removes both.

The emulator's ``--export-on-exit`` is not used: on this gcloud release its shutdown export fails or
writes nothing when the wrapper's process group stops together (seen: "Failed during export").

Layout: ``$KEEPER_HOME/firestore/firestore_export_<unix seconds>/<same>.overall_export_metadata``.
An export is complete once its metadata file exists; older complete exports are pruned.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

_log = logging.getLogger(__name__)

METADATA_SUFFIX = ".overall_export_metadata"
EXPORT_TIMEOUT_S = 30.0


class ExportError(RuntimeError):
    """The emulator refused or failed an export (the message says why)."""


def latest_export(root: Path) -> Path | None:
    """The metadata file of the newest complete export under ``root``, if any."""
    found = sorted(root.glob(f"firestore_export_*/*{METADATA_SUFFIX}"), key=lambda p: p.parent.name)
    return found[-1] if found else None


def export(host: str, project: str, root: Path, *, timeout_s: float = EXPORT_TIMEOUT_S) -> Path:
    """Export every document of ``project`` under ``root``; returns the new metadata file and removes
    older exports."""
    root.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"database": f"projects/{project}/databases/(default)",
                       "export_directory": str(root.resolve())}).encode()
    request = urllib.request.Request(
        f"http://{host}/emulator/v1/projects/{project}:export", data=body, method="POST",
        headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read()
    except urllib.error.HTTPError as exc:
        raise ExportError(f"Firestore emulator export refused: HTTP {exc.code} {exc.read()[:200]!r}") from exc
    except OSError as exc:
        raise ExportError(f"Firestore emulator export failed: {exc}") from exc
    newest = latest_export(root)
    if newest is None:
        raise ExportError(f"Firestore emulator export wrote no metadata under {root}")
    for folder in root.glob("firestore_export_*"):
        if folder != newest.parent:
            shutil.rmtree(folder, ignore_errors=True)
    return newest


class PeriodicExport:
    """A thread exporting every ``interval_s`` (0: only :meth:`final`), and a last export on stop."""

    def __init__(self, host: str, project: str, root: Path, interval_s: float) -> None:
        self._host, self._project, self._root, self._interval_s = host, project, root, interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="firestore-export", daemon=True)

    def start(self) -> None:
        if self._interval_s > 0:
            self._thread.start()

    def _export(self) -> bool:
        with self._lock:
            try:
                export(self._host, self._project, self._root)
            except ExportError as exc:
                if not self._failing:  # once while it lasts
                    _log.warning("%s (keeps trying)", exc)
                self._failing = True
                return False
            if self._failing:
                _log.info("Firestore emulator export works again")
            self._failing = False
            return True

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._export()

    def final(self) -> bool:
        """Stop the thread and export once more (before the emulator stops); True when it worked."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=EXPORT_TIMEOUT_S)
        return self._export()
