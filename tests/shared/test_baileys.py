"""Baileys auth folders: file-name escaping, every key category, round trip, malformed input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.authstate import validate_state
from shared.baileys import key_file_name, parse_key_file_name, read_folder, write_folder
from shared.bufferjson import revive
from shared.errors import BaileysFormatError
from tests.shared.baileys_fixture import write_baileys_folder


@pytest.mark.parametrize(
    ("file_name", "category", "key_id"),
    [
        ("session-40700000002.0.json", "session", "40700000002.0"),
        ("sender-key-1234@g.us--40700000001--0.json", "sender-key", "1234@g.us::40700000001::0"),
        ("sender-key-40700000001-1600000000@g.us--7_1--12.json", "sender-key",
         "40700000001-1600000000@g.us::7_1::12"),
        ("sender-key-memory-1234@g.us.json", "sender-key-memory", "1234@g.us"),
        ("app-state-sync-key-AB__cd+e==.json", "app-state-sync-key", "AB/cd+e=="),
        ("app-state-sync-version-regular_high.json", "app-state-sync-version", "regular_high"),
        ("lid-mapping-123_reverse.json", "lid-mapping", "123_reverse"),
        ("pre-key-17.json", "pre-key", "17"),
    ],
)
def test_file_names_map_to_ids_and_back(file_name: str, category: str, key_id: str) -> None:
    assert parse_key_file_name(file_name) == (category, key_id)
    assert key_file_name(category, key_id) == file_name


@pytest.mark.parametrize("file_name", ["session-.json", "unknown-thing-1.json", "pre-key-1.txt"])
def test_bad_file_names(file_name: str) -> None:
    with pytest.raises(BaileysFormatError):
        parse_key_file_name(file_name)


def test_read_folder_types_and_validates(tmp_path: Path) -> None:
    write_baileys_folder(tmp_path / "auth")
    state = read_folder(tmp_path / "auth")
    validate_state(state)
    assert state.creds.registered and state.creds.me is not None
    assert state.creds.account is not None and len(state.creds.account.device_signature) == 64
    assert set(state.keys) == {"pre-key", "session", "sender-key", "sender-key-memory", "app-state-sync-key",
                               "app-state-sync-version", "lid-mapping", "device-list", "identity-key", "tctoken"}
    assert isinstance(state.keys["pre-key"]["2"], dict)
    assert isinstance(state.keys["pre-key"]["2"]["private"], bytes)
    assert state.keys["sender-key"]["1234@g.us::40700000001::0"]
    assert state.keys["lid-mapping"]["40700000002"] == "123456789012346"


def test_export_gives_the_same_json_values(tmp_path: Path) -> None:
    files = write_baileys_folder(tmp_path / "in")
    written = write_folder(read_folder(tmp_path / "in"), tmp_path / "out")
    assert sorted(files) == written
    for name, value in files.items():
        exported = (tmp_path / "out" / name).read_text()
        assert revive(exported) == revive(json.dumps(value)), name
        assert (tmp_path / "out" / name).stat().st_mode & 0o777 == 0o600
    # bytes go back out in Baileys' current base64 form, also those read from the old int-array form
    assert json.loads((tmp_path / "out" / "pre-key-2.json").read_text())["public"]["data"].endswith("=")


def test_export_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    write_baileys_folder(tmp_path / "in")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(BaileysFormatError, match="refusing"):
        write_folder(read_folder(tmp_path / "in"), tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("session-1.0.json", "{not json", "session-1.0.json"),
        ("pre-key-9.json", '{"private":{"type":"Buffer","data":"%%%"}}', "pre-key-9.json"),
        ("mystery-1.json", "{}", "known key category"),
        ("creds.json", "[1,2]", "creds.json"),
    ],
)
def test_malformed_files_are_named(tmp_path: Path, name: str, content: str, message: str) -> None:
    write_baileys_folder(tmp_path / "auth")
    (tmp_path / "auth" / name).write_text(content)
    with pytest.raises(BaileysFormatError, match=re.escape(message)):
        read_folder(tmp_path / "auth")


def test_missing_creds(tmp_path: Path) -> None:
    write_baileys_folder(tmp_path / "auth")
    (tmp_path / "auth" / "creds.json").unlink()
    with pytest.raises(BaileysFormatError, match=r"creds\.json"):
        read_folder(tmp_path / "auth")


REAL_FOLDER = Path(__file__).parent / "fixtures" / "baileys-6.17.16"


def test_folder_written_by_real_baileys_imports_and_exports_unchanged(tmp_path: Path) -> None:
    state = read_folder(REAL_FOLDER)
    validate_state(state)
    # the signed pre-key was signed by libsignal-node; it must verify here
    assert state.creds.signed_pre_key.verify(state.creds.signed_identity_key.public)
    assert state.creds.account is not None  # protobufjs wrote it as base64 text
    assert sorted(state.keys["sender-key"]) == ["1234@g.us::40700000001::0",
                                                "40700000001-1600000000@g.us::123456789012345_1::12"]
    assert sorted(state.keys["app-state-sync-key"]) == ["AAAAAH4A", "AB/cd+e=="]
    written = write_folder(state, tmp_path / "out")
    assert written == sorted(p.name for p in REAL_FOLDER.iterdir())
    for name in written:
        assert revive((tmp_path / "out" / name).read_text()) == revive((REAL_FOLDER / name).read_text()), name
