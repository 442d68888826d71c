from __future__ import annotations

import pytest

from connector.backoff import Backoff
from connector.errors import IllegalAccountTransitionError
from connector.states import TRANSITIONS, AccountState, AccountStateMachine


def upper_bound(low: float, high: float) -> float:
    return high


def test_backoff_ceiling_doubles_from_one_second_and_caps_at_sixty() -> None:
    backoff = Backoff(uniform=upper_bound)
    delays = [backoff.next_delay_s() for _ in range(9)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]


def test_backoff_draws_full_jitter_from_zero_to_ceiling() -> None:
    calls: list[tuple[float, float]] = []

    def record(low: float, high: float) -> float:
        calls.append((low, high))
        return low

    backoff = Backoff(uniform=record)
    backoff.next_delay_s()
    backoff.next_delay_s()
    assert calls == [(0.0, 1.0), (0.0, 2.0)]


def test_backoff_resets_only_after_a_stable_minute() -> None:
    backoff = Backoff(uniform=upper_bound)
    for _ in range(4):
        backoff.next_delay_s()
    backoff.opened(100.0)
    backoff.closed(159.0)  # open for 59 s: not stable
    assert backoff.next_delay_s() == 16
    backoff.opened(200.0)
    backoff.closed(260.0)  # a full minute
    assert backoff.next_delay_s() == 1


def test_backoff_survives_huge_attempt_counts() -> None:
    backoff = Backoff(uniform=upper_bound, attempt=10_000)
    assert backoff.next_delay_s() == 60


def test_state_machine_follows_the_table() -> None:
    seen: list[tuple[AccountState, AccountState]] = []
    machine = AccountStateMachine("a1", lambda old, new: seen.append((old, new)))
    for state in (AccountState.CONNECTING, AccountState.OPEN, AccountState.BACKING_OFF,
                  AccountState.CONNECTING, AccountState.NEEDS_PAIRING, AccountState.STOPPED):
        machine.to(state)
    assert machine.state is AccountState.STOPPED
    assert seen[0] == (AccountState.RESTORING, AccountState.CONNECTING)
    assert len(seen) == 6


@pytest.mark.parametrize(("path", "illegal"), [
    ((), AccountState.OPEN),
    ((AccountState.CONNECTING, AccountState.BACKING_OFF), AccountState.OPEN),
    ((AccountState.STOPPED,), AccountState.CONNECTING),
    ((AccountState.CONNECTING, AccountState.NEEDS_PAIRING), AccountState.OPEN),
])
def test_illegal_transition_raises_and_leaves_state(path: tuple[AccountState, ...],
                                                    illegal: AccountState) -> None:
    machine = AccountStateMachine("a1")
    for state in path:
        machine.to(state)
    before = machine.state
    with pytest.raises(IllegalAccountTransitionError) as info:
        machine.to(illegal)
    assert machine.state is before
    assert info.value.requested == illegal.value


def test_stopped_is_terminal_and_every_state_can_stop() -> None:
    assert TRANSITIONS[AccountState.STOPPED] == frozenset()
    for state, targets in TRANSITIONS.items():
        if state is not AccountState.STOPPED:
            assert AccountState.STOPPED in targets
