"""One held account as the service keeps it: its lease generation, auth store and supervisor."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from connector.supervisor import AccountSupervisor
from shared.authstore import MemoryAuthStore


@dataclass
class AccountSlot:
    account_id: str
    generation: int
    store: MemoryAuthStore
    supervisor: AccountSupervisor
    #: The store revision last handed to the snapshot publisher (-1: none yet).
    published_revision: int = -1
    removing: bool = False
    #: The number the account was added with, while it pairs: a link by another phone is refused.
    pairing_phone: str | None = None
    #: A snapshot was due while message events were still on their way to Pub/Sub (``connector.inbox``).
    flush_held: bool = False
    #: Set when the account has no message event waiting for Pub/Sub any more.
    messages_settled: asyncio.Event = field(default_factory=asyncio.Event)
