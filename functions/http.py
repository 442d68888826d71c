"""HTTP plumbing shared by the entry points in ``main.py``: callable guard, JSON replies, Pub/Sub.

firebase-functions' callable handler turns a body that is not JSON into an INTERNAL error, and
reads bodies of any size. :func:`guard_callable` checks method, content type, size and JSON shape
first, answering in the callable error format with the matching code, so bad input never reaches
INTERNAL. :func:`pubsub_message` reads a Pub/Sub message out of a CloudEvent the same way for
Eventarc deliveries (production) and emulator push deliveries converted by functions-framework.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import flask
from werkzeug.exceptions import HTTPException

from functions.errors import (
    InvalidArgumentError,
    MalformedMessageError,
    MessageRejectedError,
    ResourceExhaustedError,
    to_https_error,
)
from functions.validation import MAX_CALLABLE_BODY_BYTES

_log = logging.getLogger(__name__)

Handler = Callable[..., Any]

_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500, "UNAVAILABLE": 503,
}


def error_response(status: str, message: str, details: Any = None, http_status: int | None = None
                   ) -> flask.Response:
    body: dict[str, Any] = {"status": status, "message": message}
    if details is not None:
        body["details"] = details
    response = flask.make_response(flask.jsonify(error=body), http_status or _STATUS.get(status, 400))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


#: What an HTTP-level refusal (Werkzeug's, functions-framework's) is called in the callable error format.
_HTTP_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                      405: "INVALID_ARGUMENT", 411: "INVALID_ARGUMENT", 413: "RESOURCE_EXHAUSTED",
                      415: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}


def http_error(exc: HTTPException) -> flask.Response:
    """An HTTP error raised below the function (functions-framework refusing a request that is not a
    CloudEvent, Werkzeug refusing a body) in the functions' JSON error shape. Only the status line's
    name goes out: their descriptions can quote the request, headers and bearer token included."""
    code = exc.code or 500
    if isinstance(getattr(exc, "original_exception", None), UnicodeDecodeError):
        # The CloudEvent parser met a body that is not UTF-8: bad input, not a crash.
        return error_response("INVALID_ARGUMENT", "request body is not a CloudEvent", http_status=400)
    status = _HTTP_STATUS_NAMES.get(code, "INTERNAL" if code >= 500 else "INVALID_ARGUMENT")
    if code >= 500:
        _log.error("request failed: %s", exc.name)
    response = error_response(status, exc.name, http_status=code)
    if code == 500:
        response.headers["X-Google-Status"] = "crash"  # what functions-framework's own 500 handler marks
    return response


def error_from(exc: BaseException) -> flask.Response:
    """The callable wire form of any error (unknown errors become INTERNAL)."""
    https_error = to_https_error(exc)
    status = https_error.code.value.upper().replace("-", "_")  # "invalid-argument" -> "INVALID_ARGUMENT"
    return error_response(status, https_error.message, https_error.details, _STATUS.get(status, 500))


def read_body(request: flask.Request, max_bytes: int) -> bytes | None:
    """The body (cached for later readers), or None when it is over ``max_bytes``, declared or
    streamed: reading stops at the limit, so a huge chunked body is never held in memory."""
    if request.content_length is not None:
        if request.content_length > max_bytes:
            return None
        return request.get_data(cache=True)
    if "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        # Neither a length nor chunked: the request has no body (RFC 9112 section 6.3). Reading the
        # socket for one would wait until the client gives up.
        return b""
    # Chunked (no Content-Length): read at most one byte past the limit from the server's input,
    # then hand the body back as a sized stream for the handlers that read it after us.
    source = request.environ.get("wsgi.input")
    parts: list[bytes] = []
    size = 0
    while source is not None and size <= max_bytes:
        part = source.read(max_bytes + 1 - size)  # a dechunking reader may return less than asked
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > max_bytes:
        return None
    raw = b"".join(parts)
    request.environ["wsgi.input"] = io.BytesIO(raw)
    request.environ["wsgi.input_terminated"] = True  # a buffer ends by itself: read it to its end
    return request.get_data(cache=True)


def decode_json(raw: bytes) -> Any:
    """Parse a request body; anything the decoder refuses is :class:`InvalidArgumentError`.

    Python's decoder raises more than ``JSONDecodeError`` on hostile input: ``RecursionError`` for
    arrays nested thousands deep and ``ValueError`` for integers over 4300 digits. A body of a few
    kilobytes can carry either, and neither may surface as INTERNAL.
    """
    try:
        return json.loads(raw)
    except RecursionError:
        raise InvalidArgumentError("request body is nested too deeply") from None
    except json.JSONDecodeError:
        raise InvalidArgumentError("request body is not JSON") from None
    except ValueError:  # UnicodeDecodeError, or an integer over the digit limit
        raise InvalidArgumentError("request body is not JSON the functions accept "
                                   "(invalid UTF-8 or a number too long)") from None


def guard_callable(max_bytes: int = MAX_CALLABLE_BODY_BYTES) -> Callable[[Handler], Handler]:
    """Refuse malformed callable requests before firebase-functions sees them."""

    def decorate(inner: Handler) -> Handler:
        @functools.wraps(inner)
        def guarded(request: flask.Request) -> Any:
            if request.method == "OPTIONS":
                return inner(request)  # CORS preflight, answered by the inner handler
            if request.method != "POST":
                return error_response("INVALID_ARGUMENT", "callables accept POST only")
            content_type = (request.content_type or "").split(";")[0].strip().lower()
            if content_type != "application/json":
                return error_response("INVALID_ARGUMENT", "Content-Type must be application/json")
            raw = read_body(request, max_bytes)
            if raw is None:
                return error_response("RESOURCE_EXHAUSTED", f"request body over {max_bytes} bytes")
            try:
                body = decode_json(raw)
            except InvalidArgumentError as exc:
                return error_response("INVALID_ARGUMENT", exc.message)
            if not isinstance(body, dict) or "data" not in body:
                return error_response("INVALID_ARGUMENT", 'request body must be {"data": ...}')
            if set(body) != {"data"}:
                return error_response("INVALID_ARGUMENT", 'request body must have only the "data" field')
            return inner(request)

        return guarded

    return decorate


def json_request(request: flask.Request, max_bytes: int) -> Any:
    """The JSON body of a plain HTTP endpoint, or a FunctionsError for the caller."""
    if request.method != "POST":
        raise InvalidArgumentError("POST only")
    raw = read_body(request, max_bytes)
    if raw is None:
        raise ResourceExhaustedError(f"request body over {max_bytes} bytes")
    return decode_json(raw) if raw else None


def json_endpoint(run: Callable[[], Any]) -> flask.Response:
    """Run a plain HTTP endpoint: the result as JSON, errors in the callable error format."""
    try:
        result = run()
    except Exception as exc:  # FunctionsError keeps its code; anything else is logged, sent as INTERNAL
        return error_from(exc)
    return flask.make_response(flask.jsonify(result), 200)


@dataclass(frozen=True, slots=True)
class PubSubMessage:
    message_id: str
    data: bytes = field(repr=False)
    attributes: Mapping[str, str]


def pubsub_message(event_data: Any) -> PubSubMessage:
    """The message inside a Pub/Sub CloudEvent's data (``{"message": {...}, "subscription": ...}``)."""
    message = event_data.get("message") if isinstance(event_data, dict) else None
    if not isinstance(message, dict):
        raise MalformedMessageError("CloudEvent carries no Pub/Sub message")
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise MalformedMessageError("Pub/Sub attributes are malformed")
    try:
        data = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise MalformedMessageError("Pub/Sub data is not base64") from None
    message_id = str(message.get("messageId") or message.get("message_id") or "")
    return PubSubMessage(message_id, data, attributes)


#: Messages acknowledged without effect, by (function, error class): permanent failures are dropped, not
#: retried, and counted here and in the log line each one gets (a log-based metric can sum those).
DROPPED: Counter[tuple[str, str]] = Counter()
_DROPPED_LOCK = threading.Lock()


def handle_pubsub(name: str, event_data: Any, handle: Callable[[PubSubMessage], object]) -> None:
    """Acknowledge rejected messages with a log line; let everything else raise (Pub/Sub retries)."""
    try:
        message = pubsub_message(event_data)
        handle(message)
    except MessageRejectedError as exc:
        level = logging.ERROR if isinstance(exc, MalformedMessageError) else logging.WARNING
        kind = type(exc).__name__
        with _DROPPED_LOCK:
            DROPPED[(name, kind)] += 1
            count = DROPPED[(name, kind)]
        _log.log(level, "%s: message dropped: %s (%s, %d in this instance)", name, exc.message, kind, count)
