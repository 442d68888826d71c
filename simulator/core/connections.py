"""Connections: their phases, their pairing state, and the indexes that find one (by device, by QR
ref, by pairing-code ref)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from simulator import adv, pairing
from simulator.core.actions import Action, Close
from simulator.errors import ClientProtocolError
from simulator.faults import FaultTarget
from simulator.payloads import RegistrationHello


class Phase(enum.Enum):
    """Where a connection is. A registering socket never logs in: after pairing it gets 515 and the
    companion opens a new socket."""

    AWAITING_HELLO = "awaiting_hello"
    REGISTERING = "registering"
    LOGGED_IN = "logged_in"
    CLOSED = "closed"


_TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.AWAITING_HELLO: frozenset({Phase.REGISTERING, Phase.LOGGED_IN, Phase.CLOSED}),
    Phase.REGISTERING: frozenset({Phase.CLOSED}),
    Phase.LOGGED_IN: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}


@dataclass
class PairSuccessSent:
    """A ``<pair-success>`` waiting for the companion's ``<pair-device-sign>``."""

    iq_id: str
    user: str
    device_id: int
    signed: adv.SignedCompanion


@dataclass
class CodePairing:
    """A companion_hello waiting for its code to be typed on the phone."""

    ref: bytes
    conn_id: int
    user: str
    wrapped_companion_ephemeral: bytes
    created_at: float
    hello: pairing.PrimaryHello | None = None


@dataclass
class Connection:
    conn_id: int
    opened_at: float
    phase: Phase = Phase.AWAITING_HELLO
    noise_public: bytes = b""
    user: str | None = None
    device_id: int | None = None
    registration: RegistrationHello | None = None
    refs: list[bytes] = field(default_factory=list)
    pair_sent: PairSuccessSent | None = None
    code_pairing: CodePairing | None = None

    def move(self, phase: Phase) -> None:
        """Change phase; an illegal transition raises and leaves it unchanged."""
        if phase not in _TRANSITIONS[self.phase]:
            raise ClientProtocolError(
                f"connection {self.conn_id} cannot go from {self.phase.value} to {phase.value}"
            )
        self.phase = phase


class Connections:
    """Every open connection, and which one is the live socket of a device."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._conns: dict[int, Connection] = {}
        self._next = 1
        self.live: dict[tuple[str, int], int] = {}  # (user, device) -> logged-in connection
        self.refs: dict[bytes, int] = {}  # QR ref -> registering connection
        self.code_pairings: dict[bytes, CodePairing] = {}  # pairing-code ref -> its hello
        self.replaced: dict[tuple[str, int], int] = {}  # (user, device) -> sockets replaced by a login
        self.logins_total = 0

    def open(self) -> int:
        conn_id = self._next
        self._next += 1
        self._conns[conn_id] = Connection(conn_id, self._clock())
        return conn_id

    def get(self, conn_id: int) -> Connection:
        try:
            return self._conns[conn_id]
        except KeyError:
            raise ClientProtocolError(f"connection {conn_id} is not open") from None

    def find(self, conn_id: int | None) -> Connection | None:
        return None if conn_id is None else self._conns.get(conn_id)

    def is_open(self, conn_id: int) -> bool:
        return conn_id in self._conns

    def live_conn(self, user: str, device_id: int) -> Connection | None:
        return self.find(self.live.get((user, device_id)))

    def lost(self, conn_id: int) -> None:
        conn = self._conns.pop(conn_id, None)
        if conn is not None:
            self._forget(conn)

    def close(self, conn: Connection, *, abrupt: bool = False) -> list[Action]:
        """Stop serving ``conn`` now (it no longer counts as live) and ask the driver to close it."""
        self._forget(conn)
        if conn.phase is not Phase.CLOSED:
            conn.move(Phase.CLOSED)
        return [Close(conn.conn_id, abrupt)]

    def matching(self, target: FaultTarget) -> list[Connection]:
        """The sockets a fault aimed at ``target`` hits: every registering or logged-in socket, or
        the logged-in sockets of the target's devices."""
        if target.user is None:
            return [c for c in self._conns.values() if c.phase in (Phase.REGISTERING, Phase.LOGGED_IN)]
        return [
            self._conns[conn_id]
            for (user, device_id), conn_id in self.live.items()
            if target.matches(user, device_id) and conn_id in self._conns
        ]

    def phases(self) -> list[Phase]:
        return [c.phase for c in self._conns.values()]

    def _forget(self, conn: Connection) -> None:
        if conn.user is not None and conn.device_id is not None:
            key = (conn.user, conn.device_id)
            if self.live.get(key) == conn.conn_id:
                del self.live[key]
        for ref in conn.refs:
            self.refs.pop(ref, None)
        if conn.code_pairing is not None:
            self.code_pairings.pop(conn.code_pairing.ref, None)
