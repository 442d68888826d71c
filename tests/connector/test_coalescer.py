from __future__ import annotations

import asyncio

from connector.coalescer import Coalescer, CoalescingFlusher


def test_routine_changes_fall_due_one_window_after_the_first() -> None:
    c = Coalescer(window_s=2.0)
    c.mark("a", "routine", now=10.0)
    c.mark("a", "routine", now=11.5)  # later churn does not push the deadline
    assert c.take_due(11.9) == []
    assert c.take_due(12.0) == [("a", 10.0)]
    assert len(c) == 0


def test_critical_change_is_due_at_once_and_keeps_first_dirty_time() -> None:
    c = Coalescer(window_s=2.0)
    c.mark("a", "routine", now=10.0)
    c.mark("a", "critical", now=10.5)
    assert c.take_due(10.5) == [("a", 10.0)]


def test_take_all_flushes_everything_oldest_first() -> None:
    c = Coalescer(window_s=2.0)
    c.mark("b", "routine", now=5.0)
    c.mark("a", "routine", now=3.0)
    assert c.take_all() == [("a", 3.0), ("b", 5.0)]
    assert c.next_due_at() is None


def test_forget_drops_an_account() -> None:
    c = Coalescer()
    c.mark("a", "critical", now=1.0)
    c.forget("a")
    assert not c.is_dirty("a")
    assert c.take_due(100.0) == []


async def test_flusher_flushes_critical_at_once_and_coalesces_routine() -> None:
    flushed: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()
    flusher = CoalescingFlusher(lambda a, since: flushed.append((a, since)), window_s=0.2, clock=loop.time)
    task = asyncio.create_task(flusher.run())
    try:
        for _ in range(5):
            flusher.mark("routine", "routine")
        flusher.mark("critical", "critical")
        await asyncio.sleep(0.05)
        assert [a for a, _ in flushed] == ["critical"]
        await asyncio.sleep(0.3)
        assert [a for a, _ in flushed] == ["critical", "routine"]
    finally:
        task.cancel()


async def test_flusher_keeps_going_when_one_flush_raises() -> None:
    flushed: list[str] = []

    def flush(account: str, since: float) -> None:
        if account == "bad":
            raise RuntimeError("boom")
        flushed.append(account)

    flusher = CoalescingFlusher(flush)
    flusher.mark("bad", "critical")
    flusher.mark("good", "critical")
    assert flusher.flush_now() == 2
    assert flushed == ["good"]
