"""Findings of SECURITY.md, written as the behaviour they should have.

A finding still open is a strict xfail (it turns CI red the day it is fixed, so the marker and the
finding's status change together); a fixed one is a plain test that keeps it fixed.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import pytest

from functions.errors import StaleMessageError
from shared.errors import OutOfOrderSnapshotError
from testkit.functions_world import T0, FakeConnector, registered_state, seal_snapshot, snapshot_attrs, world


def test_a_late_older_snapshot_of_the_same_generation_does_not_replace_a_newer_one(tmp_path: Path) -> None:
    w = world(tmp_path)
    account_id = w.add()
    FakeConnector("c-1").sync(w.services)
    older = seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(1), at=T0)
    newer = seal_snapshot(w.vault, account_id, 1, "c-1", registered_state(2), at=T0 + timedelta(seconds=10))
    attrs = snapshot_attrs(account_id, 1, "c-1")

    w.services.persister.handle(newer, attrs)
    w.clock.advance(30)
    # Eventarc push keeps no publish order, and a retried delivery arrives after later ones.
    with contextlib.suppress(StaleMessageError):
        w.services.persister.handle(older, attrs)

    assert w.vault.restore(account_id).state == registered_state(2)


def test_late_older_snapshots_are_refused_inside_the_vault_commit(tmp_path: Path) -> None:
    """The functions' own check reads the account before saving; two deliveries in flight at once both
    pass it. The vault refuses the older one again inside its atomic commit (finding 1)."""
    w = world(tmp_path)
    account_id = w.add()
    FakeConnector("c-1").sync(w.services)
    w.vault.save(account_id, registered_state(2), 1, T0 + timedelta(seconds=10))
    with pytest.raises(OutOfOrderSnapshotError):
        w.vault.save(account_id, registered_state(1), 1, T0)
    assert w.vault.restore(account_id).state == registered_state(2)
