"""Which state a claimed account starts from: the local cache, the restored state, or a new identity.

The rule (the cache's fence and why the cache wins are in :mod:`connector.cache`):

1. a cache entry the fence allows, for a ``restore`` claim, or for a ``pair`` claim when the entry is
   a linked state (this connector linked it and the functions had not yet recorded
   ``pairing.success`` when the lease went: pairing again would orphan the linked device);
2. else the restored state the claim carries (``fell_back`` when newer versions were unusable);
3. else, for a ``pair`` claim, a freshly generated identity;
4. else nothing: the account needs pairing.

The sealed state is opened at most once, and only when needed.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from connector.cache import StateCache, state_digest
from connector.errors import CacheError, RestoreError
from shared.authstate import AuthState
from shared.connector_sync import Claim, ClaimMode
from shared.snapshot import canonical_state_bytes, parse_state

log = logging.getLogger(__name__)


class StateSource(enum.StrEnum):
    """Where a claimed account's state came from (also the ``source`` label of the claims metric)."""

    CACHE = "cache"
    RESTORED = "restored"
    FELL_BACK = "fell_back"
    PAIRING = "pairing"
    NONE = "none"


def state_digest_of(state: AuthState) -> bytes:
    return state_digest(canonical_state_bytes(state))


def starting_state(claim: Claim, open_restored: Callable[[str, int, bytes], AuthState],
                   cache: StateCache | None) -> tuple[AuthState | None, StateSource]:
    """Apply the module's rule; ``open_restored(account_id, generation, sealed)`` opens the claim's
    state (raising :class:`RestoreError`, which propagates when the restored state is the one chosen)."""
    restored: list[AuthState] = []

    def restored_state() -> AuthState | None:
        if not restored and claim.sealed_state is not None:
            restored.append(open_restored(claim.account_id, claim.generation, claim.sealed_state))
        return restored[0] if restored else None

    def vault_digest() -> bytes | None:
        # A generation gap over one: the cache still wins if the vault's state is one it wrote.
        try:
            state = restored_state()
        except RestoreError:
            return None
        return None if state is None else state_digest_of(state)

    if cache is not None:
        cached_state = _from_cache(claim, cache, vault_digest)
        if cached_state is not None:
            return cached_state, StateSource.CACHE
    from_vault = restored_state()
    if from_vault is not None:
        return from_vault, StateSource.FELL_BACK if claim.fell_back else StateSource.RESTORED
    if claim.mode == ClaimMode.PAIR:
        return AuthState.generate(), StateSource.PAIRING
    return None, StateSource.NONE


def _from_cache(claim: Claim, cache: StateCache, vault_digest: Callable[[], bytes | None]) -> AuthState | None:
    try:
        cached = cache.usable_for(claim.account_id, claim.generation, vault_digest)
    except CacheError as exc:
        log.warning("cache unreadable", extra={"account_id": claim.account_id, "fields": {"error": str(exc)}})
        return None
    if cached is None:
        return None
    try:
        state = parse_state(cached.state)
    except Exception as exc:
        log.warning("cache entry unusable", extra={"account_id": claim.account_id,
                                                  "fields": {"error": type(exc).__name__}})
        return None
    # Logged-out states never get here: they leave the cache.
    linked = state.creds.me is not None and state.creds.account is not None
    return state if claim.mode == ClaimMode.RESTORE or linked else None


def log_found(claim: Claim, source: StateSource) -> None:
    info: dict[str, object] = {"generation": claim.generation, "version": claim.version, "source": str(source)}
    extra = {"account_id": claim.account_id, "fields": info}
    if source is StateSource.PAIRING:
        info["method"] = claim.pairing.method if claim.pairing else None
        log.info("new account to pair", extra=extra)
    elif source is StateSource.FELL_BACK:
        log.warning("session restored from an older version (newer ones were unusable)", extra=extra)
    elif source is StateSource.CACHE:
        log.info("session restored from the local cache", extra=extra)
    else:
        log.info("session restored", extra=extra)
