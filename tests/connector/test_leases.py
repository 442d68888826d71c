from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from connector.errors import SyncUnavailable
from connector.leases import LeaseKeeper, LeaseTable
from shared.connector_sync import Claim, Command, HeldLease, Lost, RenewedLease, SyncReply, SyncRequest
from shared.events import OutboundSend, SendKind
from testkit.fake_links import eventually


def test_deadline_counts_from_the_time_the_request_was_sent() -> None:
    table = LeaseTable(guard_s=3.0)
    table.add("a", 1, sent_at=100.0, ttl_s=30.0)
    assert table.expiring(126.9) == []
    assert [lease.account_id for lease in table.expiring(127.0)] == ["a"]
    assert table.renew(RenewedLease("a", 1), sent_at=120.0, ttl_s=30.0)
    assert table.expiring(146.9) == []
    assert not table.renew(RenewedLease("a", 2), sent_at=130.0, ttl_s=30.0)  # other generation
    assert not table.renew(RenewedLease("b", 1), sent_at=130.0, ttl_s=30.0)


class Owner:
    def __init__(self) -> None:
        self.log: list[str] = []

    def on_vault_key(self, public_key: bytes, key_id: str) -> None:
        self.log.append(f"key:{key_id}")

    def on_claimed(self, claim: Claim) -> None:
        self.log.append(f"claimed:{claim.account_id}")

    def on_lost(self, lost: Lost) -> None:
        self.log.append(f"lost:{lost.account_id}")

    def on_expiring(self, account_id: str) -> None:
        self.log.append(f"expiring:{account_id}")

    def on_command(self, command: Command) -> None:
        self.log.append(f"{command.action}:{command.account_id}")

    def on_pending_sends(self, sends: Sequence[OutboundSend]) -> None:
        self.log.extend(f"send:{s.account_id}:{s.message_id}" for s in sends)


class ScriptedClient:
    def __init__(self, answers: list[SyncReply | Exception]) -> None:
        self.answers = answers
        self.requests: list[SyncRequest] = []

    async def sync(self, request: SyncRequest) -> SyncReply:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def close(self) -> None:
        pass


def response(**kwargs: object) -> SyncReply:
    return SyncReply(lease_ttl_s=30.0, vault_public_key=bytes(32), vault_key_id="k", **kwargs)  # type: ignore[arg-type]


async def test_keeper_applies_claims_renewals_losses_and_commands() -> None:
    now = [0.0]
    owner = Owner()
    client = ScriptedClient([
        response(claimed=[Claim("a", 1, "restore"), Claim("b", 4, "restore")]),
        response(renewed=[RenewedLease("a", 1)], lost=[Lost("b", "taken")],
                 commands=[Command("a", "reconnect"), Command("zz", "remove")]),
        SyncUnavailable("down"),
    ])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=5,
                         clock=lambda: now[0])
    await keeper.sync_once()
    assert keeper.synced_once.is_set()
    now[0] = 14.0  # 16 s left: within guard + period + call timeout, so both are sent for renewal
    await keeper.sync_once()
    assert client.requests[1].held == [HeldLease("a", 1), HeldLease("b", 4)]
    assert owner.log == ["key:k", "claimed:a", "claimed:b", "key:k", "lost:b", "reconnect:a"]
    now[0] = 20.0
    with pytest.raises(SyncUnavailable):
        await keeper.sync_once()
    # "a" was renewed by the request sent at 14 s: deadline 44 s, guard 3 s.
    now[0] = 40.9
    assert keeper.check_expiring() == []
    now[0] = 41.0
    assert keeper.check_expiring() == ["a"]
    assert owner.log[-1] == "expiring:a"
    assert len(keeper.table) == 0


async def test_pending_sends_reach_the_owner_after_the_claims_of_their_answer() -> None:
    owner = Owner()
    send = OutboundSend("a", "3EB0AAAA", "40711111111@s.whatsapp.net", SendKind.TEXT,
                        datetime(2026, 11, 25, tzinfo=UTC), text="hi")
    client = ScriptedClient([response(claimed=[Claim("a", 1, "restore")], pending_sends=[send])])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=5)
    await keeper.sync_once()
    assert owner.log == ["key:k", "claimed:a", "send:a:3EB0AAAA"]
    # and the reply carries them over the wire
    assert SyncReply.from_json(response(pending_sends=[send]).to_json()).pending_sends == [send]


async def test_release_is_sent_once_and_claims_while_draining_go_back() -> None:
    owner = Owner()
    client = ScriptedClient([
        response(claimed=[Claim("a", 1, "restore")]),
        response(claimed=[Claim("late", 2, "restore")]),
        response(),
    ])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=5)
    await keeper.sync_once()
    keeper.stop_taking_work()
    keeper.release("a")
    await keeper.sync_once()
    assert client.requests[1].capacity == 0
    assert client.requests[1].release == [HeldLease("a", 1)]
    assert client.requests[1].held == []
    await keeper.sync_once()
    assert client.requests[2].release == [HeldLease("late", 2)]
    assert "claimed:late" not in owner.log


async def test_keeper_asks_again_at_once_while_claims_keep_coming() -> None:
    import asyncio

    owner = Owner()
    client = ScriptedClient([
        response(claimed=[Claim("a", 1, "restore")]),
        response(claimed=[Claim("b", 1, "restore")]),
        response(),
        response(),
    ])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=30)
    task = asyncio.create_task(keeper.run())
    try:
        for _ in range(100):
            if len(client.requests) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert len(client.requests) == 3  # two batches back to back, then the 30 s period
    assert owner.log.count("claimed:a") == 1 and owner.log.count("claimed:b") == 1


async def test_a_failing_owner_callback_does_not_stop_the_others() -> None:
    class Fragile(Owner):
        def on_claimed(self, claim: Claim) -> None:
            if claim.account_id == "bad":
                raise RuntimeError("boom")
            super().on_claimed(claim)

    owner = Fragile()
    client = ScriptedClient([response(claimed=[Claim("bad", 1, "restore"), Claim("good", 1, "restore")])])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=5)
    await keeper.sync_once()
    assert "claimed:good" in owner.log


async def test_release_pending_splits_over_parallel_calls_that_claim_nothing() -> None:
    owner = Owner()
    claims = [Claim(f"a{i}", 1, "restore") for i in range(10)]
    client = ScriptedClient([response(claimed=claims), response(), SyncUnavailable("one call lost"), response(),
                             response(), response()])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=10, public_key=bytes(32), interval_s=5)
    await keeper.sync_once()
    keeper.stop_taking_work()
    for claim in claims:
        keeper.release(claim.account_id)
    assert await keeper.release_pending(parallel=4) == 7  # one chunk of 3 failed
    calls = client.requests[1:]
    assert [len(c.release) for c in calls] == [3, 3, 3, 1]
    assert all(c.capacity == 0 and not c.held for c in calls)
    assert {r.account_id for r in calls[1].release} == set(keeper._to_release)  # kept for a retry
    assert await keeper.release_pending(parallel=1) == 3


async def test_a_hanging_call_does_not_hold_a_socket_past_its_lease() -> None:
    """connectorSync can hang until the client's timeout (8 s), longer than the guard: the deadline
    is watched meanwhile (issue 7: sockets were closed ~3 s after their lease had run out)."""
    owner = Owner()
    answer_now = asyncio.Event()

    class HangingClient(ScriptedClient):
        async def sync(self, request: SyncRequest) -> SyncReply:
            if self.requests:
                self.requests.append(request)
                await answer_now.wait()
                raise SyncUnavailable("timed out")
            return await super().sync(request)

    first = SyncReply(lease_ttl_s=1.0, vault_public_key=bytes(32), vault_key_id="k",
                         claimed=[Claim("a", 1, "restore")])
    client = HangingClient([first])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=0.1,
                         guard_s=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = loop.create_task(keeper.run())
    try:
        await eventually(lambda: "expiring:a" in owner.log, timeout_s=3.0)
        assert loop.time() - started < 1.0, "closed before the 1 s lease ran out"
        assert len(client.requests) == 2 and not answer_now.is_set(), "while the second call still hangs"
        assert len(keeper.table) == 0
    finally:
        answer_now.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_only_leases_near_their_deadline_are_sent_for_renewal() -> None:
    """A lease is renewed once its deadline is within guard + period + call timeout (3 + 5 + 8 s of a
    30 s lease); before that it is only confirmed, and its deadline stays where the last renewal put it."""
    now = [100.0]
    key = bytes(32)
    answers: list[SyncReply | Exception] = [
        SyncReply(lease_ttl_s=30.0, vault_public_key=key, vault_key_id="k", claimed=[Claim("a", 1, "restore")]),
        SyncReply(lease_ttl_s=30.0, vault_public_key=key, vault_key_id="k"),
        SyncReply(lease_ttl_s=30.0, vault_public_key=key, vault_key_id="k", renewed=[RenewedLease("a", 1)]),
    ]
    client = ScriptedClient(answers)
    counted: list[tuple[int, str]] = []
    keeper = LeaseKeeper(client, Owner(), connector_id="c", capacity=5, public_key=key, interval_s=5.0,
                         guard_s=3.0, clock=lambda: now[0], on_renewals=lambda n, r: counted.append((n, r)),
                         call_timeout_s=8.0)
    await keeper.sync_once()  # claimed at 100: deadline 130
    now[0] = 113.9  # 16.1 s left: not yet
    await keeper.sync_once()
    assert client.requests[1].held == [HeldLease("a", 1, renew=False)]
    assert client.requests[1].to_json()["held"] == [{"accountId": "a", "generation": 1, "renew": False}]
    lease = keeper.table.get("a")
    assert lease is not None and lease.deadline == 130.0, "a confirmation does not move the deadline"
    assert ("not_renewed" not in {r for _, r in counted}), "nothing asked, nothing missed"
    now[0] = 114.0  # 16 s left: due
    await keeper.sync_once()
    assert client.requests[2].held == [HeldLease("a", 1)]
    assert client.requests[2].to_json()["held"] == [{"accountId": "a", "generation": 1}]
    assert lease.deadline == 144.0
    assert (1, "ok") in counted


async def test_claims_are_handed_over_while_the_next_call_is_on_its_way() -> None:
    """While work keeps coming, the next request goes out before the claims of the last answer are
    opened (sockets open while the functions restore the next batch); every claim, and a command for
    it, still reaches the owner before the next answer is applied."""
    owner = Owner()
    seen_at_request: list[list[str]] = []

    class Recording(ScriptedClient):
        async def sync(self, request: SyncRequest) -> SyncReply:
            seen_at_request.append(list(owner.log))
            await asyncio.sleep(0.02)  # the call takes a while: the claims are opened meanwhile
            return await super().sync(request)

    client = Recording([
        response(claimed=[Claim("a", 1, "restore"), Claim("b", 1, "restore")], commands=[Command("b", "remove")]),
        response(claimed=[Claim("c", 1, "restore")], lost=[Lost("a", "taken")]),
        response(),
    ])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=30)
    task = asyncio.create_task(keeper.run())
    try:
        await eventually(lambda: owner.log.count("key:k") == 3)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert "claimed:a" not in seen_at_request[1], "the second request left before the first claims were opened"
    assert owner.log == ["key:k", "claimed:a", "claimed:b", "remove:b", "key:k", "lost:a", "claimed:c", "key:k"]
    assert {ref.account_id for ref in client.requests[1].held} == {"a", "b"}


async def test_claims_kept_back_at_shutdown_go_straight_back() -> None:
    owner = Owner()
    client = ScriptedClient([response(claimed=[Claim("a", 3, "restore")]), response()])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=30)
    await keeper.sync_once(pipelined=True)
    assert "claimed:a" not in owner.log and "a" in keeper.table
    keeper.stop_taking_work()
    assert "a" not in keeper.table
    await keeper.sync_once()
    assert client.requests[1].release == [HeldLease("a", 3)]
    assert "claimed:a" not in owner.log


async def test_after_a_failed_call_the_next_one_renews_without_claiming_then_claims_at_once() -> None:
    # A claiming call can run for the functions' claim budget; after a failure (a timeout under load)
    # the renewals must not wait behind claims, and claiming resumes right after.
    owner = Owner()
    client = ScriptedClient([response(claimed=[Claim("a", 1, "restore")]), SyncUnavailable("timed out"),
                             response(), response(claimed=[Claim("b", 1, "restore")]), response()])
    keeper = LeaseKeeper(client, owner, connector_id="c", capacity=5, public_key=bytes(32), interval_s=30)
    loop = asyncio.get_running_loop()
    task = loop.create_task(keeper.run())
    try:
        await eventually(lambda: len(client.requests) >= 5, timeout_s=5.0)
        assert [r.capacity for r in client.requests[:5]] == [5, 5, 0, 5, 5]
        assert "claimed:b" in owner.log
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
