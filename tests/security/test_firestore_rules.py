"""firestore.rules on the real Firestore emulator: who can read and write what, for every collection.

The module loads the current firestore.rules into its own emulator project, seeds one document per
collection (as the Admin SDK, rules bypassed), then calls as: nobody, the account's owner, another user,
an admin (custom claim `admin: true`) and a user whose `admin` claim is the string "true".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.security.firestore_rest import (
    FirestoreRest,
    Principal,
    decode_value,
    returned_documents,
    unsigned_id_token,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = REPO_ROOT / "firestore.rules"
PROJECT = "demo-keeper-rules"

ANON = Principal("anonymous", None)
ALICE = Principal("alice", unsigned_id_token(PROJECT, "alice"))
BOB = Principal("bob", unsigned_id_token(PROJECT, "bob"))
ADMIN = Principal("admin", unsigned_id_token(PROJECT, "root", admin=True))
FAKE_ADMIN = Principal("string-admin-claim", unsigned_id_token(PROJECT, "mallory", admin="true"))
PRINCIPALS = [ANON, ALICE, BOB, ADMIN, FAKE_ADMIN]

VERSION = "0000000001"
BOB_JID = "40711111111@s.whatsapp.net"

# path -> (seeded data, who may read it). Every collection in docs/ARCHITECTURE.md, plus a subcollection
# under an account and a collection nobody declared, which must be closed by default.
DOCUMENTS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "accounts/acc-alice": (
        {"ownerUid": "alice", "phoneNumber": "+40700000001", "status": "connected", "desired": "active"},
        {"alice", "admin"},
    ),
    "accounts/acc-bob": ({"ownerUid": "bob", "phoneNumber": "+40700000002", "status": "pairing"}, {"bob", "admin"}),
    "accounts/acc-orphan": ({"status": "removed"}, {"admin"}),
    "accounts/acc-alice/notes/n1": ({"ownerUid": "alice", "text": "internal"}, set()),
    # The message store: the owner reads messages and chats; nobody reads the outbox; an account with no
    # owner opens its messages to nobody (the admin claim does not open message content).
    "accounts/acc-alice/messages/3EB0A1": (
        {"chat": BOB_JID, "sender": BOB_JID, "fromMe": False, "type": "text", "text": "hello alice",
         "message": {"conversation": "hello alice"}, "status": None}, {"alice"}),
    f"accounts/acc-alice/chats/{BOB_JID}": ({"chat": BOB_JID, "unreadCount": 1}, {"alice"}),
    "accounts/acc-alice/outbox/3EB0A2": ({"accountId": "acc-alice", "send": {"text": "pending"}}, set()),
    "accounts/acc-bob/messages/3EB0B1": ({"chat": BOB_JID, "text": "bob's", "ownerUid": "alice"}, {"bob"}),
    "accounts/acc-orphan/messages/3EB0C1": ({"chat": BOB_JID, "text": "orphaned", "ownerUid": "alice"}, set()),
    "whatsapp_sessions/acc-alice": ({"ownerUid": "alice", "latestVersion": 1, "generation": 3}, set()),
    f"whatsapp_sessions/acc-alice/versions/{VERSION}": (
        {"ownerUid": "alice", "keyId": "1", "wrappedKey": b"\x01" * 40, "ciphertext": b"\x02" * 64},
        set(),
    ),
    f"whatsapp_sessions/acc-alice/versions/{VERSION}/chunks/0": ({"ownerUid": "alice", "data": b"\x03" * 64}, set()),
    "leases/acc-alice": ({"ownerUid": "alice", "connectorId": "c-1", "generation": 3}, set()),
    "connectors/c-1": ({"capacity": 1000, "accounts": ["acc-alice"]}, set()),
    "alerts/al-1": ({"kind": "device_removed", "accountId": "acc-alice", "ownerUid": "alice", "open": True}, set()),
    "restore_outcomes/r-1": ({"accountId": "acc-alice", "ownerUid": "alice", "outcome": "restored"}, set()),
    "phone_numbers/+40700000001": ({"accountId": "acc-alice"}, set()),
    "account_owners/alice": ({"lastAccountId": "acc-alice"}, set()),
    "health/summary": ({"accounts": 2, "connected": 1}, {"admin"}),
    "health/other": ({"accounts": 2}, set()),
    "undeclared/x": ({"ownerUid": "alice"}, set()),
}

# Collections a client may list with no filter: the admin lists accounts; nothing else is listable.
LISTABLE: dict[str, set[str]] = {
    "accounts": {"admin"},
    "accounts/acc-alice/notes": set(),
    "accounts/acc-alice/messages": {"alice"},
    "accounts/acc-alice/chats": {"alice"},
    "accounts/acc-alice/outbox": set(),
    "accounts/acc-bob/messages": {"bob"},
    "accounts/acc-orphan/messages": set(),
    "whatsapp_sessions": set(),
    "whatsapp_sessions/acc-alice/versions": set(),
    f"whatsapp_sessions/acc-alice/versions/{VERSION}/chunks": set(),
    "leases": set(),
    "connectors": set(),
    "alerts": set(),
    "restore_outcomes": set(),
    "phone_numbers": set(),
    "account_owners": set(),
    "health": set(),
    "undeclared": set(),
}


@pytest.fixture(scope="module")
def rest(firestore_emulator: str) -> Iterator[FirestoreRest]:
    client = FirestoreRest(host=firestore_emulator, project=PROJECT)
    client.load_rules(RULES_FILE)
    client.clear()
    for path, (data, _) in DOCUMENTS.items():
        client.seed(path, data)
    yield client
    client.clear()


def _assert_unchanged(rest: FirestoreRest) -> None:
    for path, (data, _) in DOCUMENTS.items():
        assert rest.read_as_admin_sdk(path) == data, f"{path} changed"


@pytest.mark.parametrize("who", PRINCIPALS, ids=lambda p: p.name)
@pytest.mark.parametrize("path", list(DOCUMENTS))
def test_get(rest: FirestoreRest, path: str, who: Principal) -> None:
    data, readers = DOCUMENTS[path]
    response = rest.get(who, path)
    if who.name in readers:
        assert response.status_code == 200, response.text
        fields = response.json()["fields"]
        assert {k: decode_value(v) for k, v in fields.items()} == data
    else:
        assert response.status_code == 403, f"{who.name} read {path}: {response.text[:200]}"
        assert "ownerUid" not in response.text


@pytest.mark.parametrize("who", PRINCIPALS, ids=lambda p: p.name)
@pytest.mark.parametrize("collection", list(LISTABLE))
def test_list_without_filter(rest: FirestoreRest, collection: str, who: Principal) -> None:
    response = rest.list(who, collection)
    if who.name in LISTABLE[collection]:
        assert response.status_code == 200, response.text
        assert response.json()["documents"]
    else:
        assert response.status_code == 403, f"{who.name} listed {collection}: {response.text[:200]}"


def test_owner_queries_their_own_accounts(rest: FirestoreRest) -> None:
    response = rest.query(ALICE, "", "accounts", where={"ownerUid": "alice"})
    assert response.status_code == 200, response.text
    assert returned_documents(response) == ["accounts/acc-alice"]


@pytest.mark.parametrize(
    ("who", "where"),
    [
        (ALICE, {"ownerUid": "bob"}),
        (ALICE, None),
        (ALICE, {"status": "connected"}),
        (ANON, {"ownerUid": "alice"}),
        (BOB, {"ownerUid": "alice"}),
        (FAKE_ADMIN, None),
    ],
    ids=["owner-asks-other", "owner-no-filter", "owner-other-field", "anonymous", "other-user", "string-admin"],
)
def test_account_queries_beyond_own_are_denied(
    rest: FirestoreRest, who: Principal, where: dict[str, Any] | None
) -> None:
    response = rest.query(who, "", "accounts", where=where)
    assert response.status_code == 403, response.text


def test_owner_queries_a_chat_of_their_account(rest: FirestoreRest) -> None:
    response = rest.query(ALICE, "accounts/acc-alice", "messages", where={"chat": BOB_JID})
    assert response.status_code == 200, response.text
    assert returned_documents(response) == ["accounts/acc-alice/messages/3EB0A1"]
    for who in (BOB, ADMIN, ANON):
        assert rest.query(who, "accounts/acc-alice", "messages", where={"chat": BOB_JID}).status_code == 403


def test_admin_queries_every_account(rest: FirestoreRest) -> None:
    response = rest.query(ADMIN, "", "accounts")
    assert response.status_code == 200, response.text
    assert sorted(returned_documents(response)) == ["accounts/acc-alice", "accounts/acc-bob", "accounts/acc-orphan"]


@pytest.mark.parametrize("who", PRINCIPALS, ids=lambda p: p.name)
@pytest.mark.parametrize("collection_id", ["versions", "chunks", "notes", "accounts", "leases", "messages",
                                           "chats", "outbox"])
def test_collection_group_queries_filtered_by_owner_are_denied(
    rest: FirestoreRest, collection_id: str, who: Principal
) -> None:
    # Vault documents carry no ownerUid in production; the seeded ones do, to prove that a matching
    # ownerUid still opens nothing outside accounts/. A collection-group query on accounts is not a
    # path the rules open either (they match /accounts/{id} only at the root).
    response = rest.query(who, "", collection_id, where={"ownerUid": "alice"}, all_descendants=True)
    assert response.status_code == 403, f"{who.name} group-queried {collection_id}: {response.text[:200]}"


@pytest.mark.parametrize("who", PRINCIPALS, ids=lambda p: p.name)
@pytest.mark.parametrize("path", list(DOCUMENTS))
def test_update_and_delete_are_denied(rest: FirestoreRest, path: str, who: Principal) -> None:
    assert rest.update(who, path, {"ownerUid": who.name, "status": "hijacked"}).status_code == 403
    assert rest.delete(who, path).status_code == 403
    _assert_unchanged(rest)


@pytest.mark.parametrize("who", PRINCIPALS, ids=lambda p: p.name)
@pytest.mark.parametrize("collection", list(LISTABLE))
def test_create_is_denied(rest: FirestoreRest, collection: str, who: Principal) -> None:
    path = f"{collection}/new-by-{who.name}"
    uid = "root" if who is ADMIN else who.name
    response = rest.create(who, path, {"ownerUid": uid, "status": "connected", "ciphertext": b"\x00" * 8})
    assert response.status_code == 403, f"{who.name} created {path}: {response.text[:200]}"
    assert rest.read_as_admin_sdk(path) is None


def test_loaded_rules_take_effect_per_project(rest: FirestoreRest, tmp_path: Path) -> None:
    # Guards the fixture: the denials above prove something only if load_rules really replaces the rule
    # set of this project (and not of others). An open rule set loaded into a second project opens it
    # there and leaves this project closed.
    open_rules = tmp_path / "open.rules"
    open_rules.write_text(
        "rules_version = '2';\nservice cloud.firestore {\n  match /databases/{db}/documents {\n"
        "    match /{document=**} { allow read: if true; }\n  }\n}\n"
    )
    other = FirestoreRest(host=rest.host, project=f"{PROJECT}-open")
    other.load_rules(open_rules)
    other.clear()
    other.seed("leases/acc-alice", {"generation": 1})
    assert other.get(ANON, "leases/acc-alice").status_code == 200
    assert rest.get(ANON, "leases/acc-alice").status_code == 403
    other.clear()


def _collections_in_code() -> set[str]:
    """Names passed to `.collection(...)` in the Firestore stores (literal or module constant)."""
    import ast
    import importlib

    found: set[str] = set()
    for module_name in ("functions.firestore_stores", "functions.message_firestore", "shared.vault.firestore_store"):
        module = importlib.import_module(module_name)
        tree = ast.parse(Path(str(module.__file__)).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "collection" and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
                elif isinstance(arg, ast.Name) and isinstance(getattr(module, arg.id, None), str):
                    found.add(getattr(module, arg.id))
    from shared.vault.firestore_store import SESSIONS

    return found | {SESSIONS}  # the vault store takes its root collection as a parameter, this by default


def test_every_collection_the_code_uses_has_rules_cases() -> None:
    # A collection added to the code without cases here would be closed by the catch-all rule, but
    # nobody would have decided who may read it: make that decision visible.
    in_code = _collections_in_code()
    assert {"accounts", "leases", "whatsapp_sessions", "versions", "chunks", "health"} <= in_code
    covered = {segment for path in DOCUMENTS for segment in path.split("/")[0::2]}
    assert in_code <= covered, f"no rules cases for {sorted(in_code - covered)}"
