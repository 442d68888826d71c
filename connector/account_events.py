"""What the supervisors report, published: connection updates, pairing events, incoming messages.

:class:`AccountEvents` is the :class:`~connector.supervisor.SupervisorHooks` of every held account.
Connection updates go out in batches (:mod:`connector.reports`); pairing events one per message on
the connection-events topic; incoming messages go to the :class:`~connector.inbox.Inbox` (published,
made durable, then acknowledged: docs/ARCHITECTURE.md, "Receive durability").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta

from connector.cache import StateCache
from connector.errors import CacheError
from connector.inbox import Inbox
from connector.metrics import Counter
from connector.protocol.close import CloseReason
from connector.protocol.events import DuplicateIgnored, ReceivedMessage, RetryRequested
from connector.protocol.send_status import SendStatus
from connector.publisher import OrderedPublisher
from connector.reports import ConnectionReports
from connector.sender import Sender
from connector.slots import AccountSlot
from connector.snapshot_writer import SnapshotWriter
from connector.states import AccountState
from shared.events import (
    ConnectionState,
    ConnectionUpdate,
    PairingCode,
    PairingFailed,
    PairingQr,
    PairingSuccess,
)
from shared.phone_numbers import same_number

log = logging.getLogger(__name__)

PAIRING_CODE_TTL_S = 180.0
QR_TTL_S = 20.0

#: Why a pairing ended, as the functions record it (``statusReason``) and the web app explains it;
#: keyed by the close reason of the socket.
PAIRING_WRONG_PHONE = "pairing_wrong_phone"
PAIRING_FAILURE_REASONS = {
    CloseReason.PAIRING_EXPIRED.value: "expired",
    CloseReason.PAIRING_UNKNOWN_NUMBER.value: "unknown_number",
    CloseReason.PAIRING_WRONG_CODE.value: "wrong_code",
    PAIRING_WRONG_PHONE: "wrong_phone",
    CloseReason.PAIRING_FAILED.value: "failed",
}


class AccountEvents:
    """Implements :class:`~connector.supervisor.SupervisorHooks` for the accounts in ``accounts``."""

    def __init__(self, connector_id: str, accounts: Mapping[str, AccountSlot], *, events: OrderedPublisher,
                 inbox: Inbox, reports: ConnectionReports, writer: SnapshotWriter,
                 cache: StateCache | None, reconnects: Counter, sender: Sender | None = None) -> None:
        """``sender``: the send path (:mod:`connector.sender`), told of send statuses and lost sockets."""
        self._send_path = sender
        self._connector_id = connector_id
        self._accounts = accounts
        self._events = events
        self._inbox = inbox
        self._reports = reports
        self._writer = writer
        self._cache = cache
        self._reconnects = reconnects
        #: Unlinks a device linked by the wrong phone (the service sets it: it owns the sockets).
        self.refuse_link: Callable[[AccountSlot], None] | None = None

    def report(self, account_id: str, state: ConnectionState, reason: str | None, code: int | None,
               attempt: int) -> None:
        slot = self._accounts.get(account_id)
        if slot is None:
            return
        if state is ConnectionState.NEEDS_PAIRING and self._cache is not None:
            # These keys were unlinked by the phone: never bring them back from the cache.
            with contextlib.suppress(CacheError):
                self._cache.delete(account_id)
        if state is ConnectionState.OPEN:
            log.info("connected", extra={"account_id": account_id, "fields": {"generation": slot.generation}})
        self.publish_update(account_id, slot.generation, state, reason, code=code, attempt=attempt)

    def publish_update(self, account_id: str, generation: int, state: ConnectionState, reason: str | None,
                       *, code: int | None = None, attempt: int = 0) -> None:
        event = ConnectionUpdate(account_id=account_id, connector_id=self._connector_id,
                                 generation=generation, at=datetime.now(UTC), state=state, reason=reason,
                                 code=code, attempt=attempt)
        self._reports.add(event)

    def _sender(self, account_id: str) -> tuple[str, int]:
        """Who sends an account's pairing events: this connector, under the generation it holds the account."""
        slot = self._accounts.get(account_id)
        return self._connector_id, slot.generation if slot is not None else 0

    def pairing_code(self, account_id: str, code: str) -> None:
        log.info("pairing code ready", extra={"account_id": account_id})
        event = PairingCode(account_id, code.replace("-", "").upper(),
                            datetime.now(UTC) + timedelta(seconds=PAIRING_CODE_TTL_S), *self._sender(account_id))
        self._events.submit(account_id, event.to_json(), event.attributes())

    def pairing_qr(self, account_id: str, qr: str) -> None:
        log.info("pairing QR ready", extra={"account_id": account_id})
        event = PairingQr(account_id, qr, datetime.now(UTC) + timedelta(seconds=QR_TTL_S), *self._sender(account_id))
        self._events.submit(account_id, event.to_json(), event.attributes())

    def paired(self, account_id: str, jid: str) -> None:
        slot = self._accounts.get(account_id)
        if slot is not None and slot.pairing_phone and not same_number(slot.pairing_phone, jid):
            # A QR scanned by another phone than the account's: that number would be managed twice.
            log.warning("linked by another phone than the account's number: unlinking",
                        extra={"account_id": account_id})
            self.pairing_failed(account_id, PAIRING_WRONG_PHONE)
            if self.refuse_link is not None:
                self.refuse_link(slot)
            return
        log.info("paired", extra={"account_id": account_id})
        event = PairingSuccess(account_id, jid, *self._sender(account_id))
        self._events.submit(account_id, event.to_json(), event.attributes())

    def pairing_failed(self, account_id: str, reason: str) -> None:
        log.warning("pairing failed", extra={"account_id": account_id, "fields": {"reason": reason}})
        slug = PAIRING_FAILURE_REASONS.get(str(reason), str(reason))
        event = PairingFailed(account_id, slug, *self._sender(account_id))
        self._events.submit(account_id, event.to_json(), event.attributes())

    def message(self, account_id: str, message: ReceivedMessage, ack: Callable[[], Awaitable[bool]]) -> None:
        if account_id in self._accounts:
            self._inbox.received(account_id, message, ack)

    def message_retried(self, account_id: str, event: RetryRequested | DuplicateIgnored) -> None:
        self._inbox.noted(account_id, event)

    def state_changed(self, account_id: str, old: AccountState, new: AccountState) -> None:
        log.debug("state", extra={"account_id": account_id, "fields": {"from": old.value, "to": new.value}})

    def reconnecting(self, account_id: str, reason: str) -> None:
        # The supervisor logs the reconnect with its reason and delay; count it here.
        self._reconnects.inc(reason)

    async def persist_now(self, account_id: str) -> bool:
        return await self._writer.persist_now(account_id)

    def send_status(self, account_id: str, status: SendStatus) -> None:
        if self._send_path is not None:
            self._send_path.send_status(account_id, status)

    def socket_ended(self, account_id: str) -> None:
        if self._send_path is not None:
            self._send_path.socket_ended(account_id)
