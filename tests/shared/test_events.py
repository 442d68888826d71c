"""Event schemas: round trips, strict field checks, forward compatibility, no secrets in repr."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events import (
    MAX_BATCHED_UPDATES,
    AccountRemoved,
    AlertRaised,
    ConnectionState,
    ConnectionUpdate,
    ConnectionUpdates,
    Event,
    InvalidEventError,
    MessageKey,
    MessageReceived,
    PairingCode,
    PairingFailed,
    PairingQr,
    PairingSuccess,
    SnapshotAttributes,
    format_time,
    parse_event,
    parse_time,
)

AT = datetime(2026, 11, 25, 12, 0, 0, 123000, tzinfo=UTC)

SAMPLES = [
    ConnectionUpdate("a1", "c-1", 3, AT, ConnectionState.CLOSED, "logged_out", 401, 2),
    ConnectionUpdate("a1", "c-1", 0, AT, ConnectionState.OPEN),
    PairingCode("a1", "ABCD1234", AT, "c-1", 1),
    PairingQr("a1", "2@ref,noise,identity,adv", AT, "c-1", 1),
    PairingSuccess("a1", "40700000001:5@s.whatsapp.net", "c-1", 1),
    PairingFailed("a1", "expired", "c-1", 1),
    MessageReceived("a1", MessageKey("40700000002@s.whatsapp.net", False, "3EB0ABC"),
                    {"conversation": "secret-node"}, "40700000002@s.whatsapp.net", "40700000002@s.whatsapp.net",
                    1_764_072_000, "text", "secret-node", "Bob"),
    AccountRemoved("a1"),
    AlertRaised("al-1", "a1", "logged_out", "Account a1 was logged out from the phone.", AT),
    PairingCode("a1", "ABCD1234", AT, "c-1", 4),
    PairingQr("a1", "2@ref,noise,identity,adv", AT, "c-1", 4),
    PairingSuccess("a1", "40700000001:5@s.whatsapp.net", "c-1", 4),
    PairingFailed("a1", "rejected", "c-1", 0),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: e.TYPE)
def test_round_trip_through_json(event: Event) -> None:
    data = event.to_json()
    assert parse_event(data) == event
    assert type(event).from_json(data) == event
    obj = json.loads(data)
    assert obj["type"] == event.TYPE
    assert obj["accountId"] == "a1"


def test_connection_update_wire_shape_is_camel_case_with_utc_millis() -> None:
    obj = json.loads(SAMPLES[0].to_json())
    assert obj == {
        "type": "connection.update", "accountId": "a1", "connectorId": "c-1", "generation": 3,
        "at": "2026-11-25T12:00:00.123Z", "state": "closed", "reason": "logged_out", "code": 401,
        "attempt": 2,
    }


def test_message_attributes_carry_message_id_and_type_travels_as_message_type() -> None:
    msg = SAMPLES[6]
    assert msg.attributes() == {"type": "message.received", "accountId": "a1", "messageId": "3EB0ABC"}
    obj = json.loads(msg.to_json())
    assert obj["message"] == {"conversation": "secret-node"}
    assert obj["messageType"] == "text"
    assert msg.DEFAULT_TOPIC == "messages"
    assert PairingCode.DEFAULT_TOPIC == "connection-events"


def test_secrets_never_in_repr() -> None:
    assert "secret-node" not in repr(SAMPLES[6])
    assert "ABCD1234" not in repr(SAMPLES[2])
    assert "noise" not in repr(SAMPLES[3])


def test_unknown_keys_are_ignored_for_rolling_deploys() -> None:
    obj = json.loads(AccountRemoved("a1").to_json())
    obj["addedLater"] = {"x": 1}
    assert parse_event(json.dumps(obj)) == AccountRemoved("a1")


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        ({"generation": "3"}, "generation"),
        ({"generation": True}, "generation"),
        ({"generation": -1}, "generation"),
        ({"state": "dancing"}, "state"),
        ({"at": "2026-11-25T12:00:00"}, "at"),
        ({"at": "yesterday"}, "at"),
        ({"accountId": "a/b"}, "accountId"),
        ({"accountId": ""}, "accountId"),
        ({"reason": "Logged Out"}, "reason"),
        ({"code": 1.5}, "code"),
    ],
)
def test_connection_update_rejects_malformed_fields(mutation: dict[str, object], field: str) -> None:
    obj = json.loads(SAMPLES[0].to_json())
    obj.update(mutation)
    with pytest.raises(InvalidEventError, match=field):
        parse_event(json.dumps(obj))


@pytest.mark.parametrize("key", ["accountId", "connectorId", "generation", "at", "state"])
def test_missing_required_field_is_named(key: str) -> None:
    obj = json.loads(SAMPLES[0].to_json())
    del obj[key]
    with pytest.raises(InvalidEventError, match=key):
        parse_event(json.dumps(obj))


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"[1,2]", b'{"type":"nope","accountId":"a1"}', b'{"accountId":"a1"}',
             b"\xff\xfe"],
)
def test_garbage_is_invalid_event(data: bytes) -> None:
    with pytest.raises(InvalidEventError):
        parse_event(data)


def test_from_json_checks_the_type_tag() -> None:
    with pytest.raises(InvalidEventError, match=r"pairing\.code"):
        PairingCode.from_json(AccountRemoved("a1").to_json())


def test_a_message_that_is_not_an_object_is_refused() -> None:
    obj = json.loads(SAMPLES[6].to_json())
    obj["message"] = "***"
    with pytest.raises(InvalidEventError, match="message"):
        parse_event(json.dumps(obj))


def test_constructor_refuses_bad_values() -> None:
    with pytest.raises(InvalidEventError):
        PairingCode("a1", "abc", AT, "c-1", 1)
    with pytest.raises(InvalidEventError):
        ConnectionUpdate("a1", "c-1", 0, datetime(2026, 1, 1), ConnectionState.OPEN)
    with pytest.raises(InvalidEventError):
        PairingSuccess("a1", "no-at-sign", "c-1", 1)


def test_time_helpers_normalise_to_utc() -> None:
    plus2 = datetime(2026, 11, 25, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(plus2) == "2026-11-25T12:00:00.000Z"
    assert parse_time("2026-11-25T14:00:00+02:00") == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_snapshot_attributes_round_trip_and_validation() -> None:
    attrs = SnapshotAttributes("a1", 7, "c-1").to_attributes()
    assert attrs == {"accountId": "a1", "generation": "7", "connectorId": "c-1",
                     "schema": "keeper.snapshot.v1"}
    assert SnapshotAttributes.from_attributes(attrs) == SnapshotAttributes("a1", 7, "c-1")
    for bad in ({**attrs, "generation": "-1"}, {**attrs, "generation": "x"},
                {**attrs, "schema": "other"}, {k: v for k, v in attrs.items() if k != "accountId"}):
        with pytest.raises(InvalidEventError):
            SnapshotAttributes.from_attributes(bad)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_parse_event_never_raises_anything_but_invalid_event(data: bytes) -> None:
    with contextlib.suppress(InvalidEventError):
        parse_event(data)


@given(st.dictionaries(st.sampled_from(["type", "accountId", "connectorId", "generation", "at", "state",
                                        "reason", "code", "attempt", "jid", "qr", "expiresAt"]),
                       st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.floats()))
def test_parse_event_on_arbitrary_objects(obj: dict[str, object]) -> None:
    obj.setdefault("type", "connection.update")
    try:
        event = parse_event(json.dumps(obj))
    except InvalidEventError:
        return
    assert parse_event(event.to_json()) == event


def test_pairing_events_always_name_their_sender() -> None:
    """Issue 16 item 1: connectorId and generation are required; an event without them does not parse."""
    with_sender = json.loads(PairingSuccess("a1", "1@s.whatsapp.net", "c-1", 4).to_json())
    assert (with_sender["connectorId"], with_sender["generation"]) == ("c-1", 4)
    old_wire = b'{"type":"pairing.code","accountId":"a1","code":"ABCD1234","expiresAt":"2026-11-25T12:00:00Z"}'
    with pytest.raises(InvalidEventError):
        parse_event(old_wire)
    for bad in ({}, {"connectorId": "c-1"}, {"generation": 4}, {"connectorId": "c 1", "generation": 4},
                {"connectorId": "c-1", "generation": -1}, {"connectorId": "c-1", "generation": True},
                {"connectorId": None, "generation": None}):
        with pytest.raises(InvalidEventError):
            parse_event(json.dumps({"type": "pairing.failed", "accountId": "a1", "reason": "expired", **bad}))


def test_a_batch_of_connection_updates_round_trips_in_order_and_names_its_connector() -> None:
    first = ConnectionUpdate("a1", "c-1", 3, AT, ConnectionState.CONNECTING)
    second = ConnectionUpdate("a2", "c-1", 1, AT, ConnectionState.OPEN)
    third = ConnectionUpdate("a1", "c-1", 3, AT + timedelta(seconds=1), ConnectionState.OPEN)
    batch = ConnectionUpdates("c-1", (first, second, third))
    data = batch.to_json()
    assert parse_event(data) == batch == ConnectionUpdates.from_json(data)
    assert batch.accounts == ("a1", "a2")
    assert batch.attributes() == {"type": "connection.updates", "connectorId": "c-1"}
    assert [u["accountId"] for u in json.loads(data)["updates"]] == ["a1", "a2", "a1"]


@pytest.mark.parametrize("updates", [
    [],
    ["not an object"],
    [{"type": "connection.update", "accountId": "a1"}],
    [ConnectionUpdate("a1", "c-2", 0, AT, ConnectionState.OPEN).to_dict()],  # another connector's
    [ConnectionUpdate("a1", "c-1", 0, AT, ConnectionState.OPEN).to_dict()] * (MAX_BATCHED_UPDATES + 1),
])
def test_a_malformed_batch_is_refused_whole(updates: list[object]) -> None:
    with pytest.raises(InvalidEventError):
        parse_event(json.dumps({"type": "connection.updates", "connectorId": "c-1", "updates": updates}))
