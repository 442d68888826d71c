"""Settings of the functions, read once from the environment.

=====================================  ==================  ================================================
variable                               default             meaning
=====================================  ==================  ================================================
GOOGLE_CLOUD_PROJECT / KEEPER_PROJECT  demo-keeper         project id (topics, Firebase Auth audience)
KEEPER_REGION                          us-central1         region in local URLs
KEEPER_TOPIC_SNAPSHOTS                 session-snapshots   topic of sealed snapshots
KEEPER_TOPIC_CONNECTION_EVENTS         connection-events   topic of connection / pairing events
KEEPER_TOPIC_ALERTS                    alerts              topic alerts are published to
KEEPER_TOPIC_MESSAGES                  messages            topic of message events (recordMessageEvent)
KEEPER_TOPIC_OUTBOX                    outbox              topic sendMessage publishes accepted sends to
KEEPER_MESSAGE_RETENTION_S             2592000 (30 days)   stored messages older than this are deleted
KEEPER_OUTBOX_TTL_S                    86400 (1 day)       a send not sent by then fails (``expired``)
KEEPER_LEASE_TTL_S                     30                  lease lifetime without renewal
KEEPER_VERSIONS_KEPT                   3                   stored versions kept per account
KEEPER_PAIRING_TTL_S                   600                 a pairing attempt expires after this long
KEEPER_STALE_AFTER_S                   1209600 (14 days)   no save for this long marks a session stale
KEEPER_REMOVED_GRACE_S                 604800 (7 days)     removed accounts are purged after this long
KEEPER_MAX_ACCOUNTS_PER_USER           50                  addAccount refuses more active accounts
KEEPER_MAX_CLAIMS_PER_SYNC             100                 accounts handed out per connectorSync call
KEEPER_CONNECTOR_TOKEN                 (unset)             shared bearer token for connectorSync (local)
KEEPER_CONNECTOR_AUDIENCE              (unset)             audience of connector identity tokens (prod)
KEEPER_CONNECTOR_SERVICE_ACCOUNTS      (unset)             service-account e-mails (comma-separated) connectorSync
                                                           admits
KEEPER_SCHEDULER_SERVICE_ACCOUNTS      (unset)             service-account e-mails healthCheck / cleanup admit
KEEPER_SCHEDULER_TOKEN                 (unset)             bearer token for healthCheck / cleanup locally
KEEPER_ENFORCE_APP_CHECK               false               require App Check on callables
=====================================  ==================  ================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from functions.errors import FunctionsConfigError
from shared.env_numbers import env_float, env_int
from shared.events import (
    TOPIC_ALERTS,
    TOPIC_CONNECTION_EVENTS,
    TOPIC_MESSAGES,
    TOPIC_OUTBOX,
    TOPIC_SESSION_SNAPSHOTS,
)

DEFAULT_PROJECT = "demo-keeper"
DEFAULT_REGION = "us-central1"


def _project(env: Mapping[str, str] | None) -> str:
    """The project from the environment; deployed without one, the runtime's own project (ADC)."""
    source = os.environ if env is None else env
    named = source.get("KEEPER_PROJECT") or source.get("GOOGLE_CLOUD_PROJECT") or source.get("GCLOUD_PROJECT")
    if named:
        return named
    if env is None and os.environ.get("K_SERVICE"):  # on Cloud Functions / Cloud Run
        import google.auth

        try:
            _, project = google.auth.default()
        except Exception:  # no credentials: fall through to the local default
            project = None
        if project:
            return str(project)
    return DEFAULT_PROJECT


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class FunctionsConfig:
    project: str
    region: str
    topic_snapshots: str
    topic_connection_events: str
    topic_alerts: str
    lease_ttl_s: float
    versions_kept: int
    pairing_ttl_s: float
    stale_after_s: float
    removed_grace_s: float
    max_accounts_per_user: int
    max_claims_per_sync: int
    connector_token: str | None
    connector_audience: str | None
    connector_service_accounts: frozenset[str]
    scheduler_service_accounts: frozenset[str]
    scheduler_token: str | None
    enforce_app_check: bool
    topic_messages: str = TOPIC_MESSAGES
    topic_outbox: str = TOPIC_OUTBOX
    message_retention_s: float = 30 * 86400.0
    outbox_ttl_s: float = 86400.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FunctionsConfig:
        project = _project(env)
        env = os.environ if env is None else env
        number = partial(env_float, env, error=FunctionsConfigError)
        integer = partial(env_int, env, error=FunctionsConfigError)
        return cls(
            project=project,
            region=env.get("KEEPER_REGION") or DEFAULT_REGION,
            topic_snapshots=env.get("KEEPER_TOPIC_SNAPSHOTS") or TOPIC_SESSION_SNAPSHOTS,
            topic_connection_events=env.get("KEEPER_TOPIC_CONNECTION_EVENTS") or TOPIC_CONNECTION_EVENTS,
            topic_alerts=env.get("KEEPER_TOPIC_ALERTS") or TOPIC_ALERTS,
            lease_ttl_s=number("KEEPER_LEASE_TTL_S", 30.0, minimum=1),
            versions_kept=integer("KEEPER_VERSIONS_KEPT", 3, minimum=1),
            pairing_ttl_s=number("KEEPER_PAIRING_TTL_S", 600.0, minimum=1),
            stale_after_s=number("KEEPER_STALE_AFTER_S", 14 * 86400.0, minimum=1),
            removed_grace_s=number("KEEPER_REMOVED_GRACE_S", 7 * 86400.0),
            max_accounts_per_user=integer("KEEPER_MAX_ACCOUNTS_PER_USER", 50, minimum=1),
            max_claims_per_sync=integer("KEEPER_MAX_CLAIMS_PER_SYNC", 100, minimum=1),
            connector_token=env.get("KEEPER_CONNECTOR_TOKEN") or None,
            connector_audience=env.get("KEEPER_CONNECTOR_AUDIENCE") or None,
            connector_service_accounts=_emails(env, "KEEPER_CONNECTOR_SERVICE_ACCOUNTS"),
            scheduler_service_accounts=_emails(env, "KEEPER_SCHEDULER_SERVICE_ACCOUNTS"),
            scheduler_token=env.get("KEEPER_SCHEDULER_TOKEN") or None,
            enforce_app_check=_flag(env, "KEEPER_ENFORCE_APP_CHECK"),
            topic_messages=env.get("KEEPER_TOPIC_MESSAGES") or TOPIC_MESSAGES,
            topic_outbox=env.get("KEEPER_TOPIC_OUTBOX") or TOPIC_OUTBOX,
            message_retention_s=number("KEEPER_MESSAGE_RETENTION_S", 30 * 86400.0, minimum=3600),
            outbox_ttl_s=number("KEEPER_OUTBOX_TTL_S", 86400.0, minimum=60),
        )


def _emails(env: Mapping[str, str], name: str) -> frozenset[str]:
    return frozenset(a.strip() for a in env.get(name, "").split(",") if a.strip())
