"""What the core asks the websocket driver (``simulator.server``) to do, in order.

An action may target any connection, not only the one whose event produced it: a login replaces an
older socket of the same device, a phone typing a pairing code notifies the companion's socket.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.protocol.binary import Node
from simulator.faults import MalformedVariant


@dataclass(frozen=True)
class Send:
    conn: int
    node: Node


@dataclass(frozen=True)
class Close:
    conn: int
    abrupt: bool = False  # abort the TCP connection without a websocket close


@dataclass(frozen=True)
class SendMalformed:
    conn: int
    variant: MalformedVariant


@dataclass(frozen=True)
class SendLater:
    """Send ``node`` after ``delay_s`` if the connection is still open (a stanza delayed in transit)."""

    conn: int
    node: Node
    delay_s: float


Action = Send | Close | SendMalformed | SendLater
