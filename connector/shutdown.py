"""The graceful shutdown of a connector (SIGTERM), within ``shutdown_budget_s``.

Order: stop taking work and report not ready; close every socket (so no key moves after the final
snapshot and no second socket can meet ours); snapshot every account that changed since its last
snapshot and wait for Pub/Sub to accept them; then release the leases of the accounts whose state
is safely published, so the next connector takes them over at once. An account whose snapshot did
not get through keeps its lease until it expires: handing it over early would only hand over older
keys sooner.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from connector.errors import SyncError
from connector.logs import fields

if TYPE_CHECKING:
    from connector.service import ConnectorService

log = logging.getLogger(__name__)

STOP_SOCKETS_BUDGET_S = 2.0
RELEASE_BUDGET_S = 1.5
#: Left for the process itself to exit after the service has stopped.
PROCESS_EXIT_MARGIN_S = 0.5


async def shut_down(service: ConnectorService) -> None:
    """See the module docstring; returns within ``service.config.shutdown_budget_s``."""
    clock = service.clock
    started = clock()
    budget = max(0.5, service.config.shutdown_budget_s - PROCESS_EXIT_MARGIN_S)

    def left() -> float:
        return max(0.0, budget - (clock() - started))

    writer, snapshots = service.writer, service.writer.publisher
    service.shutting_down = True
    service.keeper.stop_taking_work()
    await service.close_outbox(max(0.1, min(1.0, budget / 8)))
    await service.stop_tasks()
    held = list(service.accounts.values())
    log.info("shutting down", extra=fields(accounts=len(held), pendingSnapshots=snapshots.pending()))
    await asyncio.gather(*(slot.supervisor.stop("shutdown", min(STOP_SOCKETS_BUDGET_S, left() / 3))
                           for slot in held), return_exceptions=True)
    sockets_closed_s = clock() - started
    await service.wait_stopping(max(0.1, left() / 4))
    for slot in held:
        if slot.store.revision != slot.published_revision:
            writer.mark_critical(slot.account_id)
    writer.flusher.flush_now()
    message_tasks = [t for slot in held for t in slot.message_tasks]
    drained = await snapshots.drained(max(0.0, left() - RELEASE_BUDGET_S - 0.5))
    unpublished = snapshots.pending_keys()
    if not drained:
        log.error("shutdown: snapshots not accepted in time; their leases are kept until they expire",
                  extra=fields(accounts=sorted(unpublished)[:50], count=len(unpublished)))
    service.reports.flush()
    await service.events.drained(min(0.5, left()))
    if message_tasks:
        await asyncio.wait(message_tasks, timeout=min(0.5, left()))
    published_s = clock() - started
    for slot in held:
        if slot.account_id not in unpublished:
            service.keeper.release(slot.account_id)
    try:
        released = await asyncio.wait_for(service.keeper.release_pending(), max(0.1, left() - 0.3))
        log.info("leases released", extra=fields(count=released))
    except (TimeoutError, SyncError) as exc:
        log.warning("could not release leases; they will expire", extra=fields(error=str(exc)))
    released_s = clock() - started
    for publisher in (snapshots, service.events, service.messages):
        await publisher.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(service.keeper.client.close(), 0.2)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(service.transport.close(), max(0.1, left()))
    with contextlib.suppress(Exception):
        await asyncio.wait_for(service.http.stop(), max(0.2, left()))
    log.info("connector stopped", extra=fields(seconds=round(clock() - started, 2),
                                               socketsClosedAtS=round(sockets_closed_s, 2),
                                               snapshotsPublishedAtS=round(published_s, 2),
                                               leasesReleasedAtS=round(released_s, 2)))
