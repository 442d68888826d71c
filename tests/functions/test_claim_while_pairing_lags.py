"""connectorSync when an account's status still says pairing but its linked state is already stored.

The pair-success snapshot (``session-snapshots``) and the ``pairing.success`` event
(``connection-events``) travel on different topics; after an outage or a restart the snapshot can be
saved while the event still waits. A claim in that window must restore the linked state: pairing
again would orphan the linked device and ask the user to re-pair (issue 7).
"""

from __future__ import annotations

from pathlib import Path

from functions.model import AccountStatus
from shared.authstate import AuthState
from testkit.functions_world import ALICE, FakeConnector, World, registered_state, seal_snapshot, snapshot_attrs, world


def _paired_but_event_not_recorded(w: World, state: AuthState) -> str:
    """Generation 1 pairs and its snapshot is persisted; the connector then goes away (lease released)
    before any connection event was recorded, so the account still says pairing."""
    account_id = w.add(ALICE, "+40700000001", "code")
    first = FakeConnector("c-1")
    first.sync(w.services)
    w.clock.advance(2)
    sealed = seal_snapshot(w.vault, account_id, 1, "c-1", state, at=w.clock.now)
    w.services.persister.handle(sealed, snapshot_attrs(account_id, 1, "c-1"))
    first.sync(w.services, release=dict(first.held))
    account = w.services.stores.accounts.get(account_id)
    assert account is not None and account.status is AccountStatus.PAIRING
    return account_id


def test_a_pairing_account_with_a_linked_state_saved_is_restored_not_paired_again(tmp_path: Path) -> None:
    w = world(tmp_path)
    linked = registered_state(seed=4)
    account_id = _paired_but_event_not_recorded(w, linked)
    second = FakeConnector("c-2")
    [claim] = second.sync(w.services)["claimed"]
    assert (claim["mode"], claim["generation"], claim["version"], claim["pairing"]) == ("restore", 2, 1, None)
    assert second.open_claim(claim).state == linked
    account = w.services.stores.accounts.get(account_id)
    assert account is not None
    assert account.status is AccountStatus.CONNECTING
    assert linked.creds.me is not None and account.linked_jid == linked.creds.me.id


def test_a_state_saved_mid_pairing_but_not_linked_still_pairs(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _paired_but_event_not_recorded(w, AuthState.generate())
    [claim] = FakeConnector("c-2").sync(w.services)["claimed"]
    assert (claim["mode"], claim["sealedState"]) == ("pair", None)
    account = w.services.stores.accounts.get(account_id)
    assert account is not None and account.status is AccountStatus.PAIRING


def test_a_new_pairing_after_a_logout_does_not_hand_out_the_unlinked_credentials(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = _paired_but_event_not_recorded(w, registered_state(seed=5))
    w.services.stores.accounts.update(account_id, {"status": AccountStatus.NEEDS_PAIRING})
    w.clock.advance(60)
    w.services.accounts.reconnect(ALICE, account_id)  # pair anew; the old versions stay stored
    [claim] = FakeConnector("c-2").sync(w.services)["claimed"]
    assert (claim["mode"], claim["sealedState"]) == ("pair", None)


def test_a_state_linked_by_another_phone_is_never_restored(tmp_path: Path) -> None:
    """A QR scanned by the wrong phone: its connector saved the link, refused it and released the
    account before its pairing.failed was recorded. The next claim pairs again; those credentials are
    another number's and already unlinked."""
    w = world(tmp_path)
    other = registered_state(seed=6)
    other.creds = other.creds.updated({"me": {"id": "40799999999:3@s.whatsapp.net", "name": "Bob"}})
    account_id = _paired_but_event_not_recorded(w, other)
    [claim] = FakeConnector("c-2").sync(w.services)["claimed"]
    assert (claim["mode"], claim["sealedState"]) == ("pair", None)
    account = w.services.stores.accounts.get(account_id)
    assert account is not None and (account.status, account.linked_jid) == (AccountStatus.PAIRING, None)
