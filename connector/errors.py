"""Errors raised by the connector service (everything in ``connector/`` outside the protocol core
and the engine, which have their own trees).

::

    ConnectorError                       base class; catch this to catch everything below
    ├── ConnectorConfigError             an environment variable is missing or malformed
    ├── IllegalAccountTransitionError    a supervisor was asked for a state change its table forbids;
    │                                    the state is left unchanged
    ├── SyncError                        a connectorSync call failed
    │   ├── SyncUnavailable              network error, timeout or 5xx: retry later
    │   └── SyncRejected                 4xx or a malformed answer: retrying the same call will not help
    ├── PublishError                     Pub/Sub did not accept a message (after the transport's own retries)
    ├── SendRetryLater                   a send handler cannot send this OutboundSend now (socket not open,
    │                                    devices not fetched): the outbox dispatcher tries it again later
    ├── OutboxError                      the outbox subscription could not be created or read
    ├── CacheError                       a local cache entry could not be written or read back
    └── RestoreError                     a claimed account's sealed state did not open or parse

Library exceptions (aiohttp, google-api-core, cryptography) are translated into these at the module
that talks to the library (``raise X(...) from exc``); nothing above that module sees them.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class of every error raised by the connector service."""


class ConnectorConfigError(ConnectorError):
    """Raised when an environment variable is missing or cannot be parsed."""


class IllegalAccountTransitionError(ConnectorError):
    """Raised when a state change is not in the supervisor's transition table."""

    def __init__(self, account_id: str, current: str, requested: str) -> None:
        super().__init__(f"account {account_id}: {current} -> {requested} is not allowed")
        self.account_id = account_id
        self.current = current
        self.requested = requested


class SyncError(ConnectorError):
    """Raised when a connectorSync call fails."""


class SyncUnavailable(SyncError):
    """Raised on network errors, timeouts and 5xx answers; the call may be retried."""


class SyncRejected(SyncError):
    """Raised on 4xx answers or a response that does not follow the contract."""


class PublishError(ConnectorError):
    """Raised when Pub/Sub does not accept a message."""


class CacheError(ConnectorError):
    """Raised when a local cache entry cannot be written or read back."""


class RestoreError(ConnectorError):
    """Raised when a claimed account's sealed state does not open or does not parse."""


class SendRetryLater(ConnectorError):
    """Raised by a send handler that cannot send an ``OutboundSend`` now but may later (the socket is
    not open yet, the devices could not be fetched): the dispatcher retries it with backoff while the
    account is held. A send that can never go raises nothing: the handler reports it ``failed``."""


class OutboxError(ConnectorError):
    """Raised when the connector's outbox subscription cannot be created or read."""
