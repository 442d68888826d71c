"""Records the functions keep in Firestore: accounts, leases, alerts, restore outcomes.

These are plain frozen dataclasses; the storage modules translate them to documents. None of them
holds key material: an account record carries status and timestamps, the pairing code or QR
string only while pairing is under way (the owner needs to see it), never credentials.

Account status rules (who moves an account where):

==================  ===========================================  =============================
status              entered when                                 left when
==================  ===========================================  =============================
pairing             addAccount, or reconnect after a failure     pairing.success + open
connecting          connection.update connecting                 open / closed / ...
connected           connection.update open                       any other connection state
reconnecting        connection.update reconnecting / closed      open
needs_pairing       connection.update needs_pairing (401)        reconnectAccount (re-pair)
pairing_failed      pairing.failed (reason other than expired)   reconnectAccount
pairing_expired     pairing.failed expired, or cleanup timeout   reconnectAccount
restore_failed      connectorSync found no usable version        reconnectAccount
replaced            connection.update replaced (440)             open, reconnectAccount
stopped             connection.update stopped                    claimed again
removing            removeAccount                                account.removed, cleanup
removed             account.removed or nothing left to log out   purged by cleanup
==================  ===========================================  =============================

``serve`` says whether a connector should hold the account; connectorSync only claims accounts
with ``serve`` true (or removing ones that still need a logout).

``control_changed_at`` is the time of the last change that a connector holding the account must act
on: serving on or off (which every takeback, removal, logout, failed restore and pairing restart
goes through, see :func:`serving`) and a reconnect request (:func:`control_changed`). connectorSync
reads a held account only when this moved since the connector's previous call (or its lease is due),
so every writer of those fields must set it in the same write.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.connector_sync import PairingMethod

Clock = Callable[[], datetime]


class AccountStatus(enum.StrEnum):
    PAIRING = "pairing"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    NEEDS_PAIRING = "needs_pairing"
    PAIRING_FAILED = "pairing_failed"
    PAIRING_EXPIRED = "pairing_expired"
    RESTORE_FAILED = "restore_failed"
    REPLACED = "replaced"
    STOPPED = "stopped"
    REMOVING = "removing"
    REMOVED = "removed"


#: Statuses from which reconnectAccount starts a fresh pairing rather than a reconnect.
NEEDS_NEW_PAIRING = frozenset({
    AccountStatus.NEEDS_PAIRING, AccountStatus.PAIRING_FAILED, AccountStatus.PAIRING_EXPIRED,
})
GONE = frozenset({AccountStatus.REMOVING, AccountStatus.REMOVED})
#: Never linked and no longer pairing: such an account does not hold its phone number (its owner may add the
#: number again; re-pairing it then is refused while the newer account holds the number).
NUMBER_FREED = frozenset({AccountStatus.PAIRING_EXPIRED, AccountStatus.PAIRING_FAILED})


def holds_number(account: Account) -> bool:
    """Whether ``account`` keeps its owner from adding its phone number again."""
    return account.status not in GONE and account.status not in NUMBER_FREED


def serving(on: bool, now: datetime) -> dict[str, Any]:
    """Account changes that start or stop serving an account (keeps ``claimable_after`` in step, and
    marks a control change so that a connector holding it hears of it on its next call)."""
    return {"serve": on, "claimable_after": now if on else None, **control_changed(now)}


def control_changed(now: datetime) -> dict[str, Any]:
    """The account change that tells connectorSync a holder must act on this account (a reconnect
    request, or what :func:`serving` already includes)."""
    return {"control_changed_at": now}


class Health(enum.StrEnum):
    """Result of the scheduled health check for one stored session."""

    OK = "ok"
    FELL_BACK = "fell_back"  # the latest version failed; an older one restores
    CANNOT_DECRYPT = "cannot_decrypt"
    INVALID = "invalid"
    STALE = "stale"  # no save for STALE_AFTER_S
    LOGGED_OUT = "logged_out"
    MISSING = "missing"  # the account says it is linked but no state is stored


class RestoreOutcomeKind(enum.StrEnum):
    RESTORED = "restored"
    FELL_BACK = "fell_back"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PairingInfo:
    """What the owner sees while pairing: the code to type, or the QR string to scan."""

    code: str | None = None
    qr: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    owner_uid: str
    phone_number: str
    method: PairingMethod
    status: AccountStatus
    serve: bool
    created_at: datetime
    updated_at: datetime
    pairing_started_at: datetime | None = None
    pairing: PairingInfo | None = None
    linked_jid: str | None = None
    last_connected_at: datetime | None = None
    last_saved_at: datetime | None = None
    last_version: int | None = None
    versions_kept: int = 0
    health: Health | None = None
    health_checked_at: datetime | None = None
    status_reason: str | None = None
    reconnect_requested_at: datetime | None = None
    removed_at: datetime | None = None
    #: When a connector may claim it: the lease's expiry while held, None while not served. An index
    #: for finding claimable accounts in one single-field query; the lease stays the authority.
    claimable_after: datetime | None = None
    #: Last change a holder must act on (serving on/off, reconnect request): see the module docstring.
    control_changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """Who serves an account. ``connector_id`` None means released; ``generation`` is the
    fencing token, incremented on every change of owner. ``taken_at`` is set when this generation
    was claimed from a connector whose lease had run out without a release: that connector may still
    believe it holds the account, and connectorSync looks for such takeovers by this field."""

    account_id: str
    connector_id: str | None
    generation: int
    expires_at: datetime
    taken_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.connector_id is not None and self.expires_at > now

    def held_by(self, connector_id: str, generation: int) -> bool:
        return self.connector_id == connector_id and self.generation == generation


def claimed_lease(current: Lease | None, account_id: str, connector_id: str, now: datetime,
                  ttl_s: float) -> Lease:
    """The lease a claim writes over ``current`` (which nobody holds live): the next generation,
    marked taken when another connector's lease ran out unreleased (a release or revoke clears the
    connector id), so that connector hears of it on its next call."""
    generation = (current.generation if current is not None else 0) + 1
    taken = current is not None and current.connector_id not in (None, connector_id)
    return Lease(account_id, connector_id, generation, now + timedelta(seconds=ttl_s), now if taken else None)


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    account_id: str
    kind: str
    message: str
    created_at: datetime
    open: bool = True


@dataclass(frozen=True, slots=True)
class RestoreOutcome:
    account_id: str
    outcome: RestoreOutcomeKind
    at: datetime
    connector_id: str
    version: int | None = None
    reason: str | None = None
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class ConnectorRecord:
    connector_id: str
    last_sync_at: datetime
    capacity: int
    held: int
    #: The verified identity of the call that first used this id (None: recorded before identities were).
    identity: str | None = None
