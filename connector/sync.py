"""The connectorSync call: wire types, parsing, and the HTTP client.

One call renews held leases, releases given-up ones, claims new work and fetches commands
(contract: docs/ARCHITECTURE.md, "Connector ↔ functions"). :class:`SyncClient` is the interface
the lease keeper depends on; :class:`HttpSyncClient` implements it over aiohttp and turns every
library or HTTP failure into :class:`~connector.errors.SyncUnavailable` (retry) or
:class:`~connector.errors.SyncRejected` (do not).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import aiohttp

from connector.errors import SyncRejected, SyncUnavailable
from connector.identity import TokenSource

SYNC_TIMEOUT_S = 8.0


@dataclass(frozen=True)
class LeaseRef:
    account_id: str
    generation: int
    #: In ``held``: False when the lease need not be extended yet, only confirmed (not sent when True).
    renew: bool = True

    def to_json(self) -> dict[str, Any]:
        if self.renew:
            return {"accountId": self.account_id, "generation": self.generation}
        return {"accountId": self.account_id, "generation": self.generation, "renew": False}


@dataclass(frozen=True)
class PairingRequest:
    method: Literal["code", "qr"]
    phone_number: str | None


@dataclass(frozen=True)
class Claim:
    """An account handed to this connector."""

    account_id: str
    generation: int
    mode: Literal["restore", "pair"]
    sealed_state: bytes | None = field(default=None, repr=False)
    version: int | None = None
    fell_back: bool = False
    pairing: PairingRequest | None = None


@dataclass(frozen=True)
class Lost:
    account_id: str
    reason: str


@dataclass(frozen=True)
class Command:
    account_id: str
    action: Literal["reconnect", "remove"]


@dataclass(frozen=True)
class SyncRequest:
    connector_id: str
    capacity: int
    public_key: bytes
    held: Sequence[LeaseRef] = ()
    release: Sequence[LeaseRef] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "connectorId": self.connector_id,
            "capacity": self.capacity,
            "publicKey": base64.b64encode(self.public_key).decode("ascii"),
            "held": [ref.to_json() for ref in self.held],
            "release": [ref.to_json() for ref in self.release],
        }


@dataclass(frozen=True)
class SyncResponse:
    lease_ttl_s: float
    vault_public_key: bytes
    vault_key_id: str
    renewed: Sequence[LeaseRef] = ()
    lost: Sequence[Lost] = ()
    claimed: Sequence[Claim] = ()
    commands: Sequence[Command] = ()


def _field(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise SyncRejected(f"connectorSync answer: {key!r} is missing or not {kind}")
    return value


def _b64(text: str, key: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SyncRejected(f"connectorSync answer: {key!r} is not base64") from exc


def _ref(obj: Any) -> LeaseRef:
    if not isinstance(obj, Mapping):
        raise SyncRejected("connectorSync answer: a lease entry is not an object")
    return LeaseRef(_field(obj, "accountId", str), _field(obj, "generation", int))


def _claim(obj: Any) -> Claim:
    if not isinstance(obj, Mapping):
        raise SyncRejected("connectorSync answer: a claim is not an object")
    mode = _field(obj, "mode", str)
    if mode not in ("restore", "pair"):
        raise SyncRejected(f"connectorSync answer: unknown claim mode {mode!r}")
    sealed = obj.get("sealedState")
    pairing_obj = obj.get("pairing")
    pairing = None
    if isinstance(pairing_obj, Mapping):
        method = _field(pairing_obj, "method", str)
        if method not in ("code", "qr"):
            raise SyncRejected(f"connectorSync answer: unknown pairing method {method!r}")
        phone = pairing_obj.get("phoneNumber")
        pairing = PairingRequest(method, phone if isinstance(phone, str) else None)
    version = obj.get("version")
    return Claim(
        account_id=_field(obj, "accountId", str),
        generation=_field(obj, "generation", int),
        mode=mode,
        sealed_state=_b64(sealed, "sealedState") if isinstance(sealed, str) else None,
        version=version if isinstance(version, int) else None,
        fell_back=bool(obj.get("fellBack", False)),
        pairing=pairing,
    )


def parse_response(body: Mapping[str, Any]) -> SyncResponse:
    """Parse a connectorSync answer; raise :class:`SyncRejected` if it breaks the contract."""
    if "result" in body and isinstance(body["result"], Mapping):  # callable-protocol envelope
        body = body["result"]

    def items(key: str) -> list[Any]:
        value = body.get(key, [])
        if not isinstance(value, list):
            raise SyncRejected(f"connectorSync answer: {key!r} is not a list")
        return value

    lost = []
    for obj in items("lost"):
        if not isinstance(obj, Mapping):
            raise SyncRejected("connectorSync answer: a lost entry is not an object")
        lost.append(Lost(_field(obj, "accountId", str), str(obj.get("reason", "unknown"))))
    commands = []
    for obj in items("commands"):
        if not isinstance(obj, Mapping):
            raise SyncRejected("connectorSync answer: a command is not an object")
        action = _field(obj, "action", str)
        if action in ("reconnect", "remove"):
            commands.append(Command(_field(obj, "accountId", str), action))
    return SyncResponse(
        lease_ttl_s=float(_field(body, "leaseTtlS", (int, float))),
        vault_public_key=_b64(_field(body, "vaultPublicKey", str), "vaultPublicKey"),
        vault_key_id=str(body.get("vaultKeyId", "")),
        renewed=[_ref(obj) for obj in items("renewed")],
        lost=lost,
        claimed=[_claim(obj) for obj in items("claimed")],
        commands=commands,
    )


class SyncClient(Protocol):
    """Makes one connectorSync call."""

    async def sync(self, request: SyncRequest) -> SyncResponse:
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

    async def sync(self, request: SyncRequest) -> SyncResponse:
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
