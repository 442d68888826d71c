"""Run the connector: ``python -m connector`` (or ``keeper connector``).

Configuration comes from the environment (``connector/config.py``). SIGTERM and SIGINT start the
graceful shutdown (``ConnectorService.shutdown``); a watchdog ends the process one second after
the shutdown budget whatever is still running, so the platform's SIGKILL never has to.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading

from connector import logs
from connector.cache import StateCache
from connector.config import ConnectorConfig
from connector.errors import CacheError, ConnectorConfigError
from connector.identity import MetadataIdentityTokens
from connector.link import LinkFactory
from connector.outbox import OutboxSubscription
from connector.publisher import PubSubTransport
from connector.service import ConnectorService
from connector.sync import HttpSyncClient
from connector.wa_version import announced_version

log = logging.getLogger("connector")

EXIT_WATCHDOG_GRACE_S = 1.0


def _arm_watchdog(budget_s: float) -> None:
    def force_exit() -> None:
        log.error("shutdown overran its budget: exiting now")
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(budget_s + EXIT_WATCHDOG_GRACE_S, force_exit)
    timer.daemon = True
    timer.start()


def default_link_factory(config: ConnectorConfig, version: tuple[int, int, int] | None = None) -> LinkFactory:
    """The real engine, announcing ``version`` (the configured one by default; ``connector.wa_version``)."""
    from dataclasses import replace

    from connector.engine.driver import EngineLinkFactory
    from connector.protocol.client import ClientConfig

    base = ClientConfig()
    client = replace(base, device=replace(base.device, version=version or config.wa_version))
    return EngineLinkFactory(config.wa_url, config.wa_root_key, client_config=client)


async def serve(config: ConnectorConfig, link_factory: LinkFactory | None = None) -> int:
    cache = None
    if config.cache_dir:
        try:
            cache = StateCache(config.cache_dir)
        except CacheError as exc:
            log.warning("local cache disabled", extra=logs.fields(error=str(exc)))
    service = ConnectorService(
        config,
        sync_client=HttpSyncClient(config.functions_url, config.token, token_source=(
            MetadataIdentityTokens(config.audience) if config.audience else None)),
        transport=PubSubTransport(config.project_id),
        link_factory=link_factory or default_link_factory(config, await announced_version(config)),
        cache=cache,
    )
    service.outbox_feed = OutboxSubscription(config.project_id, config.topics.outbox, config.connector_id,
                                             service.outbox.offer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if not stop.is_set():
            log.info("signal received: shutting down", extra=logs.fields(signal=signum.name))
            _arm_watchdog(config.shutdown_budget_s)
            stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    await service.run_until(stop)
    return 0


def main() -> int:
    try:
        config = ConnectorConfig.from_env()
    except ConnectorConfigError as exc:
        print(f"connector: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup(config.log_level)
    # Not asyncio.run: its teardown waits without limit for executor threads (a Pub/Sub client
    # stopping against an unreachable endpoint), and the exit must stay within the budget.
    loop = asyncio.new_event_loop()
    code = loop.run_until_complete(serve(config))
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
