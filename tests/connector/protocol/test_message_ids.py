from __future__ import annotations

import base64
import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from connector.protocol.binary import Jid
from connector.protocol.message_ids import new_message_id, participant_hash
from testkit.protocol.seeded import SeededRandom

ID_SHAPE = re.compile(r"^3EB0[0-9A-F]{18}$")


def test_message_id_is_the_documented_hash() -> None:
    random16 = bytes(range(16))
    expected_input = (1764800000).to_bytes(8, "big") + b"4915550001@c.us" + random16
    expected = "3EB0" + hashlib.sha256(expected_input).hexdigest()[:18].upper()
    assert new_message_id(1764800000, "4915550001", lambda n: random16[:n]) == expected


def test_message_id_without_a_user_leaves_that_part_out() -> None:
    random16 = b"\x07" * 16
    expected = "3EB0" + hashlib.sha256((5).to_bytes(8, "big") + random16).hexdigest()[:18].upper()
    assert new_message_id(5, None, lambda n: random16[:n]) == expected


@given(st.integers(0, 2**40), st.one_of(st.none(), st.from_regex(r"[0-9]{6,15}", fullmatch=True)))
def test_message_ids_have_whatsapps_shape(now_s: int, user: str | None) -> None:
    assert ID_SHAPE.match(new_message_id(now_s, user, SeededRandom(str(now_s))))


def test_message_ids_differ_with_the_randomness() -> None:
    rand = SeededRandom("ids")
    ids = {new_message_id(1764800000, "4915550001", rand) for _ in range(200)}
    assert len(ids) == 200


def test_phash_follows_whatsmeow() -> None:
    devices = [Jid.parse("4915550002:3@s.whatsapp.net"), Jid.parse("4915550001@s.whatsapp.net"),
               Jid.parse("12345:1@lid")]
    joined = "12345.0:1@lid" + "4915550001.0:0@s.whatsapp.net" + "4915550002.0:3@s.whatsapp.net"
    expected = "2:" + base64.b64encode(hashlib.sha256(joined.encode()).digest()[:6]).decode()
    assert participant_hash(devices) == expected
    assert len(expected) == 10 and not expected.endswith("=")


@given(st.lists(st.tuples(st.from_regex(r"[0-9]{5,12}", fullmatch=True), st.integers(0, 99)), max_size=12))
def test_phash_ignores_order(pairs: list[tuple[str, int]]) -> None:
    jids = [Jid(user=user, server="s.whatsapp.net", device=device or None) for user, device in pairs]
    assert participant_hash(jids) == participant_hash(list(reversed(jids)))
    assert participant_hash(jids).startswith("2:")
