"""Where the simulator keeps its state between runs.

``JsonFileStateStore`` writes one JSON file atomically (temp file + rename), so ``make up``
restarts keep linked devices and the root key; ``MemoryStateStore`` is for tests and for runs
without a state dir. The file holds the simulator's private keys: it is test data, never real
WhatsApp credentials, and lives under ``.keeper/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Protocol

from simulator.state import SimulatorState

STATE_FILE_NAME = "state.json"


class StateStore(Protocol):
    def load(self) -> SimulatorState | None:
        """Return the saved state, or None when nothing was saved yet."""

    def save(self, state: SimulatorState) -> None:
        """Persist the whole state, replacing what was saved before."""


class MemoryStateStore:
    """Keeps the state object itself: nothing is serialized, a save costs nothing."""

    def __init__(self) -> None:
        self._saved: SimulatorState | None = None
        self.saves = 0

    def load(self) -> SimulatorState | None:
        return self._saved

    def save(self, state: SimulatorState) -> None:
        self._saved = state
        self.saves += 1


class JsonFileStateStore:
    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE_NAME

    def load(self) -> SimulatorState | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return SimulatorState.from_json(json.loads(text))

    def save(self, state: SimulatorState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state.to_json(), handle, indent=1, sort_keys=True)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
