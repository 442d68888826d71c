"""An imported session is served: `keeper vault import-baileys --owner` and `migrate-legacy --owner` create the
account record, and the next connectorSync claims it in restore mode with the imported keys (no re-pairing).
On the emulators, through the functions over HTTP, with the connector's own sync client and codec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connector.snapshot_codec import SnapshotCodec
from connector.sync import HttpSyncClient
from keeper.cli import main
from shared.baileys import read_folder
from shared.bufferjson import to_plain
from shared.connector_sync import ClaimMode, SyncRequest
from shared.snapshot import canonical_state_bytes
from testkit.auth_states import registered_state
from tests.functions.conftest import CONNECTOR_TOKEN, Gateway
from tests.shared.baileys_fixture import write_baileys_folder

pytestmark = pytest.mark.integration


@pytest.fixture
def cli_env(functions_gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """The CLI on the gateway's project and KEK, as an operator runs it beside a deployment."""
    for name in ("KEEPER_PROJECT", "FIRESTORE_EMULATOR_HOST", "KEEPER_KEK_FILE", "KEEPER_HOME"):
        monkeypatch.setenv(name, functions_gateway.env[name])
    monkeypatch.setenv("KEEPER_KEK_PROVIDER", "local")
    return functions_gateway


async def _claim(gw: Gateway, connector_id: str, account_id: str) -> Any:
    codec = SnapshotCodec(connector_id)
    client = HttpSyncClient(gw.base, CONNECTOR_TOKEN)
    try:
        answer = await client.sync(SyncRequest(connector_id, 50, codec.public_key))
    finally:
        await client.close()
    (claim,) = [c for c in answer.claimed if c.account_id == account_id]
    assert claim.mode is ClaimMode.RESTORE and claim.sealed_state is not None
    return claim, codec.open_restored(account_id, claim.generation, claim.sealed_state)


async def test_an_imported_baileys_folder_is_claimed_in_restore_mode(
        cli_env: Gateway, firestore_client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_baileys_folder(tmp_path / "auth")
    assert main(["vault", "import-baileys", str(tmp_path / "auth"), "--account", "imp-1", "--owner", "alice"]) == 0
    assert "account created for owner alice (+40700000001)" in capsys.readouterr().out
    account = firestore_client.collection("accounts").document("imp-1").get().to_dict()
    assert (account["ownerUid"], account["status"], account["serve"], account["linkedJid"]) == (
        "alice", "connecting", True, "40700000001:12@s.whatsapp.net")
    listed = cli_env.call("listAccounts", {}, "alice").json()["result"]["accounts"]
    assert [a["accountId"] for a in listed] == ["imp-1"]

    _, state = await _claim(cli_env, "import-c1", "imp-1")
    assert canonical_state_bytes(state) == canonical_state_bytes(read_folder(tmp_path / "auth"))

    # the same import again changes nothing; another owner, or a folder that is not linked, is refused
    assert main(["vault", "import-baileys", str(tmp_path / "auth"), "--account", "imp-1", "--owner", "alice"]) == 0
    assert "account unchanged" in capsys.readouterr().out
    assert main(["vault", "import-baileys", str(tmp_path / "auth"), "--account", "imp-1", "--owner", "bob"]) == 1
    assert "another owner" in capsys.readouterr().err
    assert main(["vault", "import-baileys", str(tmp_path / "auth"), "--account", "imp-2", "--owner", "bob"]) == 1
    assert "already served by account imp-1" in capsys.readouterr().err  # one device, one account


async def test_migrated_legacy_documents_are_served(
        cli_env: Gateway, firestore_client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    state = registered_state()
    firestore_client.collection("whatsapp_sessions").document("legacy-1").set(
        {"accountId": "legacy-1", "creds": to_plain(dict(state.creds.as_json())), "updatedAt": 1_700_000_000_000})
    assert main(["vault", "migrate-legacy", "--owner", "carol"]) == 0
    out = capsys.readouterr().out
    assert "legacy-1: migrated (v1)" in out and "account created for owner carol" in out
    _, restored = await _claim(cli_env, "import-c2", "legacy-1")
    assert restored.creds.me is not None and restored.creds.me.id == state.creds.me.id  # type: ignore[union-attr]
    assert restored.creds.as_json() == state.creds.as_json()
