"""JSON-lines logging for Cloud Logging.

Every line is one JSON object with ``severity`` (Cloud Logging's field name), ``message``, ``time``,
``logger`` and ``accountId`` (``null`` on service-wide lines). The account id comes from a context
variable that each account's supervisor task sets once, so code deep inside the engine logs with the
right id without passing it around.

Extra fields are passed with ``extra={"fields": {...}}``. Only plain values are written; the caller
is responsible for never passing key material or message text, and :func:`json_line` refuses bytes
so that a key cannot slip in by accident.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

current_account: contextvars.ContextVar[str | None] = contextvars.ContextVar("current_account", default=None)

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


@contextmanager
def account_context(account_id: str) -> Iterator[None]:
    """Log every line inside the block (and in tasks created inside it) with ``account_id``."""
    token = current_account.set(account_id)
    try:
        yield
    finally:
        current_account.reset(token)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes withheld>"
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def json_line(record: logging.LogRecord) -> str:
    """Render ``record`` as one JSON line."""
    account = getattr(record, "account_id", None) or current_account.get()
    payload: dict[str, Any] = {
        "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
        "message": record.getMessage(),
        "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
        "logger": record.name,
        "accountId": account,
    }
    fields = getattr(record, "fields", None)
    if isinstance(fields, Mapping):
        for key, value in fields.items():
            if key not in payload:
                payload[str(key)] = _plain(value)
    if record.exc_info and record.exc_info[0] is not None:
        # The exception type and message only: tracebacks can quote local variables' reprs.
        exc = record.exc_info[1]
        payload["error"] = f"{record.exc_info[0].__name__}: {exc}"
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class JsonLinesFormatter(logging.Formatter):
    """A :class:`logging.Formatter` that writes :func:`json_line`."""

    def format(self, record: logging.LogRecord) -> str:
        return json_line(record)


def setup(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger's output to ``stream`` (stdout by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # google-cloud and aiohttp are chatty at INFO; their warnings still come through.
    for noisy in ("google", "grpc", "aiohttp.access", "urllib3", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fields(**values: Any) -> dict[str, Any]:
    """Shorthand for ``extra={"fields": {...}}``."""
    return {"fields": values}
