"""Recording connection and pairing events from the ``connection-events`` topic on ``accounts/{id}``.

Connection updates carry the lease generation they were produced under, pairing events may (see
``shared.events``); one from an older generation than the account's lease is stale (a connector
that lost the account still talking) and is dropped. A logged-out account (``needs_pairing``)
stops being served and raises an alert; an account replaced by another socket (440) likewise.
``account.removed`` confirms a logout: the stored state, the lease and the open alerts go with it.

Every restored account reports ``connecting`` then ``open``, so this is on the restore's hot path:
an event costs one read (the account, with its lease when the event is fenced, and with the
alerts an ``open`` closes, whose ids are known) and one write (the account, with those alerts
closed in the same commit), through :class:`functions.stores.AccountEventStore`. Raising an alert
and removing an account are rare and keep their own calls.
"""

from __future__ import annotations

import logging
from typing import Any

from functions.alerts import Alerter, alert_ids
from functions.errors import MalformedMessageError, StaleMessageError
from functions.model import GONE, Account, AccountStatus, Clock, PairingInfo, serving
from functions.ports import SessionVault
from functions.stores import AccountEventView, Stores
from shared.events import (
    AccountRemoved,
    ConnectionState,
    ConnectionUpdate,
    Event,
    InvalidEventError,
    PairingCode,
    PairingFailed,
    PairingQr,
    PairingSuccess,
    parse_event,
)

_log = logging.getLogger(__name__)

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
_RESOLVED_BY_OPEN = ("logged_out", "replaced")

#: Statuses a freshly paired account can reach before its ``pairing.success`` is delivered.
_LINKED_WITHOUT_JID = frozenset({AccountStatus.CONNECTING, AccountStatus.CONNECTED, AccountStatus.RECONNECTING})


class ConnectionEventRecorder:
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
            return self._stores.account_events.read(account_id, with_lease=event.generation is not None)
        return self._stores.account_events.read(account_id)

    def _update(self, account: Account, changes: dict[str, Any], close_alert_ids: tuple[str, ...] = ()) -> None:
        changes["updated_at"] = self._clock()
        self._stores.account_events.write(account.account_id, changes, close_alert_ids)

    def _connection(self, account: Account, view: AccountEventView, event: ConnectionUpdate) -> None:
        lease = view.lease
        if lease is not None and lease.generation > event.generation:
            raise StaleMessageError(f"account {account.account_id}: {event.state.value} from generation "
                                    f"{event.generation}, lease is at {lease.generation}")
        status = _STATUS_FOR_STATE[event.state]
        if account.status in GONE:
            return  # the removal flow owns the status now
        pairing = account.status is AccountStatus.PAIRING
        if pairing and event.state not in (ConnectionState.OPEN, ConnectionState.NEEDS_PAIRING):
            return  # sockets come and go while pairing; the pairing events tell the story
        changes: dict[str, Any] = {"status": status, "status_reason": event.reason}
        closing: tuple[str, ...] = ()
        if event.state is ConnectionState.OPEN:
            changes.update(last_connected_at=event.at, pairing=None, status_reason=None)
            closing = view.open_alert_ids  # the logged-out / replaced alerts read with the account
        elif event.state is ConnectionState.NEEDS_PAIRING:
            changes.update(serving(False, self._clock()))
            self._alerter.raise_alert(account.account_id, "logged_out",
                                      f"Account {account.account_id} ({account.phone_number}) was logged "
                                      "out from the phone and needs pairing again.")
        elif event.state is ConnectionState.REPLACED:
            # 440: another socket holds the account; serving it again would fight that socket.
            changes.update(serving(False, self._clock()))
            self._alerter.raise_alert(account.account_id, "replaced",
                                      f"Account {account.account_id} was taken over by another session.")
        self._update(account, changes, closing)
        _log.info("account %s: %s (generation %d, reason %s)", account.account_id, status.value,
                  event.generation, event.reason)

    def _pairing(self, account: Account, view: AccountEventView,
                 event: PairingCode | PairingQr | PairingSuccess | PairingFailed) -> None:
        if event.generation is not None:
            lease = view.lease
            if lease is not None and lease.generation > event.generation:
                # A connector that lost the account still pairing: its code or QR is dead.
                raise StaleMessageError(f"account {account.account_id}: {event.TYPE} from generation "
                                        f"{event.generation}, lease is at {lease.generation}")
        if (isinstance(event, PairingSuccess) and account.linked_jid is None
                and account.status in _LINKED_WITHOUT_JID):
            # The connection opened before this event was delivered (unordered delivery): keep the JID.
            self._update(account, {"linked_jid": event.jid})
            _log.info("account %s: %s recorded late", account.account_id, event.TYPE)
            return
        if account.status is not AccountStatus.PAIRING:
            raise StaleMessageError(f"account {account.account_id}: {event.TYPE} while {account.status.value}")
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
