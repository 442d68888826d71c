"""Recording connection and pairing events from the ``connection-events`` topic on ``accounts/{id}``.

Connection updates and pairing events carry the connector and lease generation they were produced
under (``shared.events``); one from an older generation than the account's lease (or, for pairing, from
another connector at the same generation) is stale (a connector that lost the account still talking)
and is dropped. A logged-out account (``needs_pairing``)
stops being served and raises an alert; an account replaced by another socket (440) likewise.
``account.removed`` confirms a logout: the stored state, the lease and the open alerts go with it.

Every restored account reports ``connecting`` then ``open``, so this is on the restore's hot path:
an event costs one read (the account, with its lease, and with the
alerts an ``open`` closes, whose ids are known) and one write (the account, with those alerts
closed in the same commit), through :class:`functions.stores.AccountEventStore`. A batch
(``connection.updates``, up to 200 updates of one connector) costs the same two calls for all its
accounts: their updates are applied in order to the accounts read, each judged as it would be
alone (a stale one is dropped with a log line, the others are recorded), and the final changes
are committed together. Raising an alert and removing an account are rare and keep their own calls.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from typing import Any

from functions.alerts import Alerter, alert_id, alert_ids
from functions.errors import MalformedMessageError, StaleMessageError
from functions.model import GONE, NEEDS_NEW_PAIRING, Account, AccountStatus, Clock, Lease, PairingInfo, serving
from functions.ports import SessionVault
from functions.stores import AccountEventView, AccountEventWrite, Stores
from shared.events import (
    AccountRemoved,
    ConnectionState,
    ConnectionUpdate,
    ConnectionUpdates,
    Event,
    InvalidEventError,
    PairingCode,
    PairingFailed,
    PairingQr,
    PairingSuccess,
    parse_event,
)
from shared.phone_numbers import same_number

_log = logging.getLogger(__name__)

#: ``statusReason`` of an account linked by another phone than its number.
WRONG_PHONE = "wrong_phone"


#: Where each connector-reported state moves a linked (not pairing) account.
_STATUS_FOR_STATE = {
    ConnectionState.CONNECTING: AccountStatus.CONNECTING,
    ConnectionState.OPEN: AccountStatus.CONNECTED,
    ConnectionState.RECONNECTING: AccountStatus.RECONNECTING,
    ConnectionState.CLOSED: AccountStatus.RECONNECTING,
    ConnectionState.NEEDS_PAIRING: AccountStatus.NEEDS_PAIRING,
    ConnectionState.REPLACED: AccountStatus.REPLACED,
    ConnectionState.STOPPED: AccountStatus.STOPPED,
}

#: Alerts an open connection ends: the phone linked the device again, no other socket holds it.
_RESOLVED_BY_OPEN = ("logged_out", "replaced", "client_outdated")
#: The alert a 405 raises says what fixes it: WhatsApp refuses the announced Web version.
CLIENT_OUTDATED_FIX = ("set KEEPER_WA_VERSION on the connector to the current WhatsApp Web version (or "
                       "KEEPER_WA_VERSION_FETCH=1 to read it at start) and restart the connector; every account "
                       "stays stopped until then")

#: Statuses a freshly paired account can reach before its ``pairing.success`` is delivered.
_LINKED_WITHOUT_JID = frozenset({AccountStatus.CONNECTING, AccountStatus.CONNECTED, AccountStatus.RECONNECTING})


#: States whose update raises an alert that ``open`` closes (kind by state).
_ALERT_FOR_STATE = {ConnectionState.NEEDS_PAIRING: "logged_out", ConnectionState.REPLACED: "replaced"}


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    """What one connection update does to an account."""

    #: Account changes to write; None when the update changes nothing (removal or pairing owns the status).
    changes: dict[str, Any] | None
    #: Alerts the changes close (an ``open`` closes the logged-out / replaced alerts).
    closes: tuple[str, ...] = ()
    #: The account's logged-out / replaced alerts open after the update.
    still_open: tuple[str, ...] = ()


class _PendingWrites:
    """Changes of a batch not written yet: per account, merged in order, with the alerts they close."""

    def __init__(self) -> None:
        self._changes: dict[str, dict[str, Any]] = {}
        self._closes: dict[str, tuple[str, ...]] = {}
        self._updates: list[ConnectionUpdate] = []

    def add(self, update: ConnectionUpdate, step: _Step) -> None:
        account_id = update.account_id
        self._changes.setdefault(account_id, {}).update(step.changes or {})
        self._closes[account_id] = tuple(dict.fromkeys((*self.closes(account_id), *step.closes)))
        self._updates.append(update)

    def closes(self, account_id: str) -> tuple[str, ...]:
        return self._closes.get(account_id, ())

    def take(self, account_ids: Iterable[str] | None = None
             ) -> tuple[list[AccountEventWrite], list[ConnectionUpdate]]:
        """The writes of the given accounts (all: None) and the updates they record, now forgotten."""
        taking = set(self._changes) if account_ids is None else set(account_ids) & set(self._changes)
        writes = [AccountEventWrite(a, self._changes.pop(a), self._closes.pop(a, ())) for a in list(self._changes)
                  if a in taking]
        recorded = [u for u in self._updates if u.account_id in taking]
        self._updates = [u for u in self._updates if u.account_id not in taking]
        return writes, recorded


class ConnectionEventRecorder:
    """Records one ``connection-events`` message (an event, or a batch of connection updates)."""

    def __init__(self, stores: Stores, vault: SessionVault, alerter: Alerter, clock: Clock) -> None:
        self._stores = stores
        self._vault = vault
        self._alerter = alerter
        self._clock = clock

    def handle(self, data: bytes) -> Event:
        try:
            event = parse_event(data)
        except InvalidEventError as exc:
            raise MalformedMessageError(f"connection event: {exc}") from None
        if isinstance(event, ConnectionUpdates):
            self._updates(event)
            return event
        view = self._read(event)
        account = view.account
        if account is None:
            raise StaleMessageError(f"account {event.account_id}: unknown, {event.TYPE} dropped")
        if isinstance(event, AccountRemoved):
            if account.status not in GONE:
                # Only a removal the owner asked for ends in deleting the stored state: a stray
                # account.removed (a connector bug) must not wipe a live account's sessions.
                raise MalformedMessageError(f"account {account.account_id}: account.removed while "
                                            f"{account.status.value}, not removing; ignored")
            self._removed(account)
        elif account.status is AccountStatus.REMOVED:
            raise StaleMessageError(f"account {account.account_id}: removed, {event.TYPE} dropped")
        elif isinstance(event, ConnectionUpdate):
            self._connection(account, view, event)
        elif isinstance(event, PairingCode | PairingQr | PairingSuccess | PairingFailed):
            self._pairing(account, view, event)
        else:
            _log.info("account %s: %s is not for this topic, ignored", account.account_id, event.TYPE)
        return event

    def _read(self, event: Event) -> AccountEventView:
        """Everything the event's checks and writes need, in one read."""
        account_id = event.account_id
        if isinstance(event, ConnectionUpdate):
            closes = alert_ids(account_id, _RESOLVED_BY_OPEN) if event.state is ConnectionState.OPEN else ()
            return self._stores.account_events.read(account_id, with_lease=True, alert_ids=closes)
        if isinstance(event, PairingCode | PairingQr | PairingSuccess | PairingFailed):
            return self._stores.account_events.read(account_id, with_lease=True)
        return self._stores.account_events.read(account_id)

    def _update(self, account: Account, changes: dict[str, Any]) -> None:
        changes["updated_at"] = self._clock()
        self._stores.account_events.write(account.account_id, changes)

    def _connection(self, account: Account, view: AccountEventView, event: ConnectionUpdate) -> None:
        step = self._step(account, view.lease, event, view.open_alert_ids)
        if step.changes is not None:
            self._stores.account_events.write(account.account_id, step.changes, step.closes)
            self._recorded(event)
        self._count_reconnects([event])

    def _step(self, account: Account, lease: Lease | None, event: ConnectionUpdate,
              open_alerts: tuple[str, ...]) -> _Step:
        """The changes ``event`` makes to ``account`` (whose logged-out / replaced alerts
        ``open_alerts`` are open); raises the alert a logout or a takeover calls for. Raises
        :class:`StaleMessageError` for an update from an older generation than the lease."""
        if lease is not None and lease.generation > event.generation:
            raise StaleMessageError(f"account {account.account_id}: {event.state.value} from generation "
                                    f"{event.generation}, lease is at {lease.generation}")
        if account.status in GONE:
            return _Step(None, still_open=open_alerts)  # the removal flow owns the status now
        if account.status in NEEDS_NEW_PAIRING and (event.state is not ConnectionState.OPEN
                                                    or account.status_reason == WRONG_PHONE):
            # The pairing failed (or the phone logged out): the socket closing after it (stopped,
            # lease_not_served) must not hide why; only a new pairing or an open connection moves on.
            return _Step(None, still_open=open_alerts)
        pairing = account.status is AccountStatus.PAIRING
        if pairing and event.state not in (ConnectionState.OPEN, ConnectionState.NEEDS_PAIRING):
            # Sockets come and go while pairing; the pairing events tell the story.
            return _Step(None, still_open=open_alerts)
        changes: dict[str, Any] = {"status": _STATUS_FOR_STATE[event.state], "status_reason": event.reason}
        closes: tuple[str, ...] = ()
        if event.state is ConnectionState.OPEN:
            changes.update(last_connected_at=event.at, pairing=None, status_reason=None)
            closes, open_alerts = open_alerts, ()
        elif event.state is ConnectionState.NEEDS_PAIRING:
            changes.update(serving(False, self._clock()))
            self._alerter.raise_alert(account.account_id, "logged_out",
                                      f"Account {account.account_id} ({account.phone_number}) was logged "
                                      "out from the phone and needs pairing again.")
        elif event.state is ConnectionState.STOPPED and event.reason == "client_outdated":
            self._alerter.raise_alert(account.account_id, "client_outdated",
                                      f"Account {account.account_id}: WhatsApp refused the connector's Web version "
                                      f"(405 client_outdated): {CLIENT_OUTDATED_FIX}.")
        elif event.state is ConnectionState.REPLACED:
            # 440: another socket holds the account; serving it again would fight that socket.
            changes.update(serving(False, self._clock()))
            self._alerter.raise_alert(account.account_id, "replaced",
                                      f"Account {account.account_id} was taken over by another session.")
        kind = ("client_outdated" if event.state is ConnectionState.STOPPED and event.reason == "client_outdated"
                else _ALERT_FOR_STATE.get(event.state))
        if kind is not None:
            open_alerts = tuple(dict.fromkeys((*open_alerts, alert_id(account.account_id, kind))))
        changes["updated_at"] = self._clock()
        return _Step(changes, closes, open_alerts)

    @staticmethod
    def _recorded(event: ConnectionUpdate) -> None:
        _log.info("account %s: %s (generation %d, reason %s)", event.account_id,
                  _STATUS_FOR_STATE[event.state].value, event.generation, event.reason)

    def _updates(self, batch: ConnectionUpdates) -> None:
        """Record a batch of one connector's updates: one read, the updates applied in order to
        what was read, one write of every account's final changes."""
        opening = {u.account_id for u in batch.updates if u.state is ConnectionState.OPEN}
        views = self._stores.account_events.read_many(
            batch.accounts, {a: alert_ids(a, _RESOLVED_BY_OPEN) for a in opening})
        accounts = {a: view.account for a, view in views.items()}
        open_alerts = {a: view.open_alert_ids for a, view in views.items()}
        pending = _PendingWrites()
        counted: list[ConnectionUpdate] = []
        for update in batch.updates:
            account_id = update.account_id
            account = accounts[account_id]
            if update.state in _ALERT_FOR_STATE and pending.closes(account_id):
                # The alert this update raises may be one an earlier update of the batch closes:
                # that close must land first, or raising would find it open and the write close it.
                self._write(pending.take([account_id]))
            try:
                if account is None:
                    raise StaleMessageError(f"account {account_id}: unknown, {update.TYPE} dropped")
                if account.status is AccountStatus.REMOVED:
                    raise StaleMessageError(f"account {account_id}: removed, {update.TYPE} dropped")
                step = self._step(account, views[account_id].lease, update, open_alerts[account_id])
            except StaleMessageError as exc:
                _log.warning("connection.updates from %s: update dropped: %s", batch.connector_id, exc.message)
                continue
            open_alerts[account_id] = step.still_open
            counted.append(update)
            if step.changes is not None:
                accounts[account_id] = dataclasses.replace(account, **step.changes)
                pending.add(update, step)
        self._write(pending.take())
        self._count_reconnects(counted)

    def _count_reconnects(self, updates: Iterable[ConnectionUpdate]) -> None:
        """Reconnects per hour for the dashboard: one increment per hour the updates fall in."""
        hours: dict[Any, int] = {}
        for update in updates:
            if update.state is ConnectionState.RECONNECTING:
                hour = update.at.replace(minute=0, second=0, microsecond=0)
                hours[hour] = hours.get(hour, 0) + 1
        for hour, count in hours.items():
            self._stores.status.count_reconnects(hour, count)

    def _write(self, taken: tuple[list[AccountEventWrite], list[ConnectionUpdate]]) -> None:
        writes, recorded = taken
        if writes:
            self._stores.account_events.write_many(writes)
        for update in recorded:
            self._recorded(update)

    def _pairing(self, account: Account, view: AccountEventView,
                 event: PairingCode | PairingQr | PairingSuccess | PairingFailed) -> None:
        lease = view.lease
        # The last holder's outcome after it released the account (nobody took it since): a refused
        # link releases at once, and this event can be delivered after the release.
        outcome_after_release = (lease is not None and lease.connector_id is None
                                 and lease.generation == event.generation
                                 and isinstance(event, PairingSuccess | PairingFailed))
        if lease is not None and not outcome_after_release and (lease.generation > event.generation or (
                lease.generation == event.generation and lease.connector_id != event.connector_id)):
            # A connector that lost (or released) the account still pairing: its code or QR is dead,
            # and its failure must not stop the account the new holder pairs.
            raise StaleMessageError(f"account {account.account_id}: {event.TYPE} from {event.connector_id} at "
                                    f"generation {event.generation}, lease is {lease.connector_id} at "
                                    f"{lease.generation}")
        if (isinstance(event, PairingSuccess) and account.linked_jid is None
                and account.status in _LINKED_WITHOUT_JID):
            # The connection opened before this event was delivered (unordered delivery): keep the JID.
            self._update(account, {"linked_jid": event.jid})
            _log.info("account %s: %s recorded late", account.account_id, event.TYPE)
            return
        if account.status is not AccountStatus.PAIRING:
            raise StaleMessageError(f"account {account.account_id}: {event.TYPE} while {account.status.value}")
        if isinstance(event, PairingSuccess) and not same_number(account.phone_number, event.jid):
            # Linked by another phone than the account's number (a QR scanned by the wrong phone): that
            # number would be managed twice. The connector unlinks it; the account waits for a new pairing.
            self._update(account, {"status": AccountStatus.PAIRING_FAILED, **serving(False, self._clock()),
                                   "pairing": None, "status_reason": WRONG_PHONE})
            _log.warning("account %s: linked by another phone than its number, refused", account.account_id)
            return
        if isinstance(event, PairingCode):
            self._update(account, {"pairing": PairingInfo(code=event.code, expires_at=event.expires_at)})
        elif isinstance(event, PairingQr):
            self._update(account, {"pairing": PairingInfo(qr=event.qr, expires_at=event.expires_at)})
        elif isinstance(event, PairingSuccess):
            # Linked: from now on a claim restores the stored state instead of pairing again.
            self._update(account, {"status": AccountStatus.CONNECTING, "linked_jid": event.jid,
                                   "pairing": None, "status_reason": None})
        else:
            status = AccountStatus.PAIRING_EXPIRED if event.reason == "expired" else AccountStatus.PAIRING_FAILED
            self._update(account, {"status": status, **serving(False, self._clock()), "pairing": None,
                                   "status_reason": event.reason})
        _log.info("account %s: %s recorded", account.account_id, event.TYPE)

    def _removed(self, account: Account) -> None:
        self._vault.delete(account.account_id)
        self._stores.leases.delete(account.account_id)
        self._alerter.resolve(account.account_id)
        self._update(account, {"status": AccountStatus.REMOVED, **serving(False, self._clock()), "pairing": None})
        _log.info("account %s: removed, stored state deleted", account.account_id)
