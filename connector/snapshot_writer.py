"""Snapshots of held accounts: from a change in an auth store to a sealed snapshot on Pub/Sub.

Every change marks its account in the :class:`~connector.coalescer.CoalescingFlusher` (critical at
once, routine within the window). A flush serialises the state once, writes it to the local cache
first (so the cache is never older than what was published), seals it to the vault's public key
(:class:`~connector.snapshot_codec.SnapshotCodec`) and hands it to the snapshot publisher (ordered per
account, newest only). :meth:`SnapshotWriter.persist_now` is the link's persist-before-send wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from connector.cache import StateCache
from connector.coalescer import ChangeKind, CoalescingFlusher
from connector.errors import CacheError
from connector.metrics import Histogram
from connector.publisher import MessageTransport, OrderedPublisher, Outgoing
from connector.slots import AccountSlot
from connector.snapshot_codec import SnapshotCodec
from shared.events import SnapshotAttributes
from shared.snapshot import canonical_state_bytes

log = logging.getLogger(__name__)

#: How long a critical change may hold the engine back waiting for Pub/Sub (it stays queued after).
CRITICAL_PERSIST_TIMEOUT_S = 10.0


class SnapshotWriter:
    def __init__(self, codec: SnapshotCodec, transport: MessageTransport, topic: str, *,
                 slot_of: Callable[[str], AccountSlot | None], cache: StateCache | None,
                 window_s: float, latency: Histogram, clock: Callable[[], float]) -> None:
        self.codec = codec
        self.cache = cache
        self._slot_of = slot_of
        self._latency = latency
        self._clock = clock
        self.publisher = OrderedPublisher(transport, topic, newest_only=True, on_accepted=self.accepted, clock=clock)
        self.flusher = CoalescingFlusher(self._flush_due, window_s, clock)

    def changed(self, account_id: str, kind: ChangeKind) -> None:
        """An auth store changed (its listener)."""
        if self._slot_of(account_id) is not None:
            self.flusher.mark(account_id, kind)

    def mark_critical(self, account_id: str) -> None:
        self.flusher.mark(account_id, "critical")

    def forget(self, account_id: str) -> None:
        """Drop the account's pending flush (it is no longer ours to publish)."""
        self.flusher.forget(account_id)

    def _flush_due(self, account_id: str, since: float) -> None:
        slot = self._slot_of(account_id)
        if slot is not None:
            self.flush_slot(slot, since)

    def flush_slot(self, slot: AccountSlot, since: float) -> None:
        """Cache, seal and submit the slot's state now (``since``: its first unsnapshotted change)."""
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
        attributes = SnapshotAttributes(slot.account_id, slot.generation, self.codec.connector_id)
        self.publisher.submit(slot.account_id, sealed, attributes.to_attributes(), since)
        slot.published_revision = revision

    def final_snapshot(self, slot: AccountSlot) -> None:
        """The last snapshot of a slot whose socket is closed (lease expiring, reclaimed), if it changed."""
        if slot.store.revision == slot.published_revision:
            return
        try:
            self.flush_slot(slot, self._clock())
        except Exception:
            log.exception("last snapshot before the lease expires failed", extra={"account_id": slot.account_id})

    async def persist_now(self, account_id: str) -> bool:
        """Snapshot now and wait until Pub/Sub accepted it; False if that did not happen in time."""
        slot = self._slot_of(account_id)
        if slot is None:
            return False
        if slot.store.revision != slot.published_revision:
            try:
                self.flush_slot(slot, self._clock())
            except Exception:
                log.exception("critical snapshot could not be built", extra={"account_id": account_id})
                return False
        return await self.publisher.settled(account_id, CRITICAL_PERSIST_TIMEOUT_S)

    def accepted(self, item: Outgoing, latency_s: float) -> None:
        self._latency.observe(latency_s)
