from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from connector.cache import LINEAGE_KEPT, StateCache, state_digest
from connector.errors import CacheError


def test_round_trip_and_permissions(tmp_path: Path) -> None:
    cache = StateCache(tmp_path / "c")
    cache.put("acct-1", 4, b'{"creds":{}}')
    entry = cache.get("acct-1")
    assert entry is not None and entry.generation == 4 and entry.state == b'{"creds":{}}'
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700
    for path in (tmp_path / "c").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert b"creds" not in path.read_bytes()  # encrypted at rest


def test_fence_allows_same_or_next_generation_only(tmp_path: Path) -> None:
    cache = StateCache(tmp_path)
    cache.put("a", 7, b"state")
    assert cache.usable_for("a", 7) is not None
    assert cache.usable_for("a", 8) is not None
    assert cache.usable_for("a", 9) is None  # someone else held it at 8
    assert cache.usable_for("a", 6) is None
    assert cache.usable_for("b", 7) is None


def test_entry_renamed_to_another_account_does_not_open(tmp_path: Path) -> None:
    cache = StateCache(tmp_path)
    cache.put("a", 1, b"state-a")
    cache.put("b", 1, b"state-b")
    cache._path("a").replace(cache._path("b"))
    assert cache.get("b") is None


def test_key_survives_a_new_instance_and_delete_works(tmp_path: Path) -> None:
    StateCache(tmp_path).put("a", 1, b"x")
    again = StateCache(tmp_path)
    assert again.get("a") is not None
    again.delete("a")
    again.delete("a")
    assert again.get("a") is None


def test_a_failed_write_drops_the_older_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = StateCache(tmp_path)
    cache.put("a", 1, b"older")

    def disk_full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(CacheError):
        cache.put("a", 1, b"newer")
    assert cache.usable_for("a", 2) is None  # the vault's newer version wins on the next claim
    monkeypatch.undo()
    cache.put("a", 1, b"newer")
    entry = cache.usable_for("a", 2)
    assert entry is not None and entry.state == b"newer"


def test_an_entry_that_cannot_be_dropped_is_no_longer_offered(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    cache = StateCache(tmp_path)
    cache.put("a", 1, b"older")

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    monkeypatch.setattr(Path, "unlink", refuse)
    with pytest.raises(CacheError):
        cache.put("a", 1, b"newer")
    assert cache.get("a") is not None  # still on disk...
    assert cache.usable_for("a", 2) is None  # ...but never handed out by this process
    with pytest.raises(CacheError):
        cache.delete("a")


def test_a_larger_gap_is_bridged_only_when_the_vault_holds_a_state_this_cache_wrote(tmp_path: Path) -> None:
    cache = StateCache(tmp_path)
    for state in (b"s1", b"s2", b"s3"):
        cache.put("a", 1, state)
    asked: list[str] = []

    def vault(state: bytes) -> Callable[[], bytes | None]:
        def digest() -> bytes | None:
            asked.append("asked")
            return state_digest(state)
        return digest

    entry = cache.usable_for("a", 4, vault(b"s1"))  # claims 2 and 3 were answers that never arrived
    assert entry is not None and entry.state == b"s3"
    assert cache.usable_for("a", 4, vault(b"someone else's")) is None  # another connector moved on
    assert cache.usable_for("a", 4) is None
    assert len(asked) == 2
    assert cache.usable_for("a", 2, vault(b"someone else's")) is not None and len(asked) == 2  # not asked
    again = StateCache(tmp_path).usable_for("a", 9, vault(b"s2"))  # the lineage is on disk
    assert again is not None and again.state == b"s3"


def test_the_restored_origin_joins_the_lineage_and_the_lineage_is_bounded(tmp_path: Path) -> None:
    cache = StateCache(tmp_path)
    cache.note_origin("a", lambda: state_digest(b"restored"))
    cache.put("a", 5, b"moved on")
    entry = cache.get("a")
    assert entry is not None
    assert entry.lineage == (state_digest(b"restored"), state_digest(b"moved on"))
    for i in range(LINEAGE_KEPT + 5):
        cache.put("a", 5, b"state %d" % i)
    entry = cache.get("a")
    assert entry is not None and len(entry.lineage) == LINEAGE_KEPT
    assert entry.lineage[-1] == state_digest(b"state %d" % (LINEAGE_KEPT + 4))
