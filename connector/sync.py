"""The connectorSync call: the HTTP client over the contract of :mod:`shared.connector_sync`.

One call renews held leases, releases given-up ones, claims new work and fetches commands
(contract: docs/ARCHITECTURE.md, "Connector ↔ functions"). :class:`SyncClient` is the interface
the lease keeper depends on; :class:`HttpSyncClient` implements it over aiohttp and turns every
library or HTTP failure into :class:`~connector.errors.SyncUnavailable` (retry) or
:class:`~connector.errors.SyncRejected` (do not).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from connector.errors import SyncRejected, SyncUnavailable
from connector.identity import TokenSource
from shared.connector_sync import SyncReply, SyncRequest
from shared.errors import SyncContractError

SYNC_TIMEOUT_S = 8.0


def parse_response(body: Mapping[str, Any]) -> SyncReply:
    """Read a connectorSync answer; raise :class:`SyncRejected` if it breaks the contract."""
    if "result" in body and isinstance(body["result"], Mapping):  # callable-protocol envelope
        body = body["result"]
    try:
        return SyncReply.from_json(body)
    except SyncContractError as exc:
        raise SyncRejected(str(exc)) from exc


class SyncClient(Protocol):
    """Makes one connectorSync call."""

    async def sync(self, request: SyncRequest) -> SyncReply:
        ...

    async def close(self) -> None:
        ...


class HttpSyncClient:
    """:class:`SyncClient` over HTTP(S) with aiohttp."""

    def __init__(self, functions_url: str, token: str | None, timeout_s: float = SYNC_TIMEOUT_S,
                 token_source: TokenSource | None = None) -> None:
        """``token`` is a fixed bearer token (local stack); ``token_source`` gives one per call (deployed:
        identity tokens, :mod:`connector.identity`) and wins when both are set."""
        self.url = functions_url.rstrip("/") + "/connectorSync"
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._token_source = token_source
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def sync(self, request: SyncRequest) -> SyncReply:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = self._headers
        if self._token_source is not None:
            headers = {**headers, "Authorization": f"Bearer {await self._token_source.token()}"}
        try:
            async with self._session.post(self.url, data=json.dumps(request.to_json()),
                                          headers=headers) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SyncUnavailable(f"connectorSync unreachable: {type(exc).__name__}") from exc
        if status >= 500 or status == 429:
            raise SyncUnavailable(f"connectorSync answered {status}")
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SyncRejected(f"connectorSync answered {status} with a body that is not JSON") from exc
        if status >= 400 or not isinstance(body, Mapping):
            message = body.get("error") if isinstance(body, Mapping) else None
            raise SyncRejected(f"connectorSync answered {status}: {message!r}"[:300])
        return parse_response(body)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._token_source is not None:
            await self._token_source.close()
