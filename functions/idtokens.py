"""Google-signed identity tokens (service accounts calling connectorSync, Cloud Scheduler's OIDC tokens).

Google publishes the certificates of its signing keys at ``GOOGLE_CERTS_URL`` with a
``Cache-Control: max-age`` (hours) and rotates keys with days of overlap. :class:`GoogleCertificates`
keeps them in memory: fetched once, refreshed when max-age has passed or a token names a key id it does
not hold (at most once per ``REFRESH_BACKOFF_S`` either way), and when a refresh fails the certificates
in hand stay in use for up to ``MAX_STALE_S`` past their max-age. So an outage of the certificate
endpoint does not refuse calls (fetching on every call would let a short outage lapse every
lease), and a flood of junk tokens costs no fetches.

:func:`verify_google_token` checks an RS256 token against them: signature, issuer, audience, and the
token's times with ``CLOCK_SKEW_S`` of leeway (the caller's clock and ours may disagree by a few seconds).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from functions.errors import UnauthenticatedError

_log = logging.getLogger(__name__)

GOOGLE_CERTS_URL: Final = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS: Final = frozenset({"accounts.google.com", "https://accounts.google.com"})
#: Leeway on a token's iat/nbf/exp against this process's clock.
CLOCK_SKEW_S: Final = 10
#: Used when the endpoint sends no max-age; a max-age is never trusted beyond a day.
DEFAULT_MAX_AGE_S: Final = 3600.0
MAX_MAX_AGE_S: Final = 86400.0
#: How long certificates past their max-age are still used while refreshes fail.
MAX_STALE_S: Final = 6 * 3600.0
#: Between two refreshes triggered the same way (due, or an unknown key id), at least this long.
REFRESH_BACKOFF_S: Final = 30.0
FETCH_TIMEOUT_S: Final = 5.0
_MAX_AGE_RE: Final = re.compile(r"max-age=(\d+)")

Fetch = Callable[[str, float], tuple[Mapping[str, str], float | None]]


def _fetch_with_requests(url: str, timeout_s: float) -> tuple[Mapping[str, str], float | None]:
    import requests

    response = requests.get(url, timeout=timeout_s)
    response.raise_for_status()
    certs = response.json()
    if not isinstance(certs, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in certs.items()):
        raise ValueError("certificate document is not a map of key id to PEM")
    match = _MAX_AGE_RE.search(response.headers.get("Cache-Control", ""))
    return certs, float(match.group(1)) if match else None


class GoogleCertificates:
    """Google's signing certificates by key id, cached (module docstring)."""

    def __init__(self, url: str = GOOGLE_CERTS_URL, *, clock: Callable[[], float] = time.time,
                 fetch: Fetch = _fetch_with_requests, timeout_s: float = FETCH_TIMEOUT_S) -> None:
        self._url = url
        self._clock = clock
        self._fetch = fetch
        self._timeout_s = timeout_s
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._fresh_until = float("-inf")
        self._last_due_refresh = float("-inf")
        self._last_unknown_refresh = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str) -> rsa.RSAPublicKey:
        """The public key of ``kid``; :class:`UnauthenticatedError` when there is none to be had."""
        with self._lock:
            now = self._clock()
            if now >= self._fresh_until and now - self._last_due_refresh >= REFRESH_BACKOFF_S:
                self._last_due_refresh = now
                self._refresh(now)
            elif kid not in self._keys and now - self._last_unknown_refresh >= REFRESH_BACKOFF_S:
                self._last_unknown_refresh = now
                self._refresh(now)
            if self._keys and now >= self._fresh_until + MAX_STALE_S:
                _log.error("Google's signing certificates could not be refreshed for %.0f s; refusing tokens",
                           now - self._fresh_until)
                self._keys = {}
            key = self._keys.get(kid)
        if key is None:
            raise UnauthenticatedError("the identity token is not valid")
        return key

    def _refresh(self, now: float) -> None:
        try:
            certs, max_age_s = self._fetch(self._url, self._timeout_s)
            keys = {kid: _public_key(pem) for kid, pem in certs.items()}
        except Exception as exc:  # any failure keeps the certificates in hand
            _log.warning("Google's signing certificates could not be fetched (%s); %s", type(exc).__name__,
                         "keeping the cached ones" if self._keys else "none cached")
            return
        self._keys = keys
        self._fresh_until = now + min(max_age_s if max_age_s is not None else DEFAULT_MAX_AGE_S, MAX_MAX_AGE_S)


def _public_key(pem: str) -> rsa.RSAPublicKey:
    key = x509.load_pem_x509_certificate(pem.encode()).public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA certificate")
    return key


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_google_token(token: str, audience: str, certificates: GoogleCertificates,
                        now: float) -> Mapping[str, Any]:
    """The claims of a valid Google-signed RS256 token for ``audience``; else :class:`UnauthenticatedError`."""
    refused = UnauthenticatedError("the identity token is not valid")
    parts = token.split(".")
    if len(parts) != 3:
        raise refused
    try:
        header = json.loads(_b64(parts[0]))
        claims = json.loads(_b64(parts[1]))
        signature = _b64(parts[2])
    except (ValueError, binascii.Error):
        raise refused from None
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
        raise refused
    key = certificates.key(header["kid"])
    try:
        key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise refused from None
    if not isinstance(claims, dict) or claims.get("iss") not in GOOGLE_ISSUERS:
        raise refused
    audiences = claims.get("aud")
    if audience not in (audiences if isinstance(audiences, list) else [audiences]):
        raise refused
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int | float) or not isinstance(expires, int | float):
        raise refused
    if now + CLOCK_SKEW_S < issued or now - CLOCK_SKEW_S > expires:
        _log.warning("identity token refused: outside its validity (%+.0f s from iat, %+.0f s from exp)",
                     now - issued, now - expires)
        raise refused
    not_before = claims.get("nbf")
    if isinstance(not_before, int | float) and now + CLOCK_SKEW_S < not_before:
        raise refused
    return claims
