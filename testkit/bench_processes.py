"""The child processes of one benchmark run: a log folder, the emulators, and every child stopped at the end.

`bench/connector_restore.py` and `bench/messages.py` each start the Firestore and Pub/Sub emulators,
point this process at them, then start the functions, a simulator and connectors as children logging
into one temporary folder; whatever happens, the children are stopped newest first.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from keeper import emulators
from keeper.procs import ChildProcess, free_port


class BenchProcesses:
    """Children of a benchmark, logging to ``tmp/<name>.log``; :meth:`stop_all` stops them newest first."""

    def __init__(self, prefix: str) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix=prefix))
        print(f"logs: {self.tmp}", flush=True)
        self.started: list[ChildProcess] = []

    def children(self, name: str, argv: list[str], **kwargs: Any) -> ChildProcess:
        """Start one child (the ``children`` callable `testkit.connector_stack.start_stack` takes)."""
        proc = ChildProcess(name, argv, log_path=self.tmp / f"{name}.log", **kwargs)
        self.started.append(proc)
        return proc.start()

    def start_emulators(self, project: str) -> None:
        """The Firestore and Pub/Sub emulators on free ports, this process's environment pointed at them
        (and the vault's key file under ``tmp/home``)."""
        fs_port, ps_port = free_port(), free_port()
        self.started.append(emulators.firestore(fs_port, log_dir=self.tmp).start())
        self.started.append(emulators.pubsub(ps_port, project=project, log_dir=self.tmp).start())
        os.environ.update({"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{fs_port}",
                           "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{ps_port}",
                           "KEEPER_PROJECT": project, "GOOGLE_CLOUD_PROJECT": project,
                           "KEEPER_KEK_FILE": str(self.tmp / "home" / "kek.json")})

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()
