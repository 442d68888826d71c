"""The connector service: holds accounts, keeps them connected, persists their state.

Wiring (each part is its own module)::

    LeaseKeeper ──claims / lost / commands / expiring──► ConnectorService ──► AccountSupervisor (one per account)
       │ connectorSync every few seconds                   │  ▲ state changes     │ LinkFactory
       ▼                                                   ▼  │                   ▼ (engine)
    functions                                     CoalescingFlusher ──► OrderedPublisher ──► Pub/Sub
                                                     (critical now,      (ordered per account,
                                                      routine ≤ 2 s)      retried, newest only)

Shutdown order (SIGTERM, within ``shutdown_budget_s``): stop taking work and report not ready;
close every socket (so no key moves after the final snapshot and no second socket can meet ours);
snapshot every account that changed since its last snapshot and wait for Pub/Sub to accept them;
then release the leases of the accounts whose state is safely published, so the next connector
takes them over at once. An account whose snapshot did not get through keeps its lease until it
expires: handing it over early would only hand over older keys sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.cache import StateCache, state_digest
from connector.coalescer import CoalescingFlusher
from connector.config import ConnectorConfig
from connector.errors import CacheError, OutboxError, PublishError, RestoreError, SyncError
from connector.http import HealthServer
from connector.inbox import Inbox, InboxMetrics
from connector.leases import LeaseKeeper
from connector.link import LinkFactory
from connector.logs import fields
from connector.metrics import Counter, Gauge, Histogram, LabelValues, Registry
from connector.outbox import OutboxDispatcher, OutboxSubscription
from connector.protocol.close import CloseReason
from connector.protocol.events import DuplicateIgnored, ReceivedMessage, RetryRequested
from connector.publisher import MessageTransport, OrderedPublisher, Outgoing
from connector.reports import ConnectionReports
from connector.snapshots import SnapshotCodec
from connector.states import AccountState
from connector.supervisor import AccountSupervisor
from connector.sync import SyncClient
from shared.authstate import AuthState
from shared.authstore import MemoryAuthStore, StateChange
from shared.connector_sync import Claim, ClaimMode, Command, CommandAction, Lost
from shared.events import (
    AccountRemoved,
    ConnectionState,
    ConnectionUpdate,
    OutboundSend,
    PairingCode,
    PairingFailed,
    PairingQr,
    PairingSuccess,
    SnapshotAttributes,
)
from shared.snapshot import canonical_state_bytes, parse_state

log = logging.getLogger(__name__)

PAIRING_CODE_TTL_S = 180.0
QR_TTL_S = 20.0
STOP_SOCKETS_BUDGET_S = 2.0
RELEASE_BUDGET_S = 1.5
PROCESS_EXIT_MARGIN_S = 0.5
#: How long a critical change may hold the engine back waiting for Pub/Sub (it stays queued after).
CRITICAL_PERSIST_TIMEOUT_S = 10.0
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class AccountSlot:
    """One held account."""

    account_id: str
    generation: int
    store: MemoryAuthStore
    supervisor: AccountSupervisor
    published_revision: int = -1
    removing: bool = False
    #: A snapshot was due while message events were still on their way to Pub/Sub (``connector.inbox``).
    flush_held: bool = False
    messages_settled: asyncio.Event = field(default_factory=asyncio.Event)


def _digest(state: AuthState) -> bytes:
    return state_digest(canonical_state_bytes(state))


class ConnectorMetrics:
    def __init__(self, accounts_by_state: Callable[[], dict[LabelValues, float]],
                 pending: Callable[[], dict[LabelValues, float]]) -> None:
        self.registry = Registry()
        r = self.registry
        self.accounts = r.register(Gauge("keeper_connector_accounts", "Held accounts by supervisor state",
                                         ("state",), collect=accounts_by_state))
        self.reconnects = r.register(Counter("keeper_connector_reconnects_total",
                                             "Reconnects by close reason", ("reason",)))
        self.snapshot_latency = r.register(Histogram(
            "keeper_connector_snapshot_publish_seconds",
            "From the first unsnapshotted change to Pub/Sub accepting the snapshot", LATENCY_BUCKETS_S))
        self.pending = r.register(Gauge("keeper_connector_pending_snapshots",
                                        "Snapshots not yet accepted by Pub/Sub", collect=pending))
        self.renewals = r.register(Counter("keeper_connector_lease_renewals_total",
                                           "Lease renewals by result", ("result",)))
        self.claims = r.register(Counter("keeper_connector_claims_total", "Accounts claimed, by how their "
                                         "state was found", ("source",)))
        self.messages = r.register(Counter("keeper_connector_messages_total",
                                           "Incoming messages by outcome", ("outcome",)))
        self.undecryptable = r.register(Counter("keeper_connector_messages_undecryptable_total",
                                                "Messages published as undecryptable, by reason", ("reason",)))
        self.retry_receipts = r.register(Counter("keeper_connector_retry_receipts_total",
                                                 "Retry receipts sent for messages that did not decrypt, by reason",
                                                 ("reason",)))
        self.message_latency = r.register(Histogram(
            "keeper_connector_message_publish_seconds",
            "From a message handed over by the link to Pub/Sub accepting its event", LATENCY_BUCKETS_S))


class ConnectorService:
    """Implements :class:`~connector.leases.LeaseOwner` and :class:`~connector.supervisor.SupervisorHooks`."""

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
        self._clock = clock
        self.metrics = ConnectorMetrics(self._accounts_by_state, lambda: {(): float(self.snapshots.pending())})
        self.snapshots = OrderedPublisher(transport, config.topics.snapshots, newest_only=True,
                                          on_accepted=self._snapshot_accepted, clock=clock)
        self.events = OrderedPublisher(transport, config.topics.connection, clock=clock)
        self.reports = ConnectionReports(self.events, config.connector_id, window_s=config.report_window_s)
        self.messages = OrderedPublisher(transport, config.topics.messages, clock=clock)
        self.inbox = Inbox(self.messages, self, InboxMetrics(
            self.metrics.messages, self.metrics.undecryptable, self.metrics.retry_receipts,
            self.metrics.message_latency), clock=clock)
        self.flusher = CoalescingFlusher(self._flush_snapshot, config.coalesce_window_s, clock)
        self.keeper = LeaseKeeper(
            sync_client, self, connector_id=config.connector_id, capacity=config.capacity,
            public_key=self.codec.public_key, interval_s=config.sync_interval_s, clock=clock,
            on_renewals=lambda n, result: self.metrics.renewals.inc(result, amount=float(n)),
        )
        self.http = HealthServer(self.metrics.registry, self.ready, config.port, config.http_host)
        #: Sends for the accounts held here (connector/outbox.py); the Signal send path sets its handler.
        self.outbox = OutboxDispatcher(lambda account_id: account_id in self.accounts, clock=clock)
        #: This connector's outbox subscription (set by __main__; None: the catch-up alone delivers).
        self.outbox_feed: OutboxSubscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping: set[asyncio.Task[None]] = set()
        #: Slots whose socket is closing before their last snapshot (an expiring lease).
        self._closing: dict[str, AccountSlot] = {}

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
        """See the module docstring; returns within ``shutdown_budget_s``."""
        started = self._clock()
        # Keep a margin for the process itself to exit after the service has stopped.
        budget = max(0.5, self.config.shutdown_budget_s - PROCESS_EXIT_MARGIN_S)

        def left() -> float:
            return max(0.0, budget - (self._clock() - started))

        self.shutting_down = True
        self.keeper.stop_taking_work()
        await self.outbox.close()
        if self.outbox_feed is not None:
            await asyncio.wait_for(self.outbox_feed.close(), max(0.1, min(1.0, left())))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        held = list(self.accounts.values())
        log.info("shutting down", extra=fields(accounts=len(held), pendingSnapshots=self.snapshots.pending()))
        await asyncio.gather(*(slot.supervisor.stop("shutdown", min(STOP_SOCKETS_BUDGET_S, left() / 3))
                               for slot in held), return_exceptions=True)
        sockets_closed_s = self._clock() - started
        if self._stopping:
            # Removals and retirements in flight: bounded, they may be waiting on Pub/Sub.
            await asyncio.wait(list(self._stopping), timeout=max(0.1, left() / 4))
        # Events of decrypted messages first: the last snapshots carry their Signal state.
        await self.messages.drained(min(1.0, left() / 4))
        for slot in held:
            slot.flush_held = False
            if slot.store.revision != slot.published_revision:
                self.flusher.coalescer.mark(slot.account_id, "critical", self._clock())
        self.flusher.flush_now()
        message_tasks = self.inbox.tasks()
        drained = await self.snapshots.drained(max(0.0, left() - RELEASE_BUDGET_S - 0.5))
        unpublished = self.snapshots.pending_keys()
        if not drained:
            log.error("shutdown: snapshots not accepted in time; their leases are kept until they expire",
                      extra=fields(accounts=sorted(unpublished)[:50], count=len(unpublished)))
        self.reports.flush()
        await self.events.drained(min(0.5, left()))
        if message_tasks:
            await asyncio.wait(message_tasks, timeout=min(0.5, left()))
        published_s = self._clock() - started
        for slot in held:
            if slot.account_id not in unpublished:
                self.keeper.release(slot.account_id)
        try:
            released = await asyncio.wait_for(self.keeper.release_pending(), max(0.1, left() - 0.3))
            log.info("leases released", extra=fields(count=released))
        except (TimeoutError, SyncError) as exc:
            log.warning("could not release leases; they will expire", extra=fields(error=str(exc)))
        released_s = self._clock() - started
        for publisher in (self.snapshots, self.events, self.messages):
            await publisher.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.keeper.client.close(), 0.2)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.transport.close(), max(0.1, left()))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.http.stop(), max(0.2, left()))
        log.info("connector stopped", extra=fields(seconds=round(self._clock() - started, 2),
                                                   socketsClosedAtS=round(sockets_closed_s, 2),
                                                   snapshotsPublishedAtS=round(published_s, 2),
                                                   leasesReleasedAtS=round(released_s, 2)))

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
            self._final_snapshot(closing)
        try:
            state, source = self._initial_state(claim)
        except RestoreError as exc:
            log.error("restored state unusable; giving the account back",
                      extra={"account_id": claim.account_id, "fields": {"error": str(exc)}})
            self.keeper.release(claim.account_id)
            return
        if state is None:
            log.warning("no state to restore and no pairing asked: needs pairing",
                        extra={"account_id": claim.account_id})
            self.keeper.release(claim.account_id)
            self._publish_update(claim.account_id, claim.generation, ConnectionState.NEEDS_PAIRING,
                                 "no_state")
            return
        self.metrics.claims.inc(source)
        self._log_found(claim, source)
        if self.cache is not None and source in ("restored", "fell_back"):
            self.cache.note_origin(claim.account_id, functools.partial(_digest, state))
        store = MemoryAuthStore.adopt(state)  # parsed for this slot only; `state` stays as restored
        supervisor = AccountSupervisor(claim.account_id, store, self.link_factory, self,
                                       pairing=claim.pairing if source == "pairing" else None,
                                       clock=self._clock)
        slot = AccountSlot(claim.account_id, claim.generation, store, supervisor)
        store.set_listener(functools.partial(self._state_changed, claim.account_id))
        self.accounts[claim.account_id] = slot
        self.outbox.account_claimed(claim.account_id)  # sends parked while the claim was on its way
        if source == "cache":
            # The cache can be newer than the vault: publish it under the new generation at once.
            self.flusher.mark(claim.account_id, "critical")
        else:
            slot.published_revision = store.revision
        supervisor.start()

    def _initial_state(self, claim: Claim) -> tuple[AuthState | None, str]:
        restored: list[AuthState] = []  # opened at most once, and only when needed

        def restored_state() -> AuthState | None:
            if not restored and claim.sealed_state is not None:
                restored.append(self.codec.open_restored(claim.account_id, claim.generation, claim.sealed_state))
            return restored[0] if restored else None

        def vault_digest() -> bytes | None:
            # A generation gap over one: the cache still wins if the vault's state is one it wrote.
            try:
                state = restored_state()
            except RestoreError:
                return None
            return None if state is None else _digest(state)

        if self.cache is not None:
            try:
                cached = self.cache.usable_for(claim.account_id, claim.generation, vault_digest)
            except CacheError as exc:
                log.warning("cache unreadable", extra={"account_id": claim.account_id,
                                                      "fields": {"error": str(exc)}})
                cached = None
            if cached is not None:
                try:
                    state = parse_state(cached.state)
                except Exception as exc:
                    log.warning("cache entry unusable", extra={"account_id": claim.account_id,
                                                              "fields": {"error": type(exc).__name__}})
                else:
                    # A pair claim for an account this connector already linked (the functions had not
                    # yet recorded pairing.success when the lease went): pairing again would orphan
                    # the linked device. Logged-out states never get here: they leave the cache.
                    linked = state.creds.me is not None and state.creds.account is not None
                    if claim.mode == ClaimMode.RESTORE or linked:
                        return state, "cache"
        from_vault = restored_state()
        if from_vault is not None:
            return from_vault, "fell_back" if claim.fell_back else "restored"
        if claim.mode == ClaimMode.PAIR:
            return AuthState.generate(), "pairing"
        return None, "none"

    def _log_found(self, claim: Claim, source: str) -> None:
        info: dict[str, object] = {"generation": claim.generation, "version": claim.version, "source": source}
        extra = {"account_id": claim.account_id, "fields": info}
        if source == "pairing":
            info["method"] = claim.pairing.method if claim.pairing else None
            log.info("new account to pair", extra=extra)
        elif source == "fell_back":
            log.warning("session restored from an older version (newer ones were unusable)", extra=extra)
        elif source == "cache":
            log.info("session restored from the local cache", extra=extra)
        else:
            log.info("session restored", extra=extra)

    def on_lost(self, lost: Lost) -> None:
        slot = self.accounts.pop(lost.account_id, None)
        if slot is None:
            return
        log.warning("lease lost: closing the socket", extra={"account_id": lost.account_id,
                                                              "fields": {"reason": lost.reason}})
        # Another connector may hold it now: a snapshot from us would be refused (older generation).
        self.flusher.forget(lost.account_id)
        self._retire(slot, f"lease_{lost.reason}", report=True)

    def on_expiring(self, account_id: str) -> None:
        slot = self.accounts.pop(account_id, None)
        if slot is None:
            return
        log.error("lease about to expire without renewal: closing the socket first",
                  extra={"account_id": account_id})
        self.flusher.forget(account_id)
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
        self.flusher.forget(slot.account_id)
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

    def _retire(self, slot: AccountSlot, reason: str, report: bool = False, final_snapshot: bool = False) -> None:
        if self.accounts.get(slot.account_id) is None:
            self.outbox.account_released(slot.account_id)  # the next holder gets its sends
        if final_snapshot:
            self._closing[slot.account_id] = slot

        async def go() -> None:
            await slot.supervisor.stop(reason)
            if final_snapshot and self._closing.get(slot.account_id) is slot:
                del self._closing[slot.account_id]
                self._final_snapshot(slot)
            if report:
                self._publish_update(slot.account_id, slot.generation, ConnectionState.STOPPED, reason)

        self._spawn(go())

    def _final_snapshot(self, slot: AccountSlot) -> None:
        if slot.store.revision == slot.published_revision:
            return
        try:
            self._flush_slot(slot, self._clock(), force=True)
        except Exception:
            log.exception("last snapshot before the lease expires failed", extra={"account_id": slot.account_id})

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    # --- snapshots ----------------------------------------------------------------------------------

    def _state_changed(self, account_id: str, change: StateChange) -> None:
        if account_id in self.accounts:
            self.flusher.mark(account_id, change.kind)

    def _flush_snapshot(self, account_id: str, since: float) -> None:
        slot = self.accounts.get(account_id)
        if slot is not None:
            self._flush_slot(slot, since)

    def _flush_slot(self, slot: AccountSlot, since: float, *, force: bool = False) -> None:
        if not force and self.inbox.in_flight(slot.account_id) and not self.shutting_down:
            # Decrypted messages' events are not accepted yet, and this snapshot would carry the
            # ratchet steps that consumed their keys: held until they are (messages_settled).
            slot.flush_held = True
            return
        slot.flush_held = False
        self.flusher.coalescer.forget(slot.account_id)
        revision = slot.store.revision
        state = slot.store.snapshot()
        state_bytes = canonical_state_bytes(state)  # serialised once, for the cache and the snapshot
        if self.cache is not None:
            try:
                self.cache.put(slot.account_id, slot.generation, state_bytes)
            except CacheError as exc:
                # The cache no longer offers the older entry (see StateCache.put): the vault wins.
                log.warning("cache write failed", extra={"account_id": slot.account_id,
                                                        "fields": {"error": str(exc)}})
        sealed = self.codec.seal(slot.account_id, slot.generation, state, state_bytes)
        attributes = SnapshotAttributes(slot.account_id, slot.generation, self.config.connector_id)
        self.snapshots.submit(slot.account_id, sealed, attributes.to_attributes(), since)
        slot.published_revision = revision

    async def persist_now(self, account_id: str) -> bool:
        slot = self.accounts.get(account_id)
        if slot is None:
            return False
        return await self.persist_through(account_id, slot.store.revision)

    # --- SnapshotGate (connector.inbox) ----------------------------------------------------------

    def revision(self, account_id: str) -> int | None:
        slot = self.accounts.get(account_id)
        # Shutting down: the sockets close, so nothing more is acked (WhatsApp redelivers it).
        return None if slot is None or self.shutting_down else slot.store.revision

    async def persist_through(self, account_id: str, revision: int) -> bool:
        """Wait until a snapshot at ``revision`` or later is in the cache and accepted by Pub/Sub.

        Waits for the messages in flight first (their events must be accepted before a snapshot
        carries their ratchet steps), and for a snapshot already on its way (which may cover
        ``revision``): under load one snapshot per publish round trip covers many messages."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CRITICAL_PERSIST_TIMEOUT_S
        while True:
            slot = self.accounts.get(account_id)
            if slot is None:
                return False
            left = deadline - loop.time()
            if left <= 0:
                return False
            if slot.published_revision >= revision:
                return await self.snapshots.settled(account_id, left)
            if self.inbox.in_flight(account_id):
                slot.messages_settled.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(slot.messages_settled.wait(), left)
                continue
            if not await self.snapshots.settled(account_id, left):
                return False
            if slot.published_revision >= revision or self.accounts.get(account_id) is not slot:
                continue
            try:
                self._flush_slot(slot, self._clock())
            except Exception:
                log.exception("snapshot could not be built", extra={"account_id": account_id})
                return False

    def messages_settled(self, account_id: str) -> None:
        slot = self.accounts.get(account_id)
        if slot is None:
            return
        slot.messages_settled.set()
        if slot.flush_held:
            self._flush_slot(slot, self._clock())

    def _snapshot_accepted(self, item: Outgoing, latency_s: float) -> None:
        self.metrics.snapshot_latency.observe(latency_s)

    # --- SupervisorHooks ----------------------------------------------------------------------------

    def report(self, account_id: str, state: ConnectionState, reason: str | None, code: int | None,
               attempt: int) -> None:
        slot = self.accounts.get(account_id)
        if slot is None:
            return
        if state is ConnectionState.NEEDS_PAIRING and self.cache is not None:
            # These keys were unlinked by the phone: never bring them back from the cache.
            with contextlib.suppress(CacheError):
                self.cache.delete(account_id)
        if state is ConnectionState.OPEN:
            log.info("connected", extra={"account_id": account_id, "fields": {"generation": slot.generation}})
        self._publish_update(account_id, slot.generation, state, reason, code=code, attempt=attempt)

    def _publish_update(self, account_id: str, generation: int, state: ConnectionState, reason: str | None,
                        *, code: int | None = None, attempt: int = 0) -> None:
        event = ConnectionUpdate(account_id=account_id, connector_id=self.config.connector_id,
                                 generation=generation, at=datetime.now(UTC), state=state, reason=reason,
                                 code=code, attempt=attempt)
        self.reports.add(event)

    def _sender(self, account_id: str) -> tuple[str, int]:
        """Who sends an account's pairing events: this connector, under the generation it holds the account."""
        slot = self.accounts.get(account_id)
        return self.config.connector_id, slot.generation if slot is not None else 0

    def pairing_code(self, account_id: str, code: str) -> None:
        log.info("pairing code ready", extra={"account_id": account_id})
        event = PairingCode(account_id, code.replace("-", "").upper(),
                            datetime.now(UTC) + timedelta(seconds=PAIRING_CODE_TTL_S), *self._sender(account_id))
        self.events.submit(account_id, event.to_json(), event.attributes())

    def pairing_qr(self, account_id: str, qr: str) -> None:
        log.info("pairing QR ready", extra={"account_id": account_id})
        event = PairingQr(account_id, qr, datetime.now(UTC) + timedelta(seconds=QR_TTL_S), *self._sender(account_id))
        self.events.submit(account_id, event.to_json(), event.attributes())

    def paired(self, account_id: str, jid: str) -> None:
        log.info("paired", extra={"account_id": account_id})
        event = PairingSuccess(account_id, jid, *self._sender(account_id))
        self.events.submit(account_id, event.to_json(), event.attributes())

    def pairing_failed(self, account_id: str, reason: str) -> None:
        log.warning("pairing failed", extra={"account_id": account_id, "fields": {"reason": reason}})
        slug = "expired" if reason == CloseReason.PAIRING_EXPIRED else reason
        event = PairingFailed(account_id, slug, *self._sender(account_id))
        self.events.submit(account_id, event.to_json(), event.attributes())

    def message(self, account_id: str, message: ReceivedMessage, ack: Callable[[], Awaitable[bool]]) -> None:
        if account_id in self.accounts:
            self.inbox.received(account_id, message, ack)

    def message_retried(self, account_id: str, event: RetryRequested | DuplicateIgnored) -> None:
        self.inbox.noted(account_id, event)

    def state_changed(self, account_id: str, old: AccountState, new: AccountState) -> None:
        log.debug("state", extra={"account_id": account_id, "fields": {"from": old.value, "to": new.value}})

    def reconnecting(self, account_id: str, reason: str) -> None:
        # The supervisor logs the reconnect with its reason and delay; count it here.
        self.metrics.reconnects.inc(reason)

    # --- metrics ------------------------------------------------------------------------------------

    def _accounts_by_state(self) -> dict[LabelValues, float]:
        counts: dict[LabelValues, float] = {(s.value,): 0.0 for s in AccountState}
        for slot in self.accounts.values():
            counts[(slot.supervisor.state.value,)] += 1
        return counts
