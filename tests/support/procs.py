"""Test helpers for child processes; re-exports `keeper.procs` so tests and the local stack share one."""

from keeper.procs import ChildProcess, ProcessError, free_port, http_ok, port_open

__all__ = ["ChildProcess", "ProcessError", "free_port", "http_ok", "port_open"]
