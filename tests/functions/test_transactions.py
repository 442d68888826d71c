"""run_contended: a transaction aborted by contention runs again; anything else is raised at once."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core.exceptions import Aborted, NotFound

from functions.transactions import contended, run_contended


class _Client:
    def transaction(self) -> object:
        return object()


def _exhausted() -> ValueError:
    try:
        raise ValueError("Failed to commit transaction in 5 attempts.") from Aborted("lock timeout")
    except ValueError as exc:
        return exc


def test_an_aborted_read_and_exhausted_commits_run_again_until_it_commits() -> None:
    failures: list[BaseException] = [Aborted("Transaction lock timeout."), _exhausted()]
    pauses: list[float] = []

    def run(transaction: Any) -> str:
        if failures:
            raise failures.pop(0)
        return "committed"

    assert run_contended(run, _Client(), sleep=pauses.append) == "committed"
    assert len(pauses) == 2 and all(p >= 0 for p in pauses)


def test_contention_past_the_last_round_is_raised() -> None:
    calls: list[int] = []

    def run(transaction: Any) -> None:
        calls.append(1)
        raise Aborted("Transaction lock timeout.")

    with pytest.raises(Aborted):
        run_contended(run, _Client(), rounds=3, sleep=lambda _: None)
    assert len(calls) == 3


@pytest.mark.parametrize("error", [NotFound("gone"), ValueError("a precondition of ours"), KeyError("x")])
def test_other_errors_are_raised_at_once(error: Exception) -> None:
    calls: list[int] = []

    def run(transaction: Any) -> None:
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        run_contended(run, _Client(), sleep=lambda _: None)
    assert calls == [1]
    assert not contended(error)


def test_no_run_starts_past_the_time_budget() -> None:
    now = [0.0]
    calls: list[float] = []

    def run(transaction: Any) -> None:
        calls.append(now[0])
        now[0] += 1.5  # each run waits on locks before it is aborted
        raise Aborted("Transaction lock timeout.")

    with pytest.raises(Aborted):
        run_contended(run, _Client(), rounds=5, budget_s=2.0, sleep=lambda _: None, clock=lambda: now[0])
    assert calls == [0.0, 1.5], "the third run would start 3 s in, past the 2 s budget"
