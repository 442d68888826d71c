"""Builds the functions' services once per process from the environment.

functions-framework re-executes ``main.py`` for every target it loads, so nothing stateful lives
there: the services are built here on first use (under a lock) and shared by every function the
process serves. Tests build :class:`Services` directly with memory stores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.accounts import AccountService
from functions.alerts import Alerter
from functions.auth import BearerVerifier
from functions.cleanup import Cleaner, CleanupSettings
from functions.config import FunctionsConfig
from functions.connection_events import ConnectionEventRecorder
from functions.health import HealthChecker
from functions.idtokens import GoogleCertificates
from functions.messages import MessageRecorder, MessageStore
from functions.model import Clock
from functions.persist import FencedSave, SnapshotPersister
from functions.ports import SessionVault, TransitSealer
from functions.restore import ConnectorSyncService
from functions.send import OutboxPublisher, SendService
from functions.stores import AlertPublisher, Stores
from shared.events import OutboundSend


def utc_now() -> datetime:
    return datetime.now(UTC)


class PubSubAlertPublisher:
    """Publishes alerts to the alerts topic, waiting for the server's acceptance."""

    PUBLISH_TIMEOUT_S = 10.0

    def __init__(self, project: str, topic: str) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self._client = pubsub_v1.PublisherClient()
        self._topic = self._client.topic_path(project, topic)

    def publish(self, data: bytes, attributes: Mapping[str, str]) -> None:
        self._client.publish(self._topic, data, **attributes).result(timeout=self.PUBLISH_TIMEOUT_S)


class PubSubOutboxPublisher:
    """Publishes accepted sends to the outbox topic, ordered by account, waiting for acceptance."""

    PUBLISH_TIMEOUT_S = 5.0

    def __init__(self, project: str, topic: str) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self._client = pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True))
        self._topic = self._client.topic_path(project, topic)

    def publish(self, send: OutboundSend) -> None:
        future = self._client.publish(self._topic, send.to_json(), ordering_key=send.account_id,
                                      **send.attributes())
        try:
            future.result(timeout=self.PUBLISH_TIMEOUT_S)
        except Exception:
            # An ordering key stops after a failed publish until resumed; the outbox entry stands anyway.
            self._client.resume_publish(self._topic, send.account_id)
            raise


@dataclass(frozen=True)
class Services:
    config: FunctionsConfig
    stores: Stores
    vault: SessionVault
    accounts: AccountService
    sync: ConnectorSyncService
    persister: SnapshotPersister
    events: ConnectionEventRecorder
    health: HealthChecker
    cleaner: Cleaner
    connector_auth: BearerVerifier
    scheduler_auth: BearerVerifier
    clock: Clock
    #: The message store, its recorder and sendMessage; None where no message store was wired (tests
    #: of other parts), and then those functions answer FAILED_PRECONDITION.
    message_store: MessageStore | None = None
    messages: MessageRecorder | None = None
    sender: SendService | None = None


def build_services(config: FunctionsConfig, stores: Stores, vault: SessionVault, sealer: TransitSealer,
                   publisher: AlertPublisher, *, clock: Clock = utc_now,
                   fenced: FencedSave | None = None, message_store: MessageStore | None = None,
                   outbox: OutboxPublisher | None = None) -> Services:
    alerter = Alerter(stores.alerts, publisher, clock)
    sender = (SendService(stores.accounts, message_store, outbox, clock, outbox_ttl_s=config.outbox_ttl_s)
              if message_store is not None else None)
    connector_auth, scheduler_auth = endpoint_verifiers_for(config)
    return Services(
        config=config,
        stores=stores,
        vault=vault,
        accounts=AccountService(stores, clock, max_accounts_per_user=config.max_accounts_per_user),
        sync=ConnectorSyncService(stores, vault, sealer, alerter, clock, lease_ttl_s=config.lease_ttl_s,
                                  pairing_ttl_s=config.pairing_ttl_s, max_claims=config.max_claims_per_sync,
                                  messages=message_store),
        persister=SnapshotPersister(stores, vault, sealer, clock, fenced),
        events=ConnectionEventRecorder(stores, vault, alerter, clock),
        health=HealthChecker(stores, vault, alerter, clock, stale_after_s=config.stale_after_s),
        cleaner=Cleaner(stores, vault, clock, CleanupSettings(config.removed_grace_s, config.pairing_ttl_s,
                                                              config.message_retention_s),
                        messages=message_store, sender=sender),
        connector_auth=connector_auth,
        scheduler_auth=scheduler_auth,
        clock=clock,
        message_store=message_store,
        messages=MessageRecorder(message_store, clock, retention_s=config.message_retention_s)
        if message_store is not None else None,
        sender=sender,
    )


def _from_environment() -> Services:
    from google.cloud import firestore

    from functions.firestore_stores import firestore_stores
    from functions.message_firestore import FirestoreMessageStore
    from functions.vault_adapter import FirestoreFencedSave, VaultSealer, VaultSessions
    from shared.vault import Vault
    from shared.vault.config import VaultConfig
    from shared.vault.firestore_store import FirestoreVaultStore

    config = FunctionsConfig.from_env()
    init_firebase_admin(config.project)
    client = firestore.Client(project=config.project)
    vault_config = VaultConfig.from_env()
    vault_store = FirestoreVaultStore(client)
    vault = Vault(vault_store, vault_config.kek(), versions_kept=config.versions_kept)
    return build_services(config, firestore_stores(client), VaultSessions(vault, vault_store),
                          VaultSealer(vault.kek), PubSubAlertPublisher(config.project, config.topic_alerts),
                          fenced=FirestoreFencedSave(vault), message_store=FirestoreMessageStore(client),
                          outbox=PubSubOutboxPublisher(config.project, config.topic_outbox))


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The process-wide services, built on first use."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = _from_environment()
    return _services


def install(built: Services | None) -> None:
    """Replace the process-wide services (tests; None rebuilds from the environment on next use)."""
    global _services
    with _lock:
        _services = built


_verifiers: tuple[BearerVerifier, BearerVerifier] | None = None


def endpoint_verifiers() -> tuple[BearerVerifier, BearerVerifier]:
    """(connector, scheduler) verifiers from configuration alone: refusing a caller needs no database."""
    global _verifiers
    if _services is not None:
        return _services.connector_auth, _services.scheduler_auth
    if _verifiers is None:
        config = FunctionsConfig.from_env()
        _verifiers = endpoint_verifiers_for(config)
    return _verifiers


def endpoint_verifiers_for(config: FunctionsConfig, certificates: GoogleCertificates | None = None,
                           clock: Callable[[], float] = time.time) -> tuple[BearerVerifier, BearerVerifier]:
    """(connectorSync, healthCheck/cleanup) verifiers, each with its own allow-list: the connector's identity
    may not run the scheduled jobs, the scheduler's identity may not claim accounts."""
    def verifier(token: str | None, allowed: frozenset[str]) -> BearerVerifier:
        return BearerVerifier(shared_token=token, audience=config.connector_audience, allowed_emails=allowed,
                              certificates=certificates, clock=clock)

    return (verifier(config.connector_token, config.connector_service_accounts),
            verifier(config.scheduler_token, config.scheduler_service_accounts))


def init_firebase_admin(project: str) -> Any:
    """The default firebase_admin app, created once (callables verify ID tokens with it)."""
    import firebase_admin

    try:
        return firebase_admin.get_app()
    except ValueError:
        return firebase_admin.initialize_app(options={"projectId": project})
