"""Reading the reference system's documents: every updatedAt form, and values that are not times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.errors import StateValidationError
from shared.vault.legacy import legacy_state, parse_legacy_time

MOMENT = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)  # epoch 1_700_000_000


@pytest.mark.parametrize(
    "value",
    [1_700_000_000_000, 1_700_000_000, 1_700_000_000.0, "2023-11-14T22:13:20Z", "2023-11-14T22:13:20",
     {"_seconds": 1_700_000_000, "_nanoseconds": 0}, {"seconds": 1_700_000_000}, MOMENT,
     datetime(2023, 11, 14, 22, 13, 20)],
)
def test_every_form_the_reference_wrote(value: object) -> None:
    assert parse_legacy_time(value) == MOMENT


@pytest.mark.parametrize("value", [None, "yesterday", True, [], {"_seconds": "x"}, {"seconds": True},
                                   10**20, -(10**20), float("inf"), {"_seconds": 10**20}])
def test_unreadable_times_are_none_not_a_crash(value: object) -> None:
    assert parse_legacy_time(value) is None


def test_legacy_creds_in_map_text_and_bytes_forms() -> None:
    from testkit.auth_states import registered_state

    creds = dict(registered_state().creds.as_json())
    from shared.bufferjson import dumps, to_plain

    for form in (creds, to_plain(creds), dumps(creds)):  # Firestore bytes, BufferJSON maps, JSON text
        assert legacy_state(form).creds.as_json() == creds
    for bad in ("{not json", "[1]", {"x": {1, 2}}):
        with pytest.raises(StateValidationError):
            legacy_state(bad)
