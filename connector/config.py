"""The connector's configuration, read once from the environment.

- ``KEEPER_FUNCTIONS_URL`` (required): base URL of the functions; connectorSync is ``{base}/connectorSync``.
- ``KEEPER_CONNECTOR_TOKEN``: bearer token for connectorSync (none: no header).
- ``KEEPER_CONNECTOR_AUDIENCE``: deployed, send an identity token for this audience from the metadata
  server instead (``connector/identity.py``; none: off).
- ``KEEPER_CONNECTOR_ID``: this connector's id (default ``<hostname>-<random>``).
- ``KEEPER_CAPACITY``: most accounts this connector holds (1000).
- ``KEEPER_WA_URL``: WhatsApp Web websocket URL (``wss://web.whatsapp.com/ws/chat``).
- ``KEEPER_WA_ROOT_KEY``: server certificate root public key, hex or base64 (the engine's built-in root).
- ``KEEPER_WA_VERSION``: WhatsApp Web version announced, ``major.minor.patch`` (the engine's built-in one).
  When WhatsApp refuses it (405 ``client_outdated``, every account stops), setting it is the fix.
- ``KEEPER_WA_VERSION_FETCH``: ``1`` to read the current version from ``KEEPER_WA_VERSION_URL``
  (``https://web.whatsapp.com/sw.js``) at start, keeping ``KEEPER_WA_VERSION`` if that fails (off).
- ``PORT``: HTTP port of ``/healthz``, ``/readyz``, ``/metrics`` (8080).
- ``KEEPER_HTTP_HOST``: address that port listens on (``127.0.0.1``: a developer's machine does not
  show its metrics to the network; the image sets ``0.0.0.0``, which Cloud Run needs to reach ``$PORT``).
- ``KEEPER_CACHE_DIR``: local auth-state cache directory, empty to turn it off (``~/.cache/keeper-connector``).
- ``GOOGLE_CLOUD_PROJECT`` / ``KEEPER_PROJECT``: project of the Pub/Sub topics (``demo-keeper``).
- ``KEEPER_TOPIC_SNAPSHOTS``, ``KEEPER_TOPIC_CONNECTION_EVENTS``, ``KEEPER_TOPIC_MESSAGES``: topic ids
  (``session-snapshots``, ``connection-events``, ``messages``).
- ``KEEPER_TOPIC_OUTBOX``: the topic of accepted sends (``outbox``); the connector reads it through a
  subscription of its own, ``<topic>-<connectorId>`` (``connector/outbox.py``).
- ``KEEPER_COALESCE_WINDOW_S``: how long routine key churn is coalesced (2.0).
- ``KEEPER_REPORT_WINDOW_S``: how long connection updates wait to share one ``connection.updates``
  message (1.0; an account's ``connecting`` and ``open`` then mostly share one, and are recorded in
  one read and one write).
- ``KEEPER_SYNC_INTERVAL_S``: connectorSync period, capped at a third of the lease TTL (5.0).
- ``KEEPER_SHUTDOWN_BUDGET_S``: SIGTERM to exit (8.0; Cloud Run kills at 10).
- ``KEEPER_RETRY_RESEND_WAIT_S``: how long a message that did not decrypt waits for the sender's resend
  after our retry receipt before it is published as undecryptable (60.0).
- ``KEEPER_LOG_LEVEL``: log level (INFO).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

from connector.errors import ConnectorConfigError
from connector.protocol.payload import DEFAULT_WA_VERSION
from connector.wa_version import DEFAULT_VERSION_URL, parse_version
from shared.env_numbers import env_float, env_int

DEFAULT_WA_URL = "wss://web.whatsapp.com/ws/chat"
DEFAULT_CACHE_DIR = os.path.expanduser("~/.cache/keeper-connector")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def _default_connector_id() -> str:
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Topics:
    snapshots: str = "session-snapshots"
    connection: str = "connection-events"
    messages: str = "messages"
    outbox: str = "outbox"


@dataclass(frozen=True)
class ConnectorConfig:
    functions_url: str
    connector_id: str = field(default_factory=_default_connector_id)
    token: str | None = None
    audience: str | None = None
    capacity: int = 1000
    wa_url: str = DEFAULT_WA_URL
    wa_root_key: bytes | None = None
    wa_version: tuple[int, int, int] = DEFAULT_WA_VERSION
    wa_version_fetch: bool = False
    wa_version_url: str = DEFAULT_VERSION_URL
    port: int = 8080
    http_host: str = "127.0.0.1"
    cache_dir: str | None = field(default_factory=lambda: DEFAULT_CACHE_DIR)
    project_id: str = "demo-keeper"
    topics: Topics = field(default_factory=Topics)
    coalesce_window_s: float = 2.0
    report_window_s: float = 1.0
    sync_interval_s: float = 5.0
    shutdown_budget_s: float = 8.0
    retry_resend_wait_s: float = 60.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConnectorConfig:
        """Read the table in this module's docstring; raise :class:`ConnectorConfigError` on bad values."""
        env = os.environ if env is None else env
        url = env.get("KEEPER_FUNCTIONS_URL", "").rstrip("/")
        if not url:
            raise ConnectorConfigError("KEEPER_FUNCTIONS_URL is required (base URL of the functions)")
        return cls(
            functions_url=url,
            connector_id=env.get("KEEPER_CONNECTOR_ID") or _default_connector_id(),
            token=env.get("KEEPER_CONNECTOR_TOKEN") or None,
            audience=env.get("KEEPER_CONNECTOR_AUDIENCE") or None,
            capacity=env_int(env, "KEEPER_CAPACITY", 1000, minimum=0, error=ConnectorConfigError),
            wa_url=env.get("KEEPER_WA_URL") or DEFAULT_WA_URL,
            wa_root_key=_key(env, "KEEPER_WA_ROOT_KEY"),
            wa_version=_version(env, "KEEPER_WA_VERSION"),
            wa_version_fetch=_flag(env, "KEEPER_WA_VERSION_FETCH"),
            wa_version_url=env.get("KEEPER_WA_VERSION_URL") or DEFAULT_VERSION_URL,
            port=env_int(env, "PORT", 8080, minimum=0, error=ConnectorConfigError),
            http_host=_host(env, "KEEPER_HTTP_HOST", "127.0.0.1"),
            cache_dir=env.get("KEEPER_CACHE_DIR", DEFAULT_CACHE_DIR) or None,
            project_id=env.get("GOOGLE_CLOUD_PROJECT") or env.get("KEEPER_PROJECT") or "demo-keeper",
            topics=Topics(
                snapshots=env.get("KEEPER_TOPIC_SNAPSHOTS") or Topics.snapshots,
                connection=env.get("KEEPER_TOPIC_CONNECTION_EVENTS") or Topics.connection,
                messages=env.get("KEEPER_TOPIC_MESSAGES") or Topics.messages,
                outbox=env.get("KEEPER_TOPIC_OUTBOX") or Topics.outbox,
            ),
            coalesce_window_s=env_float(env, "KEEPER_COALESCE_WINDOW_S", 2.0, error=ConnectorConfigError),
            report_window_s=env_float(env, "KEEPER_REPORT_WINDOW_S", 1.0, error=ConnectorConfigError),
            sync_interval_s=env_float(env, "KEEPER_SYNC_INTERVAL_S", 5.0, error=ConnectorConfigError),
            shutdown_budget_s=env_float(env, "KEEPER_SHUTDOWN_BUDGET_S", 8.0, error=ConnectorConfigError),
            retry_resend_wait_s=env_float(env, "KEEPER_RETRY_RESEND_WAIT_S", 60.0, error=ConnectorConfigError),
            log_level=env.get("KEEPER_LOG_LEVEL") or "INFO",
        )


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name)
    if not raw:
        return default
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        if not _HOSTNAME.fullmatch(raw):
            raise ConnectorConfigError(f"{name} must be an IP address or a host name, got {raw!r}") from None
    return raw


def _version(env: Mapping[str, str], name: str) -> tuple[int, int, int]:
    raw = env.get(name)
    if not raw:
        return DEFAULT_WA_VERSION
    try:
        return parse_version(raw)
    except ValueError as exc:
        raise ConnectorConfigError(f"{name} must be a version like 2.3000.1035194821: {exc}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConnectorConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _key(env: Mapping[str, str], name: str) -> bytes | None:
    raw = env.get(name)
    if not raw:
        return None
    try:
        return bytes.fromhex(raw) if len(raw) == 64 else base64.b64decode(raw, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ConnectorConfigError(f"{name} must be hex or base64") from exc
