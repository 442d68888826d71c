"""connectorSync: renew, release, claim and commands for one connector in one call.

Claiming hands out accounts nobody holds a live lease on, up to the connector's free capacity.
A claim takes the lease (generation + 1) first, then:

- an account that is pairing is handed out in mode ``pair`` with its method and phone number,
  unless a linked state was saved since the pairing started: the status lags the vault (the
  ``pairing.success`` event travels on another topic than the snapshot), and pairing again would
  orphan the linked device and ask the user to re-pair. That account is restored, and recorded as
  linked;
- any other account is restored through the vault, which validates each version and falls back to
  older ones; the state is sealed to the connector's ephemeral public key, so it never crosses the
  wire in clear and only that connector process can open it. A removing account is restored too,
  with a ``remove`` command, so its device can be logged out properly.

Claims are made in rounds of :data:`CLAIM_ROUND`: the round's leases in one transaction, its claim
index updates and restore outcomes in one batched write each, its restores read in two round trips
(``restore_many``) and decrypted and sealed on a thread pool. Up to :data:`PARALLEL_ROUNDS` rounds run
at once (a round mostly waits on Firestore, so rounds in sequence would leave the CPU idle). The
claim budget is checked between waves of rounds.
The first account of a call that needs the vault goes in a round of its own, so a KEK out of reach
costs one wait per call.

Every restore records its outcome (restored / fell back / failed and why) for the metrics. An
account that cannot be restored is not served again until its owner asks (``restore_failed``); its
lease is released at once so the generation sequence stays meaningful. A KEK that cannot be fetched
is not a verdict on the stored state: the lease is given back, the account waits
:data:`KEK_RETRY_S` before the next attempt, and a ``kek_unavailable`` alert is opened. Renewals
do not need the KEK at all, and the reply's vault key falls back to the last one handed out, so a
Secret Manager outage never costs connectors the accounts they hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from functions.alerts import Alerter
from functions.errors import PermissionDeniedError
from functions.leases import release_all, renew_all
from functions.messages import MessageStore
from functions.model import (
    Account,
    AccountStatus,
    Clock,
    ConnectorRecord,
    Lease,
    RestoreOutcome,
    RestoreOutcomeKind,
    serving,
)
from functions.ports import RestoredState, SessionVault, TransitSealer, failure_kind
from functions.send import pending_for_sync
from functions.stores import Stores, VaultKeyRecord
from shared import errors as shared_errors
from shared.connector_sync import (
    Claim,
    ClaimMode,
    Command,
    CommandAction,
    PairingRequest,
    SyncReply,
    SyncRequest,
)
from shared.errors import SkippedVersion
from shared.events import OutboundSend
from shared.phone_numbers import same_number

_log = logging.getLogger(__name__)

#: How many more candidates than free slots to look at (some are taken by other connectors meanwhile;
#: an account with a live lease is out of the query already, its index being ahead of the clock).
#: Each candidate costs an account and a lease read, so few spares are read; what another connector
#: took first is made up on the next sync.
_CANDIDATE_FACTOR = 1
_CANDIDATE_EXTRA = 10
#: Claiming stops after this long in one call, so the answer reaches the connector well inside its
#: request timeout (8 s); what is left is claimed on the next sync a few seconds later. A lease taken
#: for an answer the connector never read would sit idle until it expired.
CLAIM_BUDGET_S = 3.0
#: After a restore found the KEK out of reach, the account is offered again this much later (not on
#: every connector's next sync, which would hammer Secret Manager while it is down).
KEK_RETRY_S = 60.0
#: The identity :class:`functions.auth.BearerVerifier` reports for the local shared token.
LOCAL_CALLER = "token"


#: The look for new sends of held accounts reaches this far before the connector's previous call
#: (clocks of function instances differ; a send is committed a moment after its time was taken).
SENDS_MARGIN_S = 60.0
#: Pending sends in one answer at most (the rest follow in later answers: claims are rare, and the
#: held-account look repeats for a minute).
MAX_PENDING_SENDS = 1000

#: Accounts claimed per round: one lease transaction, one batch of index updates and one of
#: outcome records each. The claim budget is checked between rounds, so a round is what it may overrun.
CLAIM_ROUND = 25
#: Restores of one round run on this many threads: each waits on Firestore reads (head, version)
#: that overlap, while decrypting and sealing take turns on the interpreter.
RESTORE_THREADS = 6
#: Rounds of one call in flight at once, once the vault has answered in this call.
PARALLEL_ROUNDS = 4


@dataclass(slots=True)
class _HandOut:
    """What serving one claimed account produced; the store writes it needs are batched per round."""

    entry: Claim | None = None
    outcome: RestoreOutcome | None = None
    kek_unavailable: bool = False
    commands: list[Command] = field(default_factory=list)


class ConnectorSyncService:
    def __init__(self, stores: Stores, vault: SessionVault, sealer: TransitSealer, alerter: Alerter,
                 clock: Clock, *, lease_ttl_s: float, pairing_ttl_s: float, max_claims: int = 100,
                 messages: MessageStore | None = None) -> None:
        self._messages = messages
        self._stores = stores
        self._vault = vault
        self._sealer = sealer
        self._alerter = alerter
        self._clock = clock
        self._lease_ttl_s = lease_ttl_s
        self._pairing_ttl_s = pairing_ttl_s
        self._max_claims = max_claims
        self._known_key: VaultKeyRecord | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._round_executor: ThreadPoolExecutor | None = None

    def _bound_record(self, connector_id: str, caller: str) -> ConnectorRecord | None:
        """The connector's record (its previous call), once the caller is its identity."""
        record = self._stores.status.connector(connector_id)
        if record is not None and record.identity is not None and record.identity != caller:
            _log.warning("connectorSync %s: refused, the id belongs to another identity", connector_id)
            raise PermissionDeniedError(f"connector id {connector_id} belongs to another identity")
        return record

    def sync(self, request: SyncRequest, caller: str = LOCAL_CALLER) -> SyncReply:
        """One connectorSync call by ``caller``, the verified identity (``LOCAL_CALLER`` for the local shared
        token). A connector id belongs to the identity of its first call: another identity naming it is
        refused before any lease is touched, so it cannot release or renew that connector's leases."""
        started = time.monotonic()
        now = self._clock()
        previous = self._bound_record(request.connector_id, caller)
        since = self._sends_since(previous, now)
        release_all(self._stores, request.connector_id, request.release, now)
        released = {r.account_id for r in request.release}
        held = tuple(h for h in request.held if h.account_id not in released)  # released wins
        renewal = renew_all(self._stores, request.connector_id, held, now, self._lease_ttl_s, previous=previous)
        renewed_at = time.monotonic()
        commands = list(renewal.commands)
        free = min(request.capacity - len(renewal.held_ids), self._max_claims)
        claimed: list[Claim] = []
        if free > 0:
            skip = renewal.held_ids | {r.account_id for r in request.release}
            claimed, claim_commands = self._claim_work(request, self._candidates(free, skip, now), free)
            commands.extend(claim_commands)
        claimed_at = time.monotonic()
        self._stores.status.record_connector(ConnectorRecord(
            request.connector_id, now, request.capacity, len(renewal.held_ids) + len(claimed), caller))
        public_key, key_id = self._vault_key()
        pending = self._pending_sends([c.account_id for c in claimed], renewal.held_ids, since)
        # a call that changed nothing (renewals only) is every connector's heartbeat: debug, not info
        busy = request.release or renewal.lost or claimed
        _log.log(logging.INFO if busy else logging.DEBUG,
                 "connectorSync %s: %d released, %d renewed of %d held, %d lost, %d claimed in %.2f s "
                 "(release + renew %.2f s, claim %.2f s)", request.connector_id, len(request.release),
                 len(renewal.renewed), len(held), len(renewal.lost), len(claimed), time.monotonic() - started,
                 renewed_at - started, claimed_at - renewed_at)
        return SyncReply(self._lease_ttl_s, public_key, key_id, renewed=renewal.renewed, lost=renewal.lost,
                         claimed=claimed, commands=commands, pending_sends=pending)

    def _sends_since(self, previous: ConnectorRecord | None, now: datetime) -> datetime | None:
        """Where this call's look for newly accepted sends of held accounts starts: shortly before the
        connector's previous call (None: first call, or long ago; then every pending send is looked at)."""
        if self._messages is None:
            return None
        if previous is None or previous.last_sync_at < now - timedelta(seconds=2 * self._lease_ttl_s):
            return None
        return min(previous.last_sync_at, now) - timedelta(seconds=SENDS_MARGIN_S)

    def _pending_sends(self, claimed: list[str], held: set[str], since: datetime | None) -> list[OutboundSend]:
        """The outbox catch-up (``pendingSends``): see :func:`functions.send.pending_for_sync`."""
        if self._messages is None or not (claimed or held):
            return []
        try:
            sends = pending_for_sync(self._messages, claimed, sorted(held), since)
        except Exception:  # the sends stay in the outbox; the next call looks again
            _log.warning("connectorSync: pending sends could not be read", exc_info=True)
            return []
        return sends[:MAX_PENDING_SENDS]

    def _vault_key(self) -> tuple[bytes, str]:
        """The vault's public sealing key. While the KEK is out of reach (Secret Manager down), the
        key last handed out: a failed reply would cost every connector its renewals, and so every
        socket, for want of a public key that has not changed."""
        try:
            public_key, key_id = self._sealer.vault_public_key()
        except shared_errors.KekUnavailableError:
            known = self._known_key or self._stores.status.vault_key()
            if known is None:
                raise
            _log.warning("vault sealing key out of reach (KEK unavailable): handing out key %s as before",
                         known.key_id)
            return known.public_key, known.key_id
        if self._known_key != (record := VaultKeyRecord(public_key, key_id)):
            self._stores.status.put_vault_key(record)  # once per process and key
            self._known_key = record
        return public_key, key_id

    def _candidates(self, free: int, skip: set[str], now: Any) -> list[Account]:
        limit = free * _CANDIDATE_FACTOR + _CANDIDATE_EXTRA
        found = self._stores.accounts.claimable(now, limit) + self._stores.accounts.removing(limit)
        unique = {a.account_id: a for a in reversed(found)}  # first occurrence wins, order kept below
        accounts = [a for a in found if unique.pop(a.account_id, None) is not None and a.account_id not in skip
                    and (a.serve or a.status is AccountStatus.REMOVING)]
        leases = self._stores.leases.get_many([a.account_id for a in accounts])
        free_accounts: list[Account] = []
        behind: dict[str, dict[str, Any]] = {}
        for account in accounts:
            lease = leases.get(account.account_id)
            if lease is None or not lease.live(now):
                free_accounts.append(account)
            elif account.serve:
                # The index fell behind a live lease: move it forward so it stops taking a slot here.
                behind[account.account_id] = {"claimable_after": lease.expires_at}
        if behind:
            self._stores.accounts.update_many(behind)
        return free_accounts

    def _needs_vault(self, account: Account) -> bool:
        return account.status is not AccountStatus.PAIRING or self._saved_since_pairing(account)

    def _claim_work(self, request: SyncRequest, candidates: list[Account],
                    free: int) -> tuple[list[Claim], list[Command]]:
        """Claim and serve up to ``free`` candidates in rounds, within :data:`CLAIM_BUDGET_S`.

        The first account that needs the vault goes in a round of its own: if the KEK is out of
        reach, that one attempt (which may wait on Secret Manager's retries) is the only one of the
        call, and no other account is claimed only to be given back. Later rounds run in parallel."""
        deadline = time.monotonic() + CLAIM_BUDGET_S
        claimed: list[Claim] = []
        commands: list[Command] = []
        restored_ids: list[str] = []
        vault_proven = restores_paused = False
        queue = list(candidates)
        while queue and len(claimed) < free:
            if restores_paused:
                queue = [a for a in queue if not self._needs_vault(a)]
            wave = self._next_wave(queue, free - len(claimed), vault_proven)
            if len(wave) == 1:
                results = [self._claim_round(request, wave[0])]
            else:
                results = list(self._round_pool().map(lambda r: self._claim_round(request, r), wave))
            for round_, outs in zip(wave, results, strict=True):
                outcomes = [o.outcome for o in outs if o.outcome is not None]
                if outcomes:
                    self._stores.outcomes.record_many(outcomes)
                for account, out in zip(round_, outs, strict=True):
                    if out.kek_unavailable:
                        restores_paused = True
                    if out.entry is None:
                        continue
                    claimed.append(out.entry)
                    commands.extend(out.commands)
                    if out.outcome is not None:
                        restored_ids.append(account.account_id)
                    if self._needs_vault(account) and not out.kek_unavailable:
                        vault_proven = True
            if time.monotonic() > deadline:
                break
        self._resolve_kek_alerts(restored_ids)
        return claimed, commands

    def _next_wave(self, queue: list[Account], room: int, vault_proven: bool) -> list[list[Account]]:
        """Rounds to run together, taken from the head of ``queue``: one round while the vault has not
        answered in this call (it ends after the first account that needs the vault), else up to
        :data:`PARALLEL_ROUNDS` rounds of up to :data:`CLAIM_ROUND` accounts, ``room`` in all."""
        wave: list[list[Account]] = []
        while queue and room > 0 and len(wave) < (PARALLEL_ROUNDS if vault_proven else 1):
            round_: list[Account] = []
            while queue and len(round_) < min(CLAIM_ROUND, room):
                account = queue.pop(0)
                round_.append(account)
                if not vault_proven and self._needs_vault(account):
                    break
            wave.append(round_)
            room -= len(round_)
        return wave

    def _claim_round(self, request: SyncRequest, accounts: Sequence[Account]) -> list[_HandOut]:
        """Take the leases of ``accounts`` at once, then serve each claimed one (in parallel)."""
        now = self._clock()
        outs = [_HandOut() for _ in accounts]
        wanted: list[Account] = []
        for account in accounts:
            if (account.status is AccountStatus.PAIRING and self._pairing_expired(account, now)
                    and not self._saved_since_pairing(account)):
                self._stores.accounts.update(account.account_id, {
                    "status": AccountStatus.PAIRING_EXPIRED, **serving(False, now), "pairing": None,
                    "updated_at": now})
            else:
                wanted.append(account)
        if not wanted:
            return outs
        leases = self._stores.leases.claim_many([a.account_id for a in wanted], request.connector_id, now,
                                                self._lease_ttl_s)
        jobs: list[tuple[int, Account, Lease]] = []
        index: dict[str, dict[str, Any]] = {}
        for i, account in enumerate(accounts):
            lease = leases.get(account.account_id)
            if lease is None:
                continue  # expired pairing, or another connector was faster
            _log.info("account %s: claimed by %s (generation %d)", account.account_id, request.connector_id,
                      lease.generation)
            if account.serve:
                index[account.account_id] = {"claimable_after": lease.expires_at}
            jobs.append((i, account, lease))
        if index:
            self._stores.accounts.update_many(index)
        prefetched = self._prefetch([account.account_id for _, account, _ in jobs
                                     if account.status is not AccountStatus.PAIRING])
        if len(jobs) == 1:
            results = [self._serve_claim(request, jobs[0][1], jobs[0][2], prefetched.get(jobs[0][1].account_id))]
        else:
            results = list(self._pool().map(
                lambda job: self._serve_claim(request, job[1], job[2], prefetched.get(job[1].account_id)), jobs))
        for (i, _, _), out in zip(jobs, results, strict=True):
            outs[i] = out
        return outs

    def _prefetch(self, account_ids: list[str]) -> dict[str, RestoredState | Exception]:
        """The round's restores with batched reads; if that fails as a whole, each is read on its own."""
        if len(account_ids) < 2:
            return {}
        try:
            return self._vault.restore_many(account_ids)
        except Exception:
            _log.warning("batched restore of %d accounts failed; restoring them one by one", len(account_ids),
                         exc_info=True)
            return {}

    def _round_pool(self) -> ThreadPoolExecutor:
        if self._round_executor is None:
            self._round_executor = ThreadPoolExecutor(PARALLEL_ROUNDS, thread_name_prefix="claim-round")
        return self._round_executor

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(RESTORE_THREADS, thread_name_prefix="restore")
        return self._executor

    def _serve_claim(self, request: SyncRequest, account: Account, lease: Lease,
                     prefetched: RestoredState | Exception | None = None) -> _HandOut:
        """Hand out one claimed account: pairing details, or its restored state sealed to the connector
        (``prefetched``: what a batched restore already found, state or error)."""
        now = self._clock()
        try:
            restored = prefetched
            if account.status is AccountStatus.PAIRING:
                restored = self._linked_while_pairing(account)
                if restored is None:
                    return _HandOut(Claim(account.account_id, lease.generation, ClaimMode.PAIR,
                                          pairing=PairingRequest(account.method, account.phone_number),
                                          lease_expires_at=lease.expires_at))
            out = self._restore(request, account, lease, restored)
        except shared_errors.KekUnavailableError:
            self._give_back(account, request.connector_id, lease, now + timedelta(seconds=KEK_RETRY_S))
            self._alerter.raise_alert(account.account_id, "kek_unavailable",
                                      f"Account {account.account_id} cannot be restored for now: "
                                      "the key-encryption key cannot be fetched.")
            _log.error("account %s: restore postponed, the KEK cannot be fetched", account.account_id)
            return _HandOut(kek_unavailable=True)
        except Exception:
            # Transient trouble (Firestore): give the lease back so another sync retries soon.
            self._give_back(account, request.connector_id, lease, now)
            _log.exception("account %s: restore interrupted, lease released", account.account_id)
            return _HandOut()
        if out.entry is not None and account.status is AccountStatus.REMOVING:
            out.commands.append(Command(account.account_id, CommandAction.REMOVE))
        return out

    def _resolve_kek_alerts(self, account_ids: list[str]) -> None:
        """Close the ``kek_unavailable`` alerts of accounts just restored (one query for all)."""
        if not account_ids:
            return
        waiting = {a.account_id for a in self._stores.alerts.open_alerts(account_ids) if a.kind == "kek_unavailable"}
        for account_id in sorted(waiting):
            self._alerter.resolve(account_id, ("kek_unavailable",))

    def _give_back(self, account: Account, connector_id: str, lease: Lease, retry_at: datetime) -> None:
        self._stores.leases.release(account.account_id, connector_id, lease.generation, self._clock())
        if account.serve:
            self._stores.accounts.update(account.account_id, {"claimable_after": retry_at})

    def _pairing_expired(self, account: Account, now: Any) -> bool:
        started = account.pairing_started_at or account.created_at
        return bool(started + timedelta(seconds=self._pairing_ttl_s) < now)

    @staticmethod
    def _saved_since_pairing(account: Account) -> bool:
        started = account.pairing_started_at or account.created_at
        return account.last_saved_at is not None and account.last_saved_at >= started

    def _linked_while_pairing(self, account: Account) -> RestoredState | None:
        """The stored state of a pairing account if it was linked since this pairing started.

        Only a version saved after the pairing started counts: after a logout, the vault still keeps
        the unlinked credentials, and handing those out would never let the account pair again."""
        if not self._saved_since_pairing(account):
            return None
        try:
            restored = self._vault.restore(account.account_id)
        except (shared_errors.NotFoundError, shared_errors.NoUsableVersionError):
            return None
        creds = restored.state.creds
        if creds.me is None or creds.account is None:
            return None  # saved mid-pairing (e.g. the pairing code's keys), not linked yet
        if account.phone_number and not same_number(account.phone_number, creds.me.id):
            # Linked by the wrong phone (its connector unlinked it, and its pairing.failed may not be
            # recorded yet): those credentials are dead and another number's; pair again instead.
            _log.warning("account %s: the state saved since pairing is another phone's; pairing again",
                         account.account_id)
            return None
        self._stores.accounts.update(account.account_id, {
            "status": AccountStatus.CONNECTING, "linked_jid": creds.me.id, "pairing": None,
            "status_reason": None, "updated_at": self._clock()})
        _log.warning("account %s: linked while its status still said pairing; restoring instead of pairing "
                     "again", account.account_id)
        return restored

    def _restore(self, request: SyncRequest, account: Account, lease: Lease,
                 restored: RestoredState | Exception | None = None) -> _HandOut:
        account_id = account.account_id
        now = self._clock()
        try:
            if isinstance(restored, Exception):
                raise restored
            if restored is None:
                restored = self._vault.restore(account_id)
        except (shared_errors.NotFoundError, shared_errors.NoUsableVersionError) as exc:
            if account.status is AccountStatus.REMOVING:
                # Nothing to log the device out with: the removal ends here (not a failed restore).
                self._finish_removal_without_state(account, request.connector_id, lease)
            elif isinstance(exc, shared_errors.NoUsableVersionError):
                self._fail(request, account, lease, failure_kind(exc.skipped), tuple(exc.skipped))
            else:
                self._fail(request, account, lease, "no_stored_state", ())
            return _HandOut()
        sealed = self._sealer.seal_restored_bytes(
            request.public_key, account_id=account_id, generation=lease.generation,
            connector_id=request.connector_id, produced_at=now, state_bytes=restored.state_bytes)
        fell_back = bool(restored.skipped)
        outcome = RestoreOutcomeKind.FELL_BACK if fell_back else RestoreOutcomeKind.RESTORED
        record = RestoreOutcome(account_id, outcome, now, request.connector_id, restored.version,
                                failure_kind(restored.skipped) if fell_back else None, len(restored.skipped))
        if fell_back:
            self._alerter.raise_alert(account_id, "fell_back",
                                      f"Account {account_id} restored from older version "
                                      f"{restored.version}; {len(restored.skipped)} newer version(s) unusable.")
        _log.info("account %s: restored version %d for %s%s", account_id, restored.version,
                  request.connector_id, " (fell back)" if fell_back else "")
        return _HandOut(Claim(account_id, lease.generation, ClaimMode.RESTORE, sealed_state=sealed,
                              version=restored.version, fell_back=fell_back, lease_expires_at=lease.expires_at),
                        record)

    def _fail(self, request: SyncRequest, account: Account, lease: Lease, reason: str,
              skipped: tuple[SkippedVersion, ...]) -> None:
        now = self._clock()
        account_id = account.account_id
        self._stores.outcomes.record(RestoreOutcome(
            account_id, RestoreOutcomeKind.FAILED, now, request.connector_id, None, reason, len(skipped)))
        self._stores.leases.release(account_id, request.connector_id, lease.generation, now)
        self._stores.accounts.update(account_id, {
            "status": AccountStatus.RESTORE_FAILED, **serving(False, now), "status_reason": reason,
            "updated_at": now})
        self._alerter.raise_alert(account_id, "restore_failed", f"Account {account_id} cannot be restored: {reason}.")
        _log.error("account %s: restore failed (%s)", account_id, reason)

    def _finish_removal_without_state(self, account: Account, connector_id: str, lease: Lease) -> None:
        """A removing account with no usable stored state cannot be logged out by any connector:
        what is stored goes now (as ``account.removed`` would do), so it is not claimed again."""
        now = self._clock()
        account_id = account.account_id
        self._vault.delete(account_id)
        self._stores.leases.release(account_id, connector_id, lease.generation, now)
        self._alerter.resolve(account_id)
        self._stores.accounts.update(account_id, {"status": AccountStatus.REMOVED, **serving(False, now),
                                                  "updated_at": now})
        _log.warning("account %s: removed without a logout (no usable stored state); unlink the device "
                     "from the phone", account_id)
