"""Every deployed function, thin: parse, authorise, call the logic in ``functions/*.py``, reply.

====================  ===============================  ===========================================
function              trigger                          logic
====================  ===============================  ===========================================
addAccount            callable (Firebase Auth)         accounts.AccountService.add
listAccounts          callable                         accounts.AccountService.list_accounts
getAccount            callable                         accounts.AccountService.get
reconnectAccount      callable                         accounts.AccountService.reconnect
removeAccount         callable                         accounts.AccountService.remove
getMetrics            callable                         metrics.metrics
sendMessage           callable                         send.SendService.send
connectorSync         HTTPS (connector identity)       restore.ConnectorSyncService.sync
persistSnapshot       Pub/Sub ``session-snapshots``    persist.SnapshotPersister.handle
recordConnectionEvent Pub/Sub ``connection-events``    connection_events.ConnectionEventRecorder
recordMessageEvent    Pub/Sub ``messages``             messages.MessageRecorder.handle
healthCheck           HTTPS, Cloud Scheduler (daily)   health.HealthChecker.run
cleanup               HTTPS, Cloud Scheduler (daily)   cleanup.Cleaner.run
====================  ===============================  ===========================================

functions-framework executes this module once per target it loads: keep it free of state (the
services live in :mod:`functions.wiring`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# Deployed, this folder is the source root; locally, main.py is loaded by path. Either way the
# repository root (or the bundle holding functions/ and shared/) must be importable.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import flask  # noqa: E402
import functions_framework  # noqa: E402
from cloudevents.http import CloudEvent  # noqa: E402
from firebase_functions import https_fn  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

from functions import validation  # noqa: E402
from functions.accounts import Caller  # noqa: E402
from functions.auth import caller_from_token  # noqa: E402
from functions.config import FunctionsConfig  # noqa: E402
from functions.errors import FailedPreconditionError, to_https_error  # noqa: E402
from functions.http import guard_callable, handle_pubsub, http_error, json_endpoint, json_request  # noqa: E402
from functions.message_input import MAX_SEND_BODY_BYTES, parse_send_message  # noqa: E402
from functions.messages import MessageRecorder  # noqa: E402
from functions.metrics import metrics  # noqa: E402
from functions.send import SendService  # noqa: E402
from functions.wiring import endpoint_verifiers, init_firebase_admin, services  # noqa: E402

_CONFIG = FunctionsConfig.from_env()
init_firebase_admin(_CONFIG.project)

# On the app functions-framework is building for this target: HTTP-level refusals in the JSON error shape,
# never its HTML page (which, for a request that is not a CloudEvent, quotes every request header).
functions_framework.errorhandler(HTTPException)(http_error)
functions_framework.errorhandler(500)(http_error)

Request = https_fn.CallableRequest[Any]


def _caller(request: Request) -> Caller:
    return caller_from_token(request.auth.token if request.auth is not None else None)


def _callable(request: Request, run: Any) -> Any:
    try:
        return run(_caller(request))
    except Exception as exc:
        raise to_https_error(exc) from None


_call = https_fn.on_call(enforce_app_check=_CONFIG.enforce_app_check)


@guard_callable()
@_call
def addAccount(request: Request) -> Any:
    return _callable(request, lambda caller: services().accounts.add(
        caller, validation.parse_add_account(request.data)))


@guard_callable()
@_call
def listAccounts(request: Request) -> Any:
    def run(caller: Caller) -> Any:
        validation.parse_empty(request.data)
        return services().accounts.list_accounts(caller)

    return _callable(request, run)


@guard_callable()
@_call
def getAccount(request: Request) -> Any:
    return _callable(request, lambda caller: services().accounts.get(
        caller, validation.parse_account_ref(request.data)))


@guard_callable()
@_call
def reconnectAccount(request: Request) -> Any:
    return _callable(request, lambda caller: services().accounts.reconnect(
        caller, validation.parse_account_ref(request.data)))


@guard_callable()
@_call
def removeAccount(request: Request) -> Any:
    return _callable(request, lambda caller: services().accounts.remove(
        caller, validation.parse_account_ref(request.data)))


@guard_callable()
@_call
def getMetrics(request: Request) -> Any:
    def run(caller: Caller) -> Any:
        validation.parse_empty(request.data)
        built = services()
        return metrics(built.stores, built.vault, caller, built.clock)

    return _callable(request, run)


def _sender() -> SendService:
    sender = services().sender
    if sender is None:
        raise FailedPreconditionError("messages are not configured in this deployment")
    return sender


def _recorder() -> MessageRecorder:
    recorder = services().messages
    if recorder is None:
        raise FailedPreconditionError("messages are not configured in this deployment")
    return recorder


@guard_callable(MAX_SEND_BODY_BYTES)
@_call
def sendMessage(request: Request) -> Any:
    return _callable(request, lambda caller: _sender().send(caller, parse_send_message(request.data)))


@https_fn.on_request()
def connectorSync(request: flask.Request) -> flask.Response:
    def run() -> Any:
        caller = endpoint_verifiers()[0].verify(request.headers.get("Authorization"))
        body = json_request(request, validation.MAX_SYNC_BODY_BYTES)
        return services().sync.sync(validation.parse_sync_request(body), caller).to_json()

    return json_endpoint(run)


@https_fn.on_request()
def healthCheck(request: flask.Request) -> flask.Response:
    def run() -> Any:
        endpoint_verifiers()[1].verify(request.headers.get("Authorization"))
        return services().health.run()

    return json_endpoint(run)


@https_fn.on_request()
def cleanup(request: flask.Request) -> flask.Response:
    def run() -> Any:
        endpoint_verifiers()[1].verify(request.headers.get("Authorization"))
        return services().cleaner.run()

    return json_endpoint(run)


@functions_framework.cloud_event
def persistSnapshot(event: CloudEvent) -> None:
    handle_pubsub("persistSnapshot", event.get_data(),
                  lambda message: services().persister.handle(message.data, message.attributes))


@functions_framework.cloud_event
def recordConnectionEvent(event: CloudEvent) -> None:
    handle_pubsub("recordConnectionEvent", event.get_data(),
                  lambda message: services().events.handle(message.data))


@functions_framework.cloud_event
def recordMessageEvent(event: CloudEvent) -> None:
    handle_pubsub("recordMessageEvent", event.get_data(), lambda message: _recorder().handle(message.data))


#: Entry points and how they are triggered (the local gateway and deploy scripts read this).
CALLABLES = ("addAccount", "listAccounts", "getAccount", "reconnectAccount", "removeAccount", "getMetrics",
             "sendMessage")
HTTP_FUNCTIONS = ("connectorSync", "healthCheck", "cleanup")
PUBSUB_FUNCTIONS = {"persistSnapshot": "topic_snapshots", "recordConnectionEvent": "topic_connection_events",
                    "recordMessageEvent": "topic_messages"}

__all__ = [
    "addAccount", "cleanup", "connectorSync", "getAccount", "getMetrics", "healthCheck", "listAccounts",
    "persistSnapshot", "reconnectAccount", "recordConnectionEvent", "recordMessageEvent", "removeAccount",
    "sendMessage",
]
