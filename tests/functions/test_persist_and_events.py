"""Persisting snapshots (fencing, duplicates, malformed input) and recording connection events."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from functions.errors import MalformedMessageError, StaleMessageError
from functions.model import AccountStatus
from shared.events import (
    AccountRemoved,
    ConnectionState,
    ConnectionUpdate,
    PairingCode,
    PairingFailed,
    PairingQr,
    PairingSuccess,
)
from testkit.functions_world import (
    ALICE,
    T0,
    FakeConnector,
    World,
    registered_state,
    seal_snapshot,
    snapshot_attrs,
    world,
)


def _held(w: World) -> tuple[str, FakeConnector]:
    account_id = w.add()
    connector = FakeConnector("c-1")
    connector.sync(w.services)
    return account_id, connector


def test_snapshot_is_saved_as_a_version_and_a_redelivery_changes_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    sealed = seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1))
    first = w.services.persister.handle(sealed, snapshot_attrs(account_id, 1, "c-1"))
    assert (first.version, first.noop) == (1, False)
    w.clock.advance(5)
    again = w.services.persister.handle(sealed, snapshot_attrs(account_id, 1, "c-1"))
    assert (again.version, again.noop) == (1, True)
    account = w.services.stores.accounts.get(account_id)
    assert account is not None and account.last_version == 1 and account.last_saved_at == T0
    assert w.vault.restore(account_id).state == registered_state(1)


def test_snapshot_from_an_older_generation_is_refused(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _old = _held(w)
    w.clock.advance(31)
    FakeConnector("c-2").sync(w.services)  # lease passes on: generation 2
    sealed = seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1))
    with pytest.raises(StaleMessageError):
        w.services.persister.handle(sealed, snapshot_attrs(account_id, 1, "c-1"))
    assert w.vault_store.get_head(account_id) is None


def test_snapshot_claiming_a_generation_never_granted_is_malformed(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    sealed = seal_snapshot(w.vault, account_id, 9, "c-1", registered_state(1))
    with pytest.raises(MalformedMessageError):
        w.services.persister.handle(sealed, snapshot_attrs(account_id, 9, "c-1"))


@pytest.mark.parametrize("damage", ["garbage", "attrs", "other_account", "truncated"])
def test_unreadable_snapshots_are_malformed(tmp_path: Path, damage: str) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    other = w.add(ALICE, "+40700000009")
    sealed = seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1))
    attrs = snapshot_attrs(account_id, 1, "c-1")
    if damage == "garbage":
        sealed = b"not sealed at all"
    elif damage == "attrs":
        attrs = {**attrs, "generation": "one"}
    elif damage == "other_account":
        attrs = snapshot_attrs(other, 1, "c-1")  # the account is bound into the sealing
    else:
        sealed = sealed[:-5]
    with pytest.raises(MalformedMessageError):
        w.services.persister.handle(sealed, attrs)


def test_pairing_events_move_the_account_to_connected(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    events = w.services.events
    events.handle(PairingCode(account_id, "ABCD1234", T0 + timedelta(minutes=1), "c-1", 1).to_json())
    assert w.services.accounts.get(ALICE, account_id)["pairing"]["code"] == "ABCD1234"
    events.handle(PairingQr(account_id, "2@ref,a,b,c", T0 + timedelta(minutes=1), "c-1", 1).to_json())
    assert w.services.accounts.get(ALICE, account_id)["pairing"]["qr"] == "2@ref,a,b,c"
    events.handle(ConnectionUpdate(account_id, "c-1", 1, T0, ConnectionState.CONNECTING).to_json())
    assert w.services.accounts.get(ALICE, account_id)["status"] == "pairing"
    events.handle(PairingSuccess(account_id, "40700000001:7@s.whatsapp.net", "c-1", 1).to_json())
    view = w.services.accounts.get(ALICE, account_id)
    assert (view["status"], view["linkedJid"], view["pairing"]) == ("connecting", "40700000001:7@s.whatsapp.net",
                                                                    None)
    w.clock.advance(3)
    events.handle(ConnectionUpdate(account_id, "c-1", 1, w.clock.now, ConnectionState.OPEN).to_json())
    view = w.services.accounts.get(ALICE, account_id)
    assert view["status"] == "connected"
    assert view["lastConnectedAt"] == "2026-11-25T12:00:03.000Z"


@pytest.mark.parametrize(("reason", "status"), [("expired", "pairing_expired"), ("rejected", "pairing_failed")])
def test_pairing_failure(tmp_path: Path, reason: str, status: str) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    w.services.events.handle(PairingFailed(account_id, reason, "c-1", 1).to_json())
    assert w.services.accounts.get(ALICE, account_id)["status"] == status
    assert not w.services.stores.accounts.get(account_id).serve  # type: ignore[union-attr]


def test_logged_out_account_needs_pairing_alerts_and_is_taken_back(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, connector = _held(w)
    w.services.events.handle(PairingSuccess(account_id, "40700000001:7@s.whatsapp.net", "c-1", 1).to_json())
    w.services.events.handle(ConnectionUpdate(account_id, "c-1", 1, T0, ConnectionState.NEEDS_PAIRING,
                                              "logged_out", 401).to_json())
    view = w.services.accounts.get(ALICE, account_id)
    assert (view["status"], view["statusReason"]) == ("needs_pairing", "logged_out")
    [(_data, attrs)] = w.alerts_out.published
    assert attrs["kind"] == "logged_out" and attrs["accountId"] == account_id
    assert [a.kind for a in w.services.stores.alerts.open_alerts()] == ["logged_out"]
    assert connector.sync(w.services)["lost"] == [{"accountId": account_id, "reason": "not_served"}]
    # Re-pairing: the account is handed out to pair again under a new generation.
    w.services.accounts.reconnect(ALICE, account_id)
    [claim] = FakeConnector("c-2").sync(w.services)["claimed"]
    assert (claim["mode"], claim["generation"]) == ("pair", 2)


def test_connection_update_from_an_older_generation_is_stale(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    w.services.events.handle(PairingSuccess(account_id, "40700000001:7@s.whatsapp.net", "c-1", 1).to_json())
    w.services.persister.handle(seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1)),
                                snapshot_attrs(account_id, 1, "c-1"))
    w.clock.advance(31)
    [claim] = FakeConnector("c-2").sync(w.services)["claimed"]
    assert (claim["mode"], claim["generation"]) == ("restore", 2)
    with pytest.raises(StaleMessageError):
        w.services.events.handle(ConnectionUpdate(account_id, "c-1", 1, w.clock.now,
                                                  ConnectionState.CLOSED, "connection_lost").to_json())
    assert w.services.accounts.get(ALICE, account_id)["status"] == "connecting"


def test_account_removed_deletes_stored_state_and_lease(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    w.services.persister.handle(seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1)),
                                snapshot_attrs(account_id, 1, "c-1"))
    w.services.accounts.remove(ALICE, account_id)
    w.services.events.handle(AccountRemoved(account_id).to_json())
    assert w.services.stores.accounts.get(account_id).status is AccountStatus.REMOVED  # type: ignore[union-attr]
    assert w.vault_store.get_head(account_id) is None
    assert w.services.stores.leases.get(account_id) is None
    # A late snapshot for the removed account is dropped, not stored again.
    with pytest.raises(StaleMessageError):
        w.services.persister.handle(seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(2)),
                                    snapshot_attrs(account_id, 1, "c-1"))


def test_garbage_and_unknown_accounts_are_rejected_not_retried(tmp_path: Path) -> None:
    w = world(tmp_path)
    with pytest.raises(MalformedMessageError):
        w.services.events.handle(b"{nope")
    with pytest.raises(StaleMessageError):
        w.services.events.handle(AccountRemoved("acc_unknown").to_json())


def test_an_unavailable_kek_is_retried_not_dropped(tmp_path: Path) -> None:
    from shared.errors import KekUnavailableError

    w = world(tmp_path)
    account_id, _ = _held(w)
    sealed = seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1))
    w.sealer._keys._keys.clear()  # forget the cached sealing key, as a fresh instance would
    kek = w.vault.kek

    def unavailable(version: str) -> bytes:
        raise KekUnavailableError(f"secret version {version} cannot be read")

    original = kek.key
    kek.key = unavailable  # type: ignore[method-assign]
    with pytest.raises(Exception) as caught:
        w.services.persister.handle(sealed, snapshot_attrs(account_id, 1, "c-1"))
    assert not isinstance(caught.value, MalformedMessageError | StaleMessageError)
    kek.key = original  # type: ignore[method-assign]
    assert w.services.persister.handle(sealed, snapshot_attrs(account_id, 1, "c-1")).version == 1


def test_an_older_snapshot_redelivered_after_a_newer_one_changes_nothing(tmp_path: Path) -> None:
    """Unordered redelivery: A (older keys) arriving again after B must not become the newest version."""
    w = world(tmp_path)
    account_id, _ = _held(w)
    older = seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1), at=T0)
    newer = seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(2), at=T0 + timedelta(seconds=2))
    attrs = snapshot_attrs(account_id, 1, "c-1")
    assert w.services.persister.handle(older, attrs).version == 1
    assert w.services.persister.handle(newer, attrs).version == 2
    with pytest.raises(StaleMessageError):
        w.services.persister.handle(older, attrs)
    assert w.vault.restore(account_id).state == registered_state(2)
    assert w.services.persister.handle(newer, attrs).noop
    # A new owner's clock is its own: its first snapshot is judged by generation, not by time.
    w.clock.advance(31)
    c2 = FakeConnector("c-2")
    c2.sync(w.services)
    earlier_clock = seal_snapshot(w.vault, account_id, 2, "c-2", registered_state(3), at=T0 - timedelta(hours=1))
    assert w.services.persister.handle(earlier_clock, snapshot_attrs(account_id, 2, "c-2")).version == 3


def test_pairing_events_from_a_connector_that_lost_the_account_are_dropped(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    w.clock.advance(31)
    FakeConnector("c-2").sync(w.services)  # generation 2 pairs now
    events = w.services.events
    events.handle(PairingCode(account_id, "NEWC0DE2", T0 + timedelta(minutes=2), "c-2", 2).to_json())
    for stale in (PairingCode(account_id, "OLDC0DE1", T0 + timedelta(minutes=1), "c-1", 1),
                  PairingQr(account_id, "2@old,a,b,c", T0 + timedelta(minutes=1), "c-1", 1),
                  PairingFailed(account_id, "expired", "c-1", 1),
                  PairingSuccess(account_id, "40700000001:7@s.whatsapp.net", "c-1", 1)):
        with pytest.raises(StaleMessageError):
            events.handle(stale.to_json())
    view = w.services.accounts.get(ALICE, account_id)
    assert (view["status"], view["pairing"]["code"], view["linkedJid"]) == ("pairing", "NEWC0DE2", None)


def test_a_pairing_failure_delivered_after_its_connector_released_the_account_is_recorded(
        tmp_path: Path) -> None:
    """A link by the wrong phone is refused and the account released at once; the pairing.failed can
    arrive after the release. Nobody holds the account since, so the outcome is its holder's to tell."""
    w = world(tmp_path)
    account_id, c1 = _held(w)
    c1.sync(w.services, release=dict(c1.held))
    events = w.services.events
    with pytest.raises(StaleMessageError):  # a QR from the released holder is dead all the same
        events.handle(PairingQr(account_id, "2@late,a,b,c", T0 + timedelta(minutes=1), "c-1", 1).to_json())
    events.handle(PairingFailed(account_id, "wrong_phone", "c-1", 1).to_json())
    view = w.services.accounts.get(ALICE, account_id)
    assert (view["status"], view["statusReason"]) == ("pairing_failed", "wrong_phone")


def test_pairing_success_delivered_after_the_connection_opened_still_records_the_jid(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    w.services.events.handle(ConnectionUpdate(account_id, "c-1", 1, T0, ConnectionState.OPEN).to_json())
    w.services.events.handle(PairingSuccess(account_id, "40700000001:7@s.whatsapp.net", "c-1", 1).to_json())
    view = w.services.accounts.get(ALICE, account_id)
    assert (view["status"], view["linkedJid"]) == ("connected", "40700000001:7@s.whatsapp.net")


def test_account_removed_for_an_account_nobody_is_removing_deletes_nothing(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id, _ = _held(w)
    w.services.persister.handle(seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1)),
                                snapshot_attrs(account_id, 1, "c-1"))
    with pytest.raises(MalformedMessageError):
        w.services.events.handle(AccountRemoved(account_id).to_json())
    assert w.vault.restore(account_id).state == registered_state(1)
    assert w.services.stores.accounts.get(account_id).status is AccountStatus.PAIRING  # type: ignore[union-attr]


@pytest.mark.parametrize("key_id", ["abc", "latest", "999", "0", "1/../2"])
def test_a_snapshot_sealed_to_a_kek_version_that_cannot_exist_is_dropped_not_retried(
        tmp_path: Path, key_id: str) -> None:
    """Issue 16 item 6: a malformed or unknown key id is permanent: MalformedMessageError (acknowledged with a
    log line and counted), with at most one look-up of the named version, never a Pub/Sub retry."""
    from shared import sealing
    from shared.snapshot import Snapshot, snapshot_aad

    w = world(tmp_path)
    account_id, _ = _held(w)
    data = Snapshot(account_id=account_id, generation=1, produced_at=T0, connector_id="c-1",
                    state=registered_state(1)).to_bytes()
    sealed = sealing.seal(data, w.sealer.vault_public_key()[0], key_id, snapshot_aad(account_id))
    looked_up: list[str] = []
    kek = w.vault.kek
    original = kek.key

    def counting(version: str) -> bytes:
        looked_up.append(version)
        return original(version)

    kek.key = counting  # type: ignore[method-assign]
    with pytest.raises(MalformedMessageError, match="does not open"):
        w.services.persister.handle(sealed, snapshot_attrs(account_id, 1, "c-1"))
    assert looked_up in ([], [key_id])
    account = w.services.stores.accounts.get(account_id)
    assert account is not None and account.last_version is None


def test_dropped_messages_are_counted_by_function_and_kind() -> None:
    from functions import http

    before = dict(http.DROPPED)

    def reject() -> None:
        raise MalformedMessageError("bad")

    event = {"message": {"data": "", "attributes": {}, "messageId": "m1"}}
    http.handle_pubsub("persistSnapshot", event, lambda _message: reject())
    http.handle_pubsub("persistSnapshot", event, lambda _message: reject())
    key = ("persistSnapshot", "MalformedMessageError")
    assert http.DROPPED[key] == before.get(key, 0) + 2


def test_pairing_events_without_their_sender_are_refused(tmp_path: Path) -> None:
    """Issue 16 item 1: the fence was skipped when connectorId and generation were both absent (what the
    connector sent), so a late code of a connector that lost the account replaced the new holder's."""
    import json

    w = world(tmp_path)
    account_id, _ = _held(w)
    w.clock.advance(31)
    FakeConnector("c-2").sync(w.services)  # generation 2 pairs now
    w.services.events.handle(PairingCode(account_id, "NEWC0DE2", T0 + timedelta(minutes=2), "c-2", 2).to_json())
    for unsigned in ({"type": "pairing.code", "accountId": account_id, "code": "OLDC0DE1",
                      "expiresAt": "2026-11-25T12:01:00.000Z"},
                     {"type": "pairing.failed", "accountId": account_id, "reason": "expired"}):
        with pytest.raises(MalformedMessageError):
            w.services.events.handle(json.dumps(unsigned).encode())
    with pytest.raises(StaleMessageError):  # same generation, another connector: not the holder's
        w.services.events.handle(PairingFailed(account_id, "expired", "c-1", 2).to_json())
    view = w.services.accounts.get(ALICE, account_id)
    assert (view["status"], view["pairing"]["code"]) == ("pairing", "NEWC0DE2")
