from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from connector import logs
from connector.config import ConnectorConfig
from connector.errors import ConnectorConfigError
from connector.metrics import Counter, Gauge, Histogram, Registry


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    logs.setup("DEBUG", stream)
    return logging.getLogger("connector.test"), stream


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_line_is_json_with_severity_and_account() -> None:
    log, stream = capture()
    log.info("service line")
    with logs.account_context("acct-7"):
        log.warning("account line", extra=logs.fields(reason="connection_lost", attempt=2))
    log.error("explicit", extra={"account_id": "acct-9"})
    first, second, third = lines(stream)
    assert first["severity"] == "INFO" and first["accountId"] is None
    assert second == {**second, "severity": "WARNING", "accountId": "acct-7", "reason": "connection_lost",
                      "attempt": 2, "message": "account line"}
    assert third["accountId"] == "acct-9" and third["severity"] == "ERROR"


def test_bytes_never_reach_the_log() -> None:
    log, stream = capture()
    log.info("oops", extra=logs.fields(key=b"\x01" * 32, nested={"k": b"secret"}))
    (line,) = lines(stream)
    assert line["key"] == "<32 bytes withheld>"
    assert line["nested"] == {"k": "<6 bytes withheld>"}


def test_exceptions_are_one_line_without_traceback() -> None:
    log, stream = capture()
    try:
        raise ValueError("bad thing")
    except ValueError:
        log.exception("failed")
    (line,) = lines(stream)
    assert line["error"] == "ValueError: bad thing"
    assert "Traceback" not in stream.getvalue()


def test_prometheus_exposition() -> None:
    registry = Registry()
    counter = registry.register(Counter("x_total", "Things", ("reason",)))
    counter.inc("a")
    counter.inc("a", amount=2)
    counter.inc('we"ird')
    registry.register(Gauge("g", "Computed", ("state",), collect=lambda: {("open",): 3.0}))
    hist = registry.register(Histogram("lat_seconds", "Latency", (0.1, 1.0)))
    hist.observe(0.05)
    hist.observe(0.5)
    hist.observe(5.0)
    text = registry.render()
    assert '# TYPE x_total counter\nx_total{reason="a"} 3\nx_total{reason="we\\"ird"} 1' in text
    assert 'g{state="open"} 3' in text
    assert 'lat_seconds_bucket{le="0.1"} 1\nlat_seconds_bucket{le="1"} 2\nlat_seconds_bucket{le="+Inf"} 3' in text
    assert "lat_seconds_sum 5.55" in text and "lat_seconds_count 3" in text
    with pytest.raises(ValueError):
        counter.inc("a", "b")
    with pytest.raises(ValueError):
        counter.inc("a", amount=-1)


def test_config_from_env() -> None:
    config = ConnectorConfig.from_env({
        "KEEPER_FUNCTIONS_URL": "http://h/p/r/", "KEEPER_CAPACITY": "12", "PORT": "9000",
        "KEEPER_WA_ROOT_KEY": "11" * 32, "KEEPER_CACHE_DIR": "", "KEEPER_TOPIC_SNAPSHOTS": "snaps-x",
        "KEEPER_CONNECTOR_ID": "c-9", "KEEPER_REPORT_WINDOW_S": "0.5"})
    assert config.functions_url == "http://h/p/r" and config.report_window_s == 0.5
    assert config.capacity == 12 and config.port == 9000 and config.connector_id == "c-9"
    assert config.wa_root_key == bytes([0x11]) * 32
    assert config.cache_dir is None and config.topics.snapshots == "snaps-x"
    assert config.topics.connection == "connection-events"


@pytest.mark.parametrize("env", [
    {},
    {"KEEPER_FUNCTIONS_URL": "http://x", "KEEPER_CAPACITY": "many"},
    {"KEEPER_FUNCTIONS_URL": "http://x", "KEEPER_COALESCE_WINDOW_S": "-1"},
    {"KEEPER_FUNCTIONS_URL": "http://x", "KEEPER_REPORT_WINDOW_S": "soon"},
    {"KEEPER_FUNCTIONS_URL": "http://x", "KEEPER_WA_ROOT_KEY": "%%%"},
])
def test_config_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConnectorConfigError):
        ConnectorConfig.from_env(env)


def test_the_health_server_listens_on_loopback_unless_configured() -> None:
    """Issue 16 item 13: on a developer's machine /metrics and /readyz stay on 127.0.0.1; the image (Cloud Run,
    which must reach $PORT from outside the container) sets KEEPER_HTTP_HOST=0.0.0.0."""
    base = {"KEEPER_FUNCTIONS_URL": "http://x"}
    assert ConnectorConfig.from_env(base).http_host == "127.0.0.1"
    assert ConnectorConfig.from_env({**base, "KEEPER_HTTP_HOST": "0.0.0.0"}).http_host == "0.0.0.0"
    assert ConnectorConfig.from_env({**base, "KEEPER_HTTP_HOST": "::1"}).http_host == "::1"
    with pytest.raises(ConnectorConfigError, match="KEEPER_HTTP_HOST"):
        ConnectorConfig.from_env({**base, "KEEPER_HTTP_HOST": "not a host!"})


def test_the_health_server_binds_the_configured_host() -> None:
    import asyncio

    from connector.http import HealthServer

    async def bound(host: str | None) -> list[str]:
        server = HealthServer(Registry(), lambda: True, 0) if host is None else HealthServer(
            Registry(), lambda: True, 0, host)
        await server.start()
        try:
            assert server._runner is not None
            return [str(s.getsockname()[0]) for site in server._runner.sites
                    for s in (getattr(site._server, "sockets", None) or [])]
        finally:
            await server.stop()

    assert asyncio.run(bound(None)) == ["127.0.0.1"]
