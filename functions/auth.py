"""Who may call the non-frontend endpoints (connectorSync, healthCheck, cleanup).

Production: a Google-signed identity token of an allowed service account (the connector's, or
Cloud Scheduler's), verified against the configured audience. Local: a shared bearer token from
the environment, compared in constant time. With neither configured every call is refused.
Frontend callables are verified by firebase-functions (Firebase ID tokens) and mapped to a
:class:`functions.accounts.Caller` by :func:`caller_from_token`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from functions.accounts import Caller
from functions.errors import PermissionDeniedError, UnauthenticatedError
from functions.idtokens import GoogleCertificates, verify_google_token

_log = logging.getLogger(__name__)

_BEARER = "Bearer "
_certificates: GoogleCertificates | None = None
_certificates_lock = threading.Lock()


def shared_certificates() -> GoogleCertificates:
    """One certificate cache per process, shared by every endpoint's verifier."""
    global _certificates
    with _certificates_lock:
        if _certificates is None:
            _certificates = GoogleCertificates()
        return _certificates

_MAX_TOKEN_CHARS = 8192


class BearerVerifier:
    def __init__(self, *, shared_token: str | None, audience: str | None, allowed_emails: frozenset[str],
                 certificates: GoogleCertificates | None = None, clock: Callable[[], float] = time.time) -> None:
        self._shared_token = shared_token
        self._audience = audience
        self._allowed = allowed_emails
        self._certificates = certificates if certificates is not None else shared_certificates()
        self._clock = clock

    def verify(self, authorization: str | None) -> str:
        """The caller's identity (``token`` or the service-account e-mail); raises when not allowed."""
        if not authorization or not authorization.startswith(_BEARER):
            raise UnauthenticatedError("a bearer token is required")
        token = authorization[len(_BEARER):].strip()
        if not token or len(token) > _MAX_TOKEN_CHARS:
            raise UnauthenticatedError("the bearer token is malformed")
        if self._shared_token is not None and hmac.compare_digest(token.encode(), self._shared_token.encode()):
            return "token"
        if self._audience is None:
            raise UnauthenticatedError("the bearer token is not valid")
        return self._verify_google(token)

    def _verify_google(self, token: str) -> str:
        assert self._audience is not None
        if not _looks_like_google_jwt(token):  # refuse junk before asking for Google's certificates
            raise UnauthenticatedError("the identity token is not valid")
        claims = verify_google_token(token, self._audience, self._certificates, self._clock())
        email = claims.get("email")
        if not isinstance(email, str) or not claims.get("email_verified") or email not in self._allowed:
            raise PermissionDeniedError("this identity may not call this endpoint")
        return email


def _looks_like_google_jwt(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and header.get("alg") == "RS256"


def caller_from_token(token: Mapping[str, Any] | None) -> Caller:
    """The frontend caller from a verified Firebase ID token; ``admin`` is the custom claim."""
    if token is None:
        raise UnauthenticatedError("sign in first: a Firebase ID token is required")
    uid = token.get("uid") or token.get("sub")
    if not isinstance(uid, str) or not uid:
        raise UnauthenticatedError("the ID token names no user")
    return Caller(uid=uid, admin=token.get("admin") is True)
