"""The per-account connection state machine: states, the transition table and its guard.

Rules (the table below is the only place they live):

- ``restoring``: the account was just claimed; its auth state is being opened (sealed state from
  the restore endpoint, or the local cache). Next: ``connecting``, or ``needs_pairing`` when there is
  nothing to restore and no pairing was asked, or ``stopped``.
- ``connecting``: a socket is being opened (login or pairing). Next: ``open``; ``connecting`` again
  for restart-required (515); ``backing_off`` for temporary failures; ``needs_pairing`` when the
  phone logged the device out; ``stopped`` when replaced, outdated, removed or on shutdown.
- ``open``: logged in and serving. Same exits as ``connecting``.
- ``backing_off``: waiting out a jittered delay. Next: ``connecting`` or ``stopped``.
- ``needs_pairing``: logged out; nothing runs until the account is paired again. Next:
  ``connecting`` (a new pairing was asked) or ``stopped``.
- ``stopped``: terminal for this supervisor. A later claim of the account starts a new one.

An illegal request raises :class:`~connector.errors.IllegalAccountTransitionError` and leaves the state as it
was.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from connector.errors import IllegalAccountTransitionError


class AccountState(enum.StrEnum):
    """Where one account's connection is."""

    RESTORING = "restoring"
    CONNECTING = "connecting"
    OPEN = "open"
    BACKING_OFF = "backing_off"
    NEEDS_PAIRING = "needs_pairing"
    STOPPED = "stopped"


S = AccountState

TRANSITIONS: dict[AccountState, frozenset[AccountState]] = {
    S.RESTORING: frozenset({S.CONNECTING, S.NEEDS_PAIRING, S.STOPPED}),
    S.CONNECTING: frozenset({S.OPEN, S.CONNECTING, S.BACKING_OFF, S.NEEDS_PAIRING, S.STOPPED}),
    S.OPEN: frozenset({S.CONNECTING, S.BACKING_OFF, S.NEEDS_PAIRING, S.STOPPED}),
    S.BACKING_OFF: frozenset({S.CONNECTING, S.STOPPED}),
    S.NEEDS_PAIRING: frozenset({S.CONNECTING, S.STOPPED}),
    S.STOPPED: frozenset(),
}

Listener = Callable[[AccountState, AccountState], None]


class AccountStateMachine:
    """Holds one account's state and enforces :data:`TRANSITIONS`."""

    def __init__(self, account_id: str, on_change: Listener | None = None) -> None:
        self.account_id = account_id
        self._state = AccountState.RESTORING
        self._on_change = on_change

    @property
    def state(self) -> AccountState:
        return self._state

    def can(self, new: AccountState) -> bool:
        return new in TRANSITIONS[self._state]

    def to(self, new: AccountState) -> None:
        """Move to ``new`` or raise :class:`IllegalAccountTransitionError` without changing anything."""
        old = self._state
        if new not in TRANSITIONS[old]:
            raise IllegalAccountTransitionError(self.account_id, old.value, new.value)
        self._state = new
        if self._on_change is not None:
            self._on_change(old, new)
