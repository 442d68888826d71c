"""Google identity tokens for connectorSync, from the metadata server of the platform the connector runs on.

Deployed, ``connectorSync`` sits behind Cloud Run IAM and checks the token itself: the connector must
present a Google-signed identity token of its service account for the audience
``KEEPER_CONNECTOR_AUDIENCE`` (docs/DEPLOY.md). Cloud Run's metadata server mints it::

    GET http://metadata.google.internal/computeMetadata/v1/instance/service-accounts/default/identity
        ?audience=AUD&format=full          (header Metadata-Flavor: Google)

Tokens live one hour; one is reused until :data:`REFRESH_MARGIN_S` before its ``exp``. The token is a
credential: it is never logged. ``GCE_METADATA_HOST`` (the variable Google's client libraries read)
points the client at another host, which tests use.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Callable
from typing import Final, Protocol
from urllib.parse import quote

import aiohttp

from connector.errors import SyncUnavailable

METADATA_HOST: Final = "metadata.google.internal"
IDENTITY_PATH: Final = "/computeMetadata/v1/instance/service-accounts/default/identity"
FETCH_TIMEOUT_S: Final = 5.0
REFRESH_MARGIN_S: Final = 300.0
#: How long to keep a token whose ``exp`` cannot be read (Google's are valid for an hour).
FALLBACK_LIFETIME_S: Final = 600.0
_MAX_TOKEN_CHARS: Final = 8192


class TokenSource(Protocol):
    """Gives the bearer token for the next connectorSync call."""

    async def token(self) -> str:
        ...

    async def close(self) -> None:
        ...


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (not verified: the issuer is the local metadata server), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


class MetadataIdentityTokens:
    """:class:`TokenSource` backed by the metadata server, with one cached token."""

    def __init__(self, audience: str, *, host: str | None = None, clock: Callable[[], float] = time.time) -> None:
        if not audience:
            raise ValueError("an identity token needs an audience")
        host = host or os.environ.get("GCE_METADATA_HOST") or METADATA_HOST
        self.url = f"http://{host}{IDENTITY_PATH}?audience={quote(audience, safe='')}&format=full"
        self._clock = clock
        self._cached: tuple[str, float] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def token(self) -> str:
        now = self._clock()
        if self._cached is not None and now < self._cached[1] - REFRESH_MARGIN_S:
            return self._cached[0]
        token = await self._fetch()
        expiry = token_expiry(token) or now + FALLBACK_LIFETIME_S
        self._cached = (token, expiry)
        return token

    async def _fetch(self) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S))
        try:
            async with self._session.get(self.url, headers={"Metadata-Flavor": "Google"}) as response:
                text = (await response.text()).strip()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SyncUnavailable(f"metadata server unreachable for an identity token: {type(exc).__name__}") \
                from exc
        if status != 200:
            raise SyncUnavailable(f"metadata server answered {status} for an identity token")
        if not text or len(text) > _MAX_TOKEN_CHARS or any(c.isspace() for c in text):
            raise SyncUnavailable("metadata server answered with something that is not a token")
        return text

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
