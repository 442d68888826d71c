"""Lease ownership: which accounts this connector may serve, and until when.

Rules:

- A lease's local deadline is the time the renewing request was *sent* plus the TTL: the server
  starts the TTL later than that, so the local deadline is never later than the server's, whatever
  the two clocks say (only durations on the local monotonic clock are used).
- An account whose renewal did not come back is not assumed lost: it keeps its old deadline.
- A lease is asked to be renewed only once its deadline is near enough that, if it were not, the
  next call might answer too late: within ``guard_s`` + one sync period + one call timeout. The
  others are sent with ``renew`` false: the functions confirm them without writing, and their
  deadlines stay as they are.
- After a failed call (the functions unreachable, or a call that timed out under load), the next calls
  claim nothing until one succeeds: a call that claims can run for the functions' claim budget, and
  the renewals it carries must not wait for claims while their deadlines come near.
- ``guard_s`` before a deadline, if no renewal has moved it, the account is *expiring*: the
  connector must close that socket itself, before the lease can pass to another connector and
  two sockets would fight over one device (440 loops). Deadlines are watched also while a call is
  in flight: a call that hangs until its timeout (longer than the guard) must not hold a socket
  open past its lease.

:class:`LeaseTable` is these rules with time passed in; :class:`LeaseKeeper` is the asyncio loop
that calls connectorSync and hands claims, losses, commands and expiries to the service. While a
restart is being handed work, the loop asks again at once and hands the claims of one answer to the
service while the next call is under way (opening a hundred sockets and the functions restoring the
next hundred overlap); they are always handed over before the next answer is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from connector.errors import SyncError, SyncRejected
from connector.sync import SYNC_TIMEOUT_S, SyncClient
from shared.connector_sync import Claim, ClaimMode, Command, HeldLease, Lost, RenewedLease, SyncReply, SyncRequest
from shared.events import OutboundSend

log = logging.getLogger(__name__)
_T = TypeVar("_T")

LEASE_GUARD_S = 3.0
RETRY_AFTER_FAILURE_S = 1.0
RELEASE_PARALLEL_CALLS = 8


@dataclass
class Lease:
    account_id: str
    generation: int
    deadline: float  # local monotonic seconds


class LeaseTable:
    """The leases this connector holds; see the module docstring for the rules."""

    def __init__(self, guard_s: float = LEASE_GUARD_S) -> None:
        self.guard_s = guard_s
        self._leases: dict[str, Lease] = {}

    def add(self, account_id: str, generation: int, sent_at: float, ttl_s: float) -> None:
        self._leases[account_id] = Lease(account_id, generation, sent_at + ttl_s)

    def renew(self, ref: RenewedLease, sent_at: float, ttl_s: float) -> bool:
        """Move the deadline of a held lease; False when not held at that generation."""
        lease = self._leases.get(ref.account_id)
        if lease is None or lease.generation != ref.generation:
            return False
        lease.deadline = max(lease.deadline, sent_at + ttl_s)
        return True

    def drop(self, account_id: str) -> Lease | None:
        return self._leases.pop(account_id, None)

    def get(self, account_id: str) -> Lease | None:
        return self._leases.get(account_id)

    def refs(self, renew_before: float | None = None) -> list[HeldLease]:
        """Every held lease; with ``renew_before``, those whose deadline is later are marked not to renew."""
        return [HeldLease(lease.account_id, lease.generation,
                         renew_before is None or lease.deadline <= renew_before)
                for lease in self._leases.values()]

    def expiring(self, now: float) -> list[Lease]:
        return [lease for lease in self._leases.values() if now >= lease.deadline - self.guard_s]

    def next_expiry_check(self) -> float | None:
        return min((lease.deadline - self.guard_s for lease in self._leases.values()), default=None)

    def __contains__(self, account_id: object) -> bool:
        return account_id in self._leases

    def __len__(self) -> int:
        return len(self._leases)


class LeaseOwner(Protocol):
    """What the lease keeper tells the service."""

    def on_vault_key(self, public_key: bytes, key_id: str) -> None: ...

    def on_claimed(self, claim: Claim) -> None: ...

    def on_lost(self, lost: Lost) -> None: ...

    def on_expiring(self, account_id: str) -> None: ...

    def on_command(self, command: Command) -> None: ...

    def on_pending_sends(self, sends: Sequence[OutboundSend]) -> None:
        """The outbox catch-up of one answer (``pendingSends``), after its claims and commands."""
        ...


class LeaseKeeper:
    """Calls connectorSync on a period and applies the answer (see the module docstring)."""

    def __init__(
        self,
        client: SyncClient,
        owner: LeaseOwner,
        *,
        connector_id: str,
        capacity: int,
        public_key: bytes,
        interval_s: float,
        guard_s: float = LEASE_GUARD_S,
        clock: Callable[[], float] = time.monotonic,
        on_renewals: Callable[[int, str], None] | None = None,
        call_timeout_s: float = SYNC_TIMEOUT_S,
    ) -> None:
        self.client = client
        self.owner = owner
        self.connector_id = connector_id
        self.capacity = capacity
        self.public_key = public_key
        self.interval_s = interval_s
        self.table = LeaseTable(guard_s)
        self.lease_ttl_s: float | None = None
        self.synced_once = asyncio.Event()
        self.last_success: float | None = None
        self._clock = clock
        self._to_release: dict[str, HeldLease] = {}
        self._taking_work = True
        self._wake = asyncio.Event()
        self._on_renewals = on_renewals
        self._call_timeout_s = call_timeout_s
        #: Claims in the table not yet handed to the owner, and commands that must follow them.
        self._to_open: list[Claim | Command] = []
        self._lock = asyncio.Lock()
        #: Set by a failed call: the following calls renew and release only (see the module docstring).
        self._renew_only = False
        #: The last answered call claimed nothing on purpose (renew only): work may be waiting.
        self._claims_skipped = False

    # --- service side -------------------------------------------------------------------------

    def release(self, account_id: str) -> None:
        """Give the lease back on the next call (the account was removed, or on shutdown)."""
        lease = self.table.drop(account_id)
        if lease is not None:
            self._to_release[account_id] = HeldLease(lease.account_id, lease.generation)
            self._wake.set()

    async def release_pending(self, parallel: int = RELEASE_PARALLEL_CALLS) -> int:
        """Shutdown: send every queued release now, split over ``parallel`` concurrent calls that
        hold and claim nothing (each call stays short, and one that fails costs only its share).
        Returns how many were confirmed sent; raises :class:`SyncError` if every call failed."""
        refs = list(self._to_release.values())
        if not refs:
            return 0
        size = -(-len(refs) // max(1, parallel))
        chunks = [refs[i:i + size] for i in range(0, len(refs), size)]
        results = await asyncio.gather(
            *(self.client.sync(SyncRequest(self.connector_id, 0, self.public_key, held=(), release=chunk))
              for chunk in chunks),
            return_exceptions=True)
        sent = 0
        for chunk, result in zip(chunks, results, strict=True):
            if isinstance(result, BaseException):
                continue
            sent += len(chunk)
            for ref in chunk:
                if self._to_release.get(ref.account_id) == ref:
                    del self._to_release[ref.account_id]
        if sent == 0:
            errors = [r for r in results if isinstance(r, BaseException)]
            raise errors[0] if isinstance(errors[0], SyncError) else SyncError(str(errors[0]))
        return sent

    def stop_taking_work(self) -> None:
        self._taking_work = False
        for item in self._to_open:  # never handed over: straight back
            if isinstance(item, Claim) and self.table.drop(item.account_id) is not None:
                self._to_release[item.account_id] = HeldLease(item.account_id, item.generation)
        self._to_open.clear()

    async def open_claimed(self) -> int:
        """Hand the claims kept back by a pipelined call (and the commands that follow them) to the
        owner, letting the loop run between them; returns how many claims were handed over (a lease
        lost or expired meanwhile is skipped)."""
        opened = 0
        while self._to_open:
            item = self._to_open.pop(0)
            if isinstance(item, Command):
                if item.account_id in self.table:
                    self._tell(self.owner.on_command, item, item.account_id)
                continue
            lease = self.table.get(item.account_id)
            if lease is None or lease.generation != item.generation:
                continue
            self._tell(self.owner.on_claimed, item, item.account_id)
            opened += 1
            await asyncio.sleep(0)
        return opened

    def generation(self, account_id: str) -> int | None:
        lease = self.table.get(account_id)
        return None if lease is None else lease.generation

    # --- loop ---------------------------------------------------------------------------------

    async def sync_once(self, pipelined: bool = False) -> SyncReply:
        """One connectorSync call, applied. Raises :class:`SyncError` when the call failed.

        ``pipelined``: claims of this answer are kept back for :meth:`open_claimed` (or the next
        call, which hands them over while it waits for its own answer)."""
        async with self._lock:
            release = list(self._to_release.values())
            request = SyncRequest(
                connector_id=self.connector_id,
                capacity=self.capacity if self._taking_work and not self._renew_only else 0,
                public_key=self.public_key,
                held=self.table.refs(renew_before=self._renew_before()),
                release=release,
            )
            sent_at = self._clock()
            call = asyncio.ensure_future(self.client.sync(request))
            try:
                if self._to_open:
                    await asyncio.sleep(0)  # let the call start before the loop gets busy
                    await self.open_claimed()  # those of the previous answer, while this call is on its way
                response = await call
            except SyncError as exc:
                self._renew_only = True
                renew_result = "rejected" if isinstance(exc, SyncRejected) else "unavailable"
                if self._on_renewals is not None:
                    self._on_renewals(sum(1 for ref in request.held if ref.renew), renew_result)
                raise
            finally:
                call.cancel()  # no-op once done; a cancelled sync_once must not leave the call running
            for ref in release:
                if self._to_release.get(ref.account_id) == ref:
                    del self._to_release[ref.account_id]
            self._apply(response, request, sent_at, pipelined)
            self._claims_skipped = self._renew_only and self._taking_work
            self._renew_only = False
            self.last_success = self._clock()
            self.synced_once.set()
            return response

    def _renew_before(self) -> float | None:
        """Leases with a deadline up to this are sent for renewal (module docstring); None: all of them
        (the lease TTL is not known before the first answer)."""
        if self.lease_ttl_s is None:
            return None
        return self._clock() + self.table.guard_s + self._period_s() + self._call_timeout_s

    def _apply(self, response: SyncReply, request: SyncRequest, sent_at: float, pipelined: bool) -> None:
        ttl = response.lease_ttl_s
        self.lease_ttl_s = ttl
        self.owner.on_vault_key(response.vault_public_key, response.vault_key_id)
        renewed = sum(1 for ref in response.renewed if self.table.renew(ref, sent_at, ttl))
        if self._on_renewals is not None:
            asked = sum(1 for ref in request.held if ref.renew)
            self._on_renewals(renewed, "ok")
            if asked > renewed:
                self._on_renewals(asked - renewed, "not_renewed")
        for lost in response.lost:
            if self.table.drop(lost.account_id) is not None:
                self._tell(self.owner.on_lost, lost, lost.account_id)
        if response.claimed:
            modes = [claim.mode for claim in response.claimed]
            log.info("sessions found", extra={"fields": {
                "toRestore": modes.count(ClaimMode.RESTORE), "toPair": modes.count(ClaimMode.PAIR),
                "held": len(self.table)}})
        for claim in response.claimed:
            if not self._taking_work:
                # Claimed while shutting down: hand it straight back.
                self._to_release[claim.account_id] = HeldLease(claim.account_id, claim.generation)
                continue
            self.table.add(claim.account_id, claim.generation, sent_at, ttl)
            if pipelined:
                self._to_open.append(claim)
            else:
                self._tell(self.owner.on_claimed, claim, claim.account_id)
        kept_back = {item.account_id for item in self._to_open}
        for command in response.commands:
            if command.account_id in kept_back:
                self._to_open.append(command)  # e.g. remove for an account claimed here: after its claim
            elif command.account_id in self.table:
                self._tell(self.owner.on_command, command, command.account_id)
        if response.pending_sends:
            self._tell(self.owner.on_pending_sends, response.pending_sends, "")
        self.check_expiring()

    def check_expiring(self) -> list[str]:
        """Drop and report every lease too close to its deadline to keep serving."""
        expired = [lease.account_id for lease in self.table.expiring(self._clock())]
        for account_id in expired:
            self.table.drop(account_id)
            self._tell(self.owner.on_expiring, account_id, account_id)
        return expired

    @staticmethod
    def _tell(callback: Callable[[_T], None], arg: _T, account_id: str) -> None:
        """One account's failure must not stop the lease loop that keeps every other account."""
        try:
            callback(arg)
        except Exception:
            log.exception("handling a lease change failed", extra={"account_id": account_id})

    def _period_s(self) -> float:
        if self.lease_ttl_s is None:
            return self.interval_s
        return min(self.interval_s, self.lease_ttl_s / 3)

    async def _sync_watching_deadlines(self) -> SyncReply:
        """:meth:`sync_once` (pipelined), closing expiring accounts while the call is under way."""
        call = asyncio.ensure_future(self.sync_once(pipelined=True))
        try:
            while True:
                check_at = self.table.next_expiry_check()
                timeout = None if check_at is None else max(0.05, check_at - self._clock())
                done, _ = await asyncio.wait({call}, timeout=timeout)
                if done:
                    return call.result()
                self.check_expiring()
        finally:
            call.cancel()

    async def run(self) -> None:
        """Sync every period, retry sooner after a failure, watch deadlines in between."""
        while True:
            try:
                response = await self._sync_watching_deadlines()
                next_sync = self._clock() + self._period_s()
                if ((response.claimed or self._claims_skipped) and self._taking_work
                        and len(self.table) < self.capacity):
                    # The functions hand out a bounded batch per call: while there is work and room
                    # (a restart restoring a thousand accounts), ask again at once; that call hands
                    # these claims over while it waits.
                    next_sync = self._clock()
                else:
                    await self.open_claimed()
            except SyncError as exc:
                log.warning("connectorSync failed", extra={"fields": {"error": str(exc),
                                                                      "held": len(self.table)}})
                next_sync = self._clock() + RETRY_AFTER_FAILURE_S
            while True:
                self.check_expiring()
                now = self._clock()
                if now >= next_sync:
                    break
                wake_at = next_sync
                check_at = self.table.next_expiry_check()
                if check_at is not None:
                    wake_at = min(wake_at, max(check_at, now + 0.05))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), wake_at - now)
                if self._wake.is_set() and self._to_release:
                    break
