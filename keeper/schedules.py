"""The scheduled functions, run locally the way Cloud Scheduler runs them when deployed.

Deployed, Cloud Scheduler POSTs ``healthCheck`` and ``cleanup`` once a day (docs/DEPLOY.md). Locally
`keeper functions` POSTs them to its own gateway with the local scheduler token on shorter intervals,
so the dashboard's health figures and the cleanup of removed accounts show up while you try things:

=============================  =======  ==========================================
variable                       default  meaning
=============================  =======  ==========================================
KEEPER_HEALTH_CHECK_INTERVAL_S 60       seconds between healthCheck runs (0: never)
KEEPER_CLEANUP_INTERVAL_S      300      seconds between cleanup runs (0: never)
=============================  =======  ==========================================

Each run is one log line with its summary counts; a failing job is logged once while it keeps failing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from keeper.config import LOCAL_SCHEDULER_TOKEN, interval_s

_log = logging.getLogger(__name__)

DEFAULT_INTERVALS_S = {"healthCheck": 60.0, "cleanup": 300.0}
INTERVAL_ENV = {"healthCheck": "KEEPER_HEALTH_CHECK_INTERVAL_S", "cleanup": "KEEPER_CLEANUP_INTERVAL_S"}
#: The first runs wait this long, so they do not compete with the stack's start.
FIRST_RUN_DELAY_S = 5.0
REQUEST_TIMEOUT_S = 60.0


def _summary(body: object) -> str:
    if not isinstance(body, dict):
        return "done"
    numbers = {k: v for k, v in body.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return ", ".join(f"{k} {v}" for k, v in sorted(numbers.items())) or "done"


@dataclass
class LocalSchedules:
    """One thread POSTing each job to ``<base>/<job>`` every interval, until :meth:`stop`."""

    base_url: str
    intervals_s: Mapping[str, float]
    token: str = LOCAL_SCHEDULER_TOKEN
    first_delay_s: float = FIRST_RUN_DELAY_S
    runs: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _failing: set[str] = field(default_factory=set)
    _thread: threading.Thread | None = None

    @classmethod
    def from_env(cls, base_url: str, env: Mapping[str, str]) -> LocalSchedules | None:
        intervals = {job: interval_s(env, INTERVAL_ENV[job], default) for job, default in DEFAULT_INTERVALS_S.items()}
        intervals = {job: value for job, value in intervals.items() if value > 0}
        if not intervals:
            return None
        return cls(base_url, intervals, token=env.get("KEEPER_SCHEDULER_TOKEN") or LOCAL_SCHEDULER_TOKEN)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="local-schedules", daemon=True)
        self._thread.start()
        _log.info("schedules: %s", ", ".join(f"{job} every {s:g} s" for job, s in sorted(self.intervals_s.items())))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=REQUEST_TIMEOUT_S)

    def _loop(self) -> None:
        due = {job: time.monotonic() + self.first_delay_s for job in self.intervals_s}
        while not self._stop.is_set():
            job = min(due, key=due.__getitem__)
            if self._stop.wait(max(0.0, due[job] - time.monotonic())):
                return
            self.run_once(job)
            due[job] = time.monotonic() + self.intervals_s[job]

    def run_once(self, job: str) -> bool:
        """POST one job; True when it answered 200."""
        request = urllib.request.Request(  # noqa: S310 (the local gateway)
            f"{self.base_url}/{job}", data=b"{}", method="POST",
            headers={"content-type": "application/json", "authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310
                body = json.loads(response.read() or b"null")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if job not in self._failing:
                _log.warning("schedule %s failed: %s (logged once while it keeps failing)", job, exc)
            self._failing.add(job)
            return False
        if job in self._failing:
            _log.info("schedule %s works again", job)
        self._failing.discard(job)
        self.runs[job] = self.runs.get(job, 0) + 1
        _log.info("schedule %s: %s", job, _summary(body.get("result", body) if isinstance(body, dict) else body))
        return True
