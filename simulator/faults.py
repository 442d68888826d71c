"""Fault injection: what can go wrong, aimed at one device, one phone or every socket.

Instant faults act once on the sockets that are logged in when they are posted:

- ``drop``: the TCP connection is aborted, no close frame (a network cut);
- ``stream_error``: ``<stream:error code=N/>`` then close (515 restart, 503 unavailable, 500);
- ``malformed_frame``: a frame the client cannot use: ``garbage`` fails Noise decryption,
  ``bad_node`` decrypts but is not a binary node.

Lasting faults hold for ``seconds`` (or until ``DELETE /v1/faults``) and also hit new sockets:

- ``stop_pings``: ``w:p`` pings get no answer (the socket looks alive at TCP level);
- ``refuse``: new connections are refused. Aimed at a phone or device, the socket is closed right
  after its ClientPayload names the device (the server cannot know earlier); aimed at everything,
  the websocket upgrade itself gets HTTP 503.

Stanza faults act on the next ``count`` stanzas (default 1; ``stanza``: ``message`` or ``receipt``)
the server sends the target device, then leave the book. The stanza stays in the device's offline
queue throughout, so what a fault loses comes back at the device's next login, as on the real
server:

- ``drop_stanza``: not sent;
- ``delay_stanza``: sent ``seconds`` later (if the socket is still open);
- ``duplicate_stanza``: sent twice;
- ``reorder_stanza``: held back and sent right after the next stanza to that device;
- ``corrupt_ciphertext``: the message's ciphertexts (every ``<enc>``) arrive with a flipped byte,
  so the client fails to decrypt and sends a retry receipt.

A phone's own device (0) has no socket: drop, duplicate and corrupt act on what it receives (a
dropped stanza stays in its queue); delay and reorder pass it by.

The book is pure: time is passed in.
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import Any

from simulator.errors import InvalidRequestError, NotFoundError
from simulator.state import normalize_phone

STREAM_ERROR_CODES = frozenset({500, 503, 515})


class FaultKind(enum.StrEnum):
    DROP = "drop"
    STREAM_ERROR = "stream_error"
    MALFORMED_FRAME = "malformed_frame"
    STOP_PINGS = "stop_pings"
    REFUSE = "refuse"
    DROP_STANZA = "drop_stanza"
    DELAY_STANZA = "delay_stanza"
    DUPLICATE_STANZA = "duplicate_stanza"
    REORDER_STANZA = "reorder_stanza"
    CORRUPT_CIPHERTEXT = "corrupt_ciphertext"

    @property
    def lasting(self) -> bool:
        return self in (FaultKind.STOP_PINGS, FaultKind.REFUSE)

    @property
    def per_stanza(self) -> bool:
        """Faults that act on the next ``count`` stanzas the server sends the target."""
        return self in _STANZA_KINDS


_STANZA_KINDS = frozenset(
    {
        FaultKind.DROP_STANZA,
        FaultKind.DELAY_STANZA,
        FaultKind.DUPLICATE_STANZA,
        FaultKind.REORDER_STANZA,
        FaultKind.CORRUPT_CIPHERTEXT,
    }
)
STANZA_TAGS = frozenset({"message", "receipt"})


class MalformedVariant(enum.StrEnum):
    GARBAGE = "garbage"
    BAD_NODE = "bad_node"


@dataclass(frozen=True)
class FaultTarget:
    """Which sockets a fault hits: a device of a phone, every device of a phone, or all."""

    user: str | None = None
    device_id: int | None = None

    def matches(self, user: str | None, device_id: int | None) -> bool:
        if self.user is None:
            return True
        if self.user != user:
            return False
        return self.device_id is None or self.device_id == device_id

    def to_json(self) -> dict[str, Any]:
        return {"phone": None if self.user is None else "+" + self.user, "device": self.device_id}


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    target: FaultTarget
    code: int | None = None
    seconds: float | None = None
    variant: MalformedVariant = MalformedVariant.GARBAGE
    count: int = 1  # stanza faults: how many stanzas they act on
    stanza: str = "message"  # stanza faults: which stanzas (message or receipt)

    @classmethod
    def from_json(cls, data: Any) -> Fault:
        """Parse the body of ``POST /v1/faults``; raises InvalidRequestError with the reason."""
        if not isinstance(data, dict):
            raise InvalidRequestError("fault must be a JSON object")
        try:
            kind = FaultKind(str(data.get("kind")))
        except ValueError:
            kinds = [k.value for k in FaultKind]
            raise InvalidRequestError(f"unknown fault kind {data.get('kind')!r}; one of {kinds}") from None
        phone, device = data.get("phone"), data.get("device")
        if device is not None and (phone is None or not isinstance(device, int) or isinstance(device, bool)):
            raise InvalidRequestError("device must be an integer and needs phone")
        target = FaultTarget(None if phone is None else normalize_phone(str(phone)), device)
        code = data.get("code")
        if kind is FaultKind.STREAM_ERROR:
            if code not in STREAM_ERROR_CODES:
                raise InvalidRequestError(f"stream_error code must be one of {sorted(STREAM_ERROR_CODES)}")
        elif code is not None:
            raise InvalidRequestError("code applies to stream_error only")
        seconds = data.get("seconds")
        if seconds is not None:
            if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
                raise InvalidRequestError("seconds must be a positive number")
            if not kind.lasting and kind is not FaultKind.DELAY_STANZA:
                raise InvalidRequestError(f"seconds applies to lasting faults and delay_stanza, not {kind.value}")
        elif kind in (FaultKind.REFUSE, FaultKind.DELAY_STANZA):
            raise InvalidRequestError(f"{kind.value} needs seconds")
        count = data.get("count", 1)
        if "count" in data and not kind.per_stanza:
            raise InvalidRequestError("count applies to stanza faults only")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidRequestError("count must be a positive integer")
        stanza = data.get("stanza", "message")
        if "stanza" in data and not kind.per_stanza:
            raise InvalidRequestError("stanza applies to stanza faults only")
        if stanza not in STANZA_TAGS or (kind is FaultKind.CORRUPT_CIPHERTEXT and stanza != "message"):
            raise InvalidRequestError(f"stanza must be one of {sorted(STANZA_TAGS)} (message for corrupt_ciphertext)")
        try:
            variant = MalformedVariant(data.get("variant", MalformedVariant.GARBAGE.value))
        except ValueError:
            raise InvalidRequestError(f"unknown malformed_frame variant {data.get('variant')!r}") from None
        return cls(kind, target, code, None if seconds is None else float(seconds), variant, count, str(stanza))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, **self.target.to_json()}
        if self.code is not None:
            out["code"] = self.code
        if self.seconds is not None:
            out["seconds"] = self.seconds
        if self.kind is FaultKind.MALFORMED_FRAME:
            out["variant"] = self.variant.value
        if self.kind.per_stanza:
            out["count"] = self.count
            out["stanza"] = self.stanza
        return out


@dataclass(frozen=True)
class ActiveFault:
    fault_id: int
    fault: Fault
    started_at: float

    @property
    def expires_at(self) -> float | None:
        if self.fault.seconds is None or not self.fault.kind.lasting:
            return None
        return self.started_at + self.fault.seconds

    def live(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.fault_id,
            **self.fault.to_json(),
            "startedAt": self.started_at,
            "expiresAt": self.expires_at,
        }


class FaultBook:
    """The lasting faults in force."""

    def __init__(self) -> None:
        self._faults: dict[int, ActiveFault] = {}
        self._remaining: dict[int, int] = {}  # stanza faults: stanzas still to act on
        self._ids = itertools.count(1)

    def add(self, fault: Fault, now: float) -> ActiveFault:
        active = ActiveFault(next(self._ids), fault, now)
        if fault.kind.lasting or fault.kind.per_stanza:
            self._faults[active.fault_id] = active
        if fault.kind.per_stanza:
            self._remaining[active.fault_id] = fault.count
        return active

    def remove(self, fault_id: int) -> None:
        if self._faults.pop(fault_id, None) is None:
            raise NotFoundError(f"no fault {fault_id}")
        self._remaining.pop(fault_id, None)

    def clear(self) -> int:
        count = len(self._faults)
        self._faults.clear()
        self._remaining.clear()
        return count

    def take_stanza_fault(
        self, user: str, device_id: int, tag: str, kinds: frozenset[FaultKind] = _STANZA_KINDS
    ) -> Fault | None:
        """The oldest stanza fault (of ``kinds``) aimed at this device and stanza kind, spending one
        of its count (it leaves the book when spent)."""
        if not self._remaining:
            return None
        for fault_id, active in self._faults.items():
            fault = active.fault
            if fault.kind in kinds and fault.stanza == tag and fault.target.matches(user, device_id):
                self._remaining[fault_id] -= 1
                if self._remaining[fault_id] <= 0:
                    del self._remaining[fault_id]
                    del self._faults[fault_id]
                return fault
        return None

    def active(self, now: float) -> list[ActiveFault]:
        for fault_id in [f.fault_id for f in self._faults.values() if f.fault.kind.lasting and not f.live(now)]:
            del self._faults[fault_id]
        return list(self._faults.values())

    def in_force(self, kind: FaultKind, user: str | None, device_id: int | None, now: float) -> bool:
        return any(f.fault.kind is kind and f.fault.target.matches(user, device_id) for f in self.active(now))

    def refuses_everyone(self, now: float) -> bool:
        return any(f.fault.kind is FaultKind.REFUSE and f.fault.target.user is None for f in self.active(now))
