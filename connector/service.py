"""The connector service: holds accounts, keeps them connected, persists their state.

Wiring (each part is its own module)::

    LeaseKeeper ──claims / lost / commands / expiring──► ConnectorService ──► AccountSupervisor (one per account)
       │ connectorSync every few seconds                   │                      │ link (engine)   │ hooks
       ▼                                                   ▼                      ▼                 ▼
    functions                                       SnapshotWriter ──► Pub/Sub ◄── AccountEvents
                                            (coalesced, cached, sealed)    (updates, pairing, messages)

This module is the lease owner: what a claim, a lost lease, an expiring lease or a command does to
the held accounts. Which state a claim starts from is :mod:`connector.starting_state`; snapshots
are :mod:`connector.snapshot_writer`; what the supervisors report is :mod:`connector.account_events`;
the shutdown sequence is :mod:`connector.shutdown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from connector.account_events import PAIRING_WRONG_PHONE, AccountEvents
from connector.cache import StateCache
from connector.config import ConnectorConfig
from connector.errors import CacheError, OutboxError, PublishError, RestoreError
from connector.http import HealthServer
from connector.inbox import Inbox, InboxMetrics
from connector.leases import LeaseKeeper
from connector.link import LinkFactory
from connector.logs import fields
from connector.metrics import ConnectorMetrics, LabelValues
from connector.outbox import OutboxDispatcher, OutboxSubscription
from connector.protocol.close import CloseReason
from connector.publisher import MessageTransport, OrderedPublisher
from connector.reports import ConnectionReports
from connector.sender import Sender
from connector.shutdown import shut_down
from connector.slots import AccountSlot
from connector.snapshot_codec import SnapshotCodec
from connector.snapshot_writer import SnapshotWriter
from connector.starting_state import StateSource, log_found, starting_state, state_digest_of
from connector.states import AccountState
from connector.supervisor import AccountSupervisor
from connector.sync import SyncClient
from shared.authstore import MemoryAuthStore, StateChange
from shared.connector_sync import Claim, Command, CommandAction, Lost
from shared.events import AccountRemoved, ConnectionState, OutboundSend

log = logging.getLogger(__name__)

#: How long a connector that refused a link by the wrong phone keeps the account for the functions to
#: record the refusal (they take it back on the next sync), and how often it looks.
REFUSAL_HOLD_S = 30.0
REFUSAL_POLL_S = 0.2


class ConnectorService:
    """Implements :class:`~connector.leases.LeaseOwner`; owns the parts drawn in the module docstring."""

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        sync_client: SyncClient,
        transport: MessageTransport,
        link_factory: LinkFactory,
        cache: StateCache | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.codec = SnapshotCodec(config.connector_id)
        self.cache = cache
        self.link_factory = link_factory
        self.transport = transport
        self.accounts: dict[str, AccountSlot] = {}
        self.shutting_down = False
        self.clock = clock
        self.metrics = ConnectorMetrics(self._accounts_by_state, lambda: {(): float(self.snapshots.pending())})
        self.writer = self._make_writer()
        self.snapshots = self.writer.publisher
        self.flusher = self.writer.flusher
        self.events = OrderedPublisher(transport, config.topics.connection, clock=clock)
        self.reports = ConnectionReports(self.events, config.connector_id, window_s=config.report_window_s)
        self.messages = OrderedPublisher(transport, config.topics.messages, clock=clock)
        self.inbox = Inbox(self.messages, self.writer, InboxMetrics(
            self.metrics.messages, self.metrics.undecryptable, self.metrics.retry_receipts,
            self.metrics.message_latency), clock=clock)
        self.writer.in_flight = self.inbox.in_flight
        #: The send path (connector/sender.py): the outbox dispatcher's handler.
        self.sender = Sender(self.accounts, self.messages)
        self.hooks = AccountEvents(config.connector_id, self.accounts, events=self.events, inbox=self.inbox,
                                   reports=self.reports, writer=self.writer, cache=cache,
                                   reconnects=self.metrics.reconnects, sender=self.sender)
        self.hooks.refuse_link = self._refuse_link
        self.keeper = LeaseKeeper(
            sync_client, self, connector_id=config.connector_id, capacity=config.capacity,
            public_key=self.codec.public_key, interval_s=config.sync_interval_s, clock=clock,
            on_renewals=lambda n, result: self.metrics.renewals.inc(result, amount=float(n)),
        )
        self.http = HealthServer(self.metrics.registry, self.ready, config.port, config.http_host)
        #: Sends for the accounts held here (connector/outbox.py), handed to the send path.
        self.outbox = OutboxDispatcher(lambda account_id: account_id in self.accounts, self.sender.handle,
                                       clock=clock)
        #: This connector's outbox subscription (set by __main__; None: the catch-up alone delivers).
        self.outbox_feed: OutboxSubscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping: set[asyncio.Task[None]] = set()
        #: Slots whose socket is closing before their last snapshot (an expiring lease).
        self._closing: dict[str, AccountSlot] = {}

    def _make_writer(self) -> SnapshotWriter:
        return SnapshotWriter(self.codec, self.transport, self.config.topics.snapshots, slot_of=self.accounts.get,
                              cache=self.cache, window_s=self.config.coalesce_window_s,
                              latency=self.metrics.snapshot_latency, clock=self.clock)

    # --- lifecycle --------------------------------------------------------------------------------

    def ready(self) -> bool:
        return self.keeper.synced_once.is_set() and not self.shutting_down

    async def start(self) -> None:
        await self.http.start()
        log.info("connector starting", extra=fields(connectorId=self.config.connector_id,
                                                    capacity=self.config.capacity, port=self.http.port))
        if self.outbox_feed is not None:
            try:  # before the first sync: what is published from now on comes this way
                await self.outbox_feed.start()
            except OutboxError as exc:
                log.error("outbox subscription unavailable: sends come with connectorSync only (%s)", exc)
                self.outbox_feed = None
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self.keeper.run(), name="lease-keeper"),
                       loop.create_task(self.flusher.run(), name="snapshot-flusher")]

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        await stop.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """:func:`connector.shutdown.shut_down`: returns within ``shutdown_budget_s``."""
        await shut_down(self)

    async def stop_tasks(self) -> None:
        """Cancel the lease keeper and the snapshot flusher and wait for them."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait_stopping(self, timeout_s: float) -> None:
        """Wait (bounded) for removals and retirements in flight: they may be waiting on Pub/Sub."""
        if self._stopping:
            await asyncio.wait(list(self._stopping), timeout=timeout_s)

    # --- LeaseOwner -------------------------------------------------------------------------------

    def on_vault_key(self, public_key: bytes, key_id: str) -> None:
        self.codec.vault_public_key = public_key
        self.codec.vault_key_id = key_id

    def on_claimed(self, claim: Claim) -> None:
        old = self.accounts.pop(claim.account_id, None)
        if old is not None:
            self._retire(old, "reclaimed")
        closing = self._closing.pop(claim.account_id, None)
        if closing is not None:
            # Claimed again before its last snapshot (the socket is still closing): take it now, so
            # the cache read below has every key it moved.
            self.writer.final_snapshot(closing)
        try:
            state, source = starting_state(claim, self.codec.open_restored, self.cache)
        except RestoreError as exc:
            log.error("restored state unusable; giving the account back",
                      extra={"account_id": claim.account_id, "fields": {"error": str(exc)}})
            self.keeper.release(claim.account_id)
            return
        if state is None:
            log.warning("no state to restore and no pairing asked: needs pairing",
                        extra={"account_id": claim.account_id})
            self.keeper.release(claim.account_id)
            self.hooks.publish_update(claim.account_id, claim.generation, ConnectionState.NEEDS_PAIRING,
                                      "no_state")
            return
        self.metrics.claims.inc(source)
        log_found(claim, source)
        if self.cache is not None and source in (StateSource.RESTORED, StateSource.FELL_BACK):
            self.cache.note_origin(claim.account_id, functools.partial(state_digest_of, state))
        store = MemoryAuthStore.adopt(state)  # parsed for this slot only; `state` stays as restored
        supervisor = AccountSupervisor(claim.account_id, store, self.link_factory, self.hooks,
                                       pairing=claim.pairing if source is StateSource.PAIRING else None,
                                       clock=self.clock)
        slot = AccountSlot(claim.account_id, claim.generation, store, supervisor,
                           pairing_phone=claim.pairing.phone_number
                           if source is StateSource.PAIRING and claim.pairing else None)
        store.set_listener(functools.partial(self._state_changed, claim.account_id))
        self.accounts[claim.account_id] = slot
        self.outbox.account_claimed(claim.account_id)  # sends parked while the claim was on its way
        if source is StateSource.CACHE:
            # The cache can be newer than the vault: publish it under the new generation at once.
            self.writer.mark_critical(claim.account_id)
        else:
            slot.published_revision = store.revision
        supervisor.start()

    def on_lost(self, lost: Lost) -> None:
        slot = self.accounts.pop(lost.account_id, None)
        if slot is None:
            return
        log.warning("lease lost: closing the socket", extra={"account_id": lost.account_id,
                                                              "fields": {"reason": lost.reason}})
        # Another connector may hold it now: a snapshot from us would be refused (older generation).
        self.writer.forget(lost.account_id)
        self._retire(slot, f"lease_{lost.reason}", report=True)

    def on_expiring(self, account_id: str) -> None:
        slot = self.accounts.pop(account_id, None)
        if slot is None:
            return
        log.error("lease about to expire without renewal: closing the socket first",
                  extra={"account_id": account_id})
        self.writer.forget(account_id)
        # Still ours for a moment: get the latest state out (and into the cache) before anyone else
        # restores. Taken once the socket is closed, like on shutdown: keys move until then, and a
        # change made after the last snapshot would be rolled back on the next claim.
        self._retire(slot, "lease_expiring", report=True, final_snapshot=True)

    def on_pending_sends(self, sends: Sequence[OutboundSend]) -> None:
        self.outbox.offer_all(sends)

    def on_command(self, command: Command) -> None:
        slot = self.accounts.get(command.account_id)
        if slot is None:
            return
        if command.action == CommandAction.RECONNECT:
            log.info("reconnect requested", extra={"account_id": command.account_id})
            slot.supervisor.reconnect()
        elif command.action == CommandAction.REMOVE and not slot.removing:
            slot.removing = True
            log.info("removal requested: unlinking", extra={"account_id": command.account_id})
            self._spawn(self._remove(slot))

    async def _remove(self, slot: AccountSlot) -> None:
        """Unlink the device, drop local state, confirm with ``account.removed``. If WhatsApp did
        not confirm the unlink, the lease goes back and the functions ask again on a later claim."""
        closed = await slot.supervisor.logout()
        self.accounts.pop(slot.account_id, None)
        self.writer.forget(slot.account_id)
        unlinked = closed is not None and closed.reason is CloseReason.LOGGED_OUT_BY_CLIENT
        if not unlinked:
            log.warning("removal: WhatsApp did not confirm the unlink; giving the account back to retry",
                        extra={"account_id": slot.account_id,
                               "fields": {"reason": closed.reason if closed else None}})
            self.keeper.release(slot.account_id)
            return
        log.info("removed: device unlinked and local state dropped", extra={"account_id": slot.account_id})
        if self.cache is not None:
            with contextlib.suppress(CacheError):
                self.cache.delete(slot.account_id)
        removed = AccountRemoved(account_id=slot.account_id)
        accepted = self.events.submit(slot.account_id, removed.to_json(), removed.attributes())
        with contextlib.suppress(PublishError, asyncio.CancelledError):
            await accepted
        self.keeper.release(slot.account_id)

    def _refuse_link(self, slot: AccountSlot) -> None:
        if not slot.removing:
            slot.removing = True
            self._spawn(self._unlink_refused(slot))

    async def _unlink_refused(self, slot: AccountSlot) -> None:
        """Unlink a device linked by the wrong phone and give the account back (it waits for a new
        pairing); its keys never reach the cache again. The pairing socket cannot log out (WhatsApp
        wants a login first), so it is closed and the logout goes through a socket of its own."""
        await slot.supervisor.stop(PAIRING_WRONG_PHONE)
        closed = await slot.supervisor.logout()
        self.accounts.pop(slot.account_id, None)
        self.writer.forget(slot.account_id)
        if self.cache is not None:
            with contextlib.suppress(CacheError):
                self.cache.delete(slot.account_id)
        unlinked = closed is not None and closed.reason is CloseReason.LOGGED_OUT_BY_CLIENT
        message = "device of the wrong phone " + ("unlinked" if unlinked else "not unlinked: WhatsApp did not confirm")
        log.info(message, extra={"account_id": slot.account_id})
        # Keep the lease until the functions record the refusal and take the account back (a release
        # now could let a claim pair it again before the pairing.failed is delivered); past the
        # bound, give it back anyway.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REFUSAL_HOLD_S
        while self._holds(slot) and loop.time() < deadline:
            await asyncio.sleep(REFUSAL_POLL_S)
        if self._holds(slot):
            self.keeper.release(slot.account_id)

    def _holds(self, slot: AccountSlot) -> bool:
        lease = self.keeper.table.get(slot.account_id)
        return lease is not None and lease.generation == slot.generation

    def _retire(self, slot: AccountSlot, reason: str, report: bool = False, final_snapshot: bool = False) -> None:
        if self.accounts.get(slot.account_id) is None:
            self.outbox.account_released(slot.account_id)  # the next holder gets its sends
        if final_snapshot:
            self._closing[slot.account_id] = slot

        async def go() -> None:
            await slot.supervisor.stop(reason)
            if final_snapshot and self._closing.get(slot.account_id) is slot:
                del self._closing[slot.account_id]
                self.writer.final_snapshot(slot)
            if report:
                self.hooks.publish_update(slot.account_id, slot.generation, ConnectionState.STOPPED, reason)

        self._spawn(go())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _state_changed(self, account_id: str, change: StateChange) -> None:
        self.writer.changed(account_id, change.kind)

    # --- metrics ------------------------------------------------------------------------------------

    def _accounts_by_state(self) -> dict[LabelValues, float]:
        counts: dict[LabelValues, float] = {(s.value,): 0.0 for s in AccountState}
        for slot in self.accounts.values():
            counts[(slot.supervisor.state.value,)] += 1
        return counts
