from __future__ import annotations

from connector.protocol import prekeys
from shared.authstate import PRE_KEY, AuthState
from shared.authstore import MemoryAuthStore, StateChange
from testkit.protocol.seeded import SeededRandom


def test_keys_are_stored_before_upload_and_reused_until_uploaded() -> None:
    changes: list[StateChange] = []
    store = MemoryAuthStore(AuthState.generate(SeededRandom("pk")), changes.append)
    first = prekeys.prepare_pre_keys(store, 5, SeededRandom("a"))
    assert [key_id for key_id, _ in first.keys] == [1, 2, 3, 4, 5]
    assert {c.categories for c in changes} >= {frozenset({PRE_KEY}), frozenset({"creds"})}
    again = prekeys.prepare_pre_keys(store, 5, SeededRandom("b"))  # upload failed: same keys, none new
    assert again == first
    prekeys.mark_uploaded(store, first)
    creds = store.get_creds()
    assert (creds.first_unuploaded_pre_key_id, creds.next_pre_key_id) == (6, 6)
    more = prekeys.prepare_pre_keys(store, 3, SeededRandom("c"))
    assert [key_id for key_id, _ in more.keys] == [6, 7, 8]
    assert len(store.get_keys(PRE_KEY, [str(i) for i in range(1, 9)])) == 8


def test_upload_stanza_shape() -> None:
    store = MemoryAuthStore(AuthState.generate(SeededRandom("pk2")))
    batch = prekeys.prepare_pre_keys(store, 2, SeededRandom("d"))
    node = prekeys.upload_stanza(store, batch)
    assert (node.attrs["xmlns"], node.attrs["type"]) == ("encrypt", "set")
    assert [child.tag for child in node.children()] == ["registration", "type", "identity", "list", "skey"]
    assert node.child_bytes("registration") == store.get_creds().registration_id.to_bytes(4, "big")
    assert node.child_bytes("type") == b"\x05"
    keys = node.child("list").children("key")  # type: ignore[union-attr]
    assert [k.child_bytes("id") for k in keys] == [b"\x00\x00\x01", b"\x00\x00\x02"]
    assert node.child_bytes("skey", "id") == store.get_creds().signed_pre_key.key_id.to_bytes(3, "big")
