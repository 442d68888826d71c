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
    #: Incoming messages waiting for Pub/Sub before they are acknowledged to WhatsApp.
    message_tasks: set[asyncio.Task[None]] = field(default_factory=set)
