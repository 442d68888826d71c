"""Open findings of SECURITY.md, written as the behaviour they should have.

Each test is a strict xfail: it fails today for the reason given, and turns CI red the day the
behaviour is fixed, so that the marker (and the finding in SECURITY.md) are removed with the fix.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import pytest

from functions.errors import StaleMessageError
from tests.functions.support import T0, FakeConnector, registered_state, seal_snapshot, snapshot_attrs, world


@pytest.mark.xfail(strict=True, reason="SECURITY.md finding 1: persist fences generations only, not order "
                                       "within one generation")
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
