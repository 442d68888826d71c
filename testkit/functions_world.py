"""Builders for the functions' unit tests: real vault (memory store), memory stores, a clock."""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from functions.accounts import Caller
from functions.config import FunctionsConfig
from functions.validation import AddAccountInput, parse_sync_request
from functions.vault_adapter import VaultSealer, VaultSessions
from functions.wiring import Services, build_services
from shared import sealing
from shared.authstate import AuthState
from shared.snapshot import Snapshot, snapshot_aad
from shared.vault import MemoryVaultStore, Vault
from shared.vault.kek import LocalFileKek, sealing_keys
from testkit.auth_states import registered_state
from testkit.memory_stores import memory_stores

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ALICE = Caller("alice")
BOB = Caller("bob")
ADMIN = Caller("root", admin=True)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class RecordingPublisher:
    published: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def publish(self, data: bytes, attributes: Any) -> None:
        self.published.append((data, dict(attributes)))


@dataclass
class World:
    services: Services
    vault: Vault
    vault_store: MemoryVaultStore
    clock: Clock
    alerts_out: RecordingPublisher
    sealer: VaultSealer

    def add(self, caller: Caller = ALICE, phone: str = "+40700000001", method: str = "code") -> str:
        from shared.connector_sync import PairingMethod

        result = self.services.accounts.add(caller, AddAccountInput(phone, PairingMethod(method)))
        return str(result["accountId"])


def config(**overrides: Any) -> FunctionsConfig:
    base = FunctionsConfig.from_env({"KEEPER_CONNECTOR_TOKEN": "t0ken", "KEEPER_SCHEDULER_TOKEN": "sched"})
    return FunctionsConfig(**{**{f: getattr(base, f) for f in base.__slots__}, **overrides})


def world(tmp_path: Path, **overrides: Any) -> World:
    clock = Clock()
    store = MemoryVaultStore()
    vault = Vault(store, LocalFileKek(tmp_path / "kek.json"), versions_kept=3, clock=clock)
    publisher = RecordingPublisher()
    sealer = VaultSealer(vault.kek)
    services = build_services(config(**overrides), memory_stores(), VaultSessions(vault, store),
                              sealer, publisher, clock=clock)
    return World(services, vault, store, clock, publisher, sealer)


@dataclass
class FakeConnector:
    """The connector's side of connectorSync: an ephemeral key and what it holds."""

    connector_id: str
    capacity: int = 10
    key: X25519PrivateKey = field(default_factory=X25519PrivateKey.generate)
    held: dict[str, int] = field(default_factory=dict)

    def request(self, release: dict[str, int] | None = None, not_due: Collection[str] = ()) -> Any:
        """The sync request; held accounts in ``not_due`` go with ``renew`` false (deadline still far)."""
        public = sealing.public_key_bytes(self.key)
        return parse_sync_request({
            "connectorId": self.connector_id, "capacity": self.capacity,
            "publicKey": base64.b64encode(public).decode(),
            "held": [{"accountId": a, "generation": g, **({"renew": False} if a in not_due else {})}
                     for a, g in self.held.items()],
            "release": [{"accountId": a, "generation": g} for a, g in (release or {}).items()],
        })

    def sync(self, services: Services, release: dict[str, int] | None = None,
             not_due: Collection[str] = ()) -> dict[str, Any]:
        response = services.sync.sync(self.request(release, not_due)).to_json()
        for lost in response["lost"]:
            self.held.pop(lost["accountId"], None)
        for account_id in release or {}:
            self.held.pop(account_id, None)
        for claim in response["claimed"]:
            self.held[claim["accountId"]] = claim["generation"]
        return response

    def open_claim(self, claim: dict[str, Any]) -> Snapshot:
        sealed = base64.b64decode(claim["sealedState"])
        return Snapshot.from_bytes(sealing.open_sealed(sealed, self.key, b""))


def seal_snapshot(vault: Vault, account_id: str, generation: int, connector_id: str,
                  state: AuthState, at: datetime = T0) -> bytes:
    """What the connector publishes: a snapshot sealed to the vault with the account-bound AAD."""
    key = sealing_keys(vault.kek).public_key()
    data = Snapshot(account_id=account_id, generation=generation, produced_at=at, connector_id=connector_id,
                    state=state).to_bytes()
    return sealing.seal(data, key.public, key.key_id, snapshot_aad(account_id))


def snapshot_attrs(account_id: str, generation: int, connector_id: str) -> dict[str, str]:
    from shared.events import SnapshotAttributes

    return SnapshotAttributes(account_id, generation, connector_id).to_attributes()


__all__ = ["ADMIN", "ALICE", "BOB", "T0", "Clock", "FakeConnector", "World", "config", "registered_state",
           "seal_snapshot", "snapshot_attrs", "world"]
