"""Errors raised by the functions, and the one place where they become the wire format.

::

    FunctionsError                  base of every error the functions raise on purpose
    ├── InvalidArgumentError        bad callable or connector input: type, shape, size, format
    ├── UnauthenticatedError        no credentials, or credentials that do not verify
    ├── PermissionDeniedError       verified caller who may not do this (foreign account, not admin)
    ├── NotFoundError               no such account
    ├── AlreadyExistsError          the phone number is already managed by an active account
    ├── FailedPreconditionError     the account's status does not allow the operation
    ├── ResourceExhaustedError      payload too large, too many accounts
    ├── FunctionsConfigError        an environment variable the functions read is missing or malformed
    └── MessageRejectedError        a Pub/Sub message that must be acknowledged and dropped
        ├── MalformedMessageError   cannot be parsed or opened; retrying would not help
        └── StaleMessageError       produced under an older lease generation (fenced off)

Callables: :func:`to_https_error` maps this tree to ``HttpsError``; transient storage errors
(Firestore unavailable, deadline exceeded, contention) become ``UNAVAILABLE`` so the caller retries;
anything else becomes ``INTERNAL`` with no detail (the cause is logged, never sent). Pub/Sub handlers acknowledge a
:class:`MessageRejectedError` with a log line and let every other exception propagate so that
Pub/Sub redelivers (transient: Firestore or KEK unavailable).
"""

from __future__ import annotations

import logging
from typing import Any

from firebase_functions.https_fn import FunctionsErrorCode, HttpsError
from google.api_core import exceptions as gexc

_log = logging.getLogger(__name__)

#: Storage errors worth a retry by the caller (the Firestore client already retried them).
_TRANSIENT = (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.Aborted)


class FunctionsError(Exception):
    """Base of every error the functions raise on purpose. ``message`` is safe to show."""

    code: FunctionsErrorCode = FunctionsErrorCode.INTERNAL

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidArgumentError(FunctionsError):
    """The input has the wrong type, shape, size or format; ``details.field`` names the field."""

    code = FunctionsErrorCode.INVALID_ARGUMENT


class UnauthenticatedError(FunctionsError):
    """No credentials were presented, or they did not verify."""

    code = FunctionsErrorCode.UNAUTHENTICATED


class PermissionDeniedError(FunctionsError):
    """The caller is known but may not act on this resource."""

    code = FunctionsErrorCode.PERMISSION_DENIED


class NotFoundError(FunctionsError):
    """The account does not exist (or was purged)."""

    code = FunctionsErrorCode.NOT_FOUND


class AlreadyExistsError(FunctionsError):
    """An active account already manages this phone number."""

    code = FunctionsErrorCode.ALREADY_EXISTS


class FailedPreconditionError(FunctionsError):
    """The account is in a status that does not allow the operation (e.g. reconnect while removing)."""

    code = FunctionsErrorCode.FAILED_PRECONDITION


class ResourceExhaustedError(FunctionsError):
    """A size or count limit was reached."""

    code = FunctionsErrorCode.RESOURCE_EXHAUSTED


class FunctionsConfigError(FunctionsError, ValueError):
    """An environment variable holds a value the functions cannot use (callers see INTERNAL)."""


class MessageRejectedError(FunctionsError):
    """A Pub/Sub message that is acknowledged and dropped: redelivery would fail the same way."""


class MalformedMessageError(MessageRejectedError):
    """The message cannot be parsed, opened, or does not match its attributes."""


class StaleMessageError(MessageRejectedError):
    """The message was produced under a lease generation that is no longer current."""


def to_https_error(exc: BaseException) -> HttpsError:
    """The callable wire form of ``exc``; unknown errors become INTERNAL without detail."""
    if isinstance(exc, HttpsError):
        return exc
    if isinstance(exc, FunctionsError) and exc.code is not FunctionsErrorCode.INTERNAL:
        return HttpsError(exc.code, exc.message, exc.details)
    if isinstance(exc, _TRANSIENT):
        _log.warning("a callable met a transient storage error: %s", type(exc).__name__)
        return HttpsError(FunctionsErrorCode.UNAVAILABLE, "the service is busy or briefly unavailable; try again")
    _log.error("internal error in a callable: %s", type(exc).__name__, exc_info=exc)
    return HttpsError(FunctionsErrorCode.INTERNAL, "INTERNAL")
