"""The WhatsApp Web version the engine announces in every login and registration.

WhatsApp refuses a client whose version it no longer accepts (``<failure reason=405>``, close reason
``client_outdated``), and then every account stops until the version changes. So the version is
configuration (``KEEPER_WA_VERSION``, ``major.minor.patch``, validated; the engine's built-in one by
default), and where the operator enables it (``KEEPER_WA_VERSION_FETCH=1``) the connector reads the current
one at start, as Baileys users do: WhatsApp Web's service worker script (``KEEPER_WA_VERSION_URL``,
``https://web.whatsapp.com/sw.js``) names its ``client_revision``, and the version is ``2.3000.<revision>``.
A fetch that fails or finds no revision keeps the configured version (logged); it is bounded by
``FETCH_TIMEOUT_S`` so a start never waits on it for long.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from connector.config import ConnectorConfig

log = logging.getLogger(__name__)

Version = tuple[int, int, int]
DEFAULT_VERSION_URL: Final = "https://web.whatsapp.com/sw.js"
FETCH_TIMEOUT_S: Final = 5.0
_MAX_SCRIPT_BYTES: Final = 4 << 20
_VERSION_RE: Final = re.compile(r"([1-9][0-9]{0,3})\.([0-9]{1,6})\.([0-9]{1,10})")
_REVISION_RE: Final = re.compile(r'\\?"client_revision\\?"\s*:\s*([0-9]{1,10})')
_MAX_PART: Final = 0xFFFFFFFF  # the ClientPayload fields are uint32


def parse_version(text: str) -> Version:
    """``major.minor.patch`` as three integers; ValueError for anything else."""
    match = _VERSION_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text[:40]!r} is not major.minor.patch")
    major, minor, patch = (int(part) for part in match.groups())
    if max(major, minor, patch) > _MAX_PART:
        raise ValueError(f"{text[:40]!r} has a part over {_MAX_PART}")
    return major, minor, patch


def version_from_service_worker(script: str) -> Version | None:
    """The version WhatsApp Web's service worker script announces (its ``client_revision``), or None."""
    match = _REVISION_RE.search(script)
    if match is None or int(match.group(1)) > _MAX_PART:
        return None
    return 2, 3000, int(match.group(1))


async def fetch_current_version(url: str, timeout_s: float = FETCH_TIMEOUT_S) -> Version | None:
    """The current version from ``url``, or None when it cannot be had (logged, never raised)."""
    import aiohttp

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session, \
                session.get(url, headers={"User-Agent": "Mozilla/5.0 keeper-connector"}) as response:
            response.raise_for_status()
            body = await response.content.read(_MAX_SCRIPT_BYTES)
    except Exception as exc:  # network, HTTP status, timeout: the configured version stays
        log.warning("WhatsApp Web version not fetched", extra={"fields": {"url": url, "error": type(exc).__name__}})
        return None
    version = version_from_service_worker(body.decode("utf-8", "replace"))
    if version is None:
        log.warning("WhatsApp Web version not found in the fetched script", extra={"fields": {"url": url}})
    return version


async def announced_version(config: ConnectorConfig) -> Version:
    """What the engine announces: the fetched current version when enabled and found, else the configured one."""
    if config.wa_version_fetch:
        fetched = await fetch_current_version(config.wa_version_url)
        if fetched is not None:
            if fetched != config.wa_version:
                log.info("announcing the current WhatsApp Web version",
                         extra={"fields": {"version": ".".join(map(str, fetched)),
                                           "configured": ".".join(map(str, config.wa_version))}})
            return fetched
    return config.wa_version
