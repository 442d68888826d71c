"""What every rule module of the core shares: the state, the connections, the fault book, time,
randomness and the change hook."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field

from connector.protocol.binary import Node
from simulator import crypto
from simulator.core.actions import Action
from simulator.core.connections import Connection, Connections
from simulator.faults import FaultBook
from simulator.state import CompanionDevice, Phone, SimulatorState


def _phone_ignores(phone: Phone, node: Node) -> list[Action]:
    return []

Clock = Callable[[], float]


@dataclass
class Context:
    state: SimulatorState
    conns: Connections
    faults: FaultBook
    clock: Clock
    random: crypto.RandomBytes
    on_change: Callable[[], None]
    #: what the phone (device 0) does with a stanza the server delivers to it; the phone's Signal
    #: party (``simulator.core.phone_party``) installs itself here
    phone_received: Callable[[Phone, Node], list[Action]] = _phone_ignores
    #: a stanza held back by the reorder fault, per (user, device), sent after the next one
    held: dict[tuple[str, int], tuple[int, Node]] = field(default_factory=dict)
    relayed_total: int = 0

    def new_id(self) -> str:
        return str(int.from_bytes(self.random(6), "big"))

    def new_ref(self) -> bytes:
        # Refs are opaque to clients; real ones look like "2@<base64>". No commas: the QR is comma-separated.
        return b"2@" + base64.b64encode(self.random(36))

    def device_of(self, conn: Connection) -> CompanionDevice:
        """The linked device a logged-in connection belongs to."""
        assert conn.user is not None and conn.device_id is not None
        return self.state.phones[conn.user].devices[conn.device_id]
