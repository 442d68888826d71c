"""What a send became: the :class:`SendStatus` event of the send flow (:mod:`connector.protocol.outbound`).

Its own module so that the event list (:mod:`connector.protocol.events`) can name it without importing
the flow.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Status(enum.IntEnum):
    """Where a send is; the order is the order a send moves in (``failed`` stands apart)."""

    PENDING = 0
    SENT = 1
    DELIVERED = 2
    READ = 3
    FAILED = 9

    @property
    def label(self) -> str:
        return self.name.lower()



@dataclass(frozen=True, slots=True)
class SendStatus:
    """A send moved on: ``timestamp`` is the server's (the ack's ``t``, the receipt's ``t``) when it
    gave one; ``reason`` says why a send failed; ``device`` names who delivered or read it."""

    message_id: str
    status: Status
    timestamp: int | None = None
    reason: str | None = None
    device: str | None = None
