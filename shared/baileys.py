"""Baileys auth folders, as ``useMultiFileAuthState`` (``src/Utils/use-multi-file-auth-state.ts``) keeps them.

A folder holds ``creds.json`` and one ``<category>-<id>.json`` per key, each value JSON with BufferJSON
binaries. File names go through Baileys' ``fixFileName``: ``/`` becomes ``__`` and ``:`` becomes ``-``.
That is lossy, so reading undoes it per category, from what the ids are known to look like:

* ``__`` -> ``/`` (base64 app-state key ids are the only ids with ``/``);
* sender-key ids are ``{group}::{sender}::{device}`` (``SenderKeyName.serialize``), written
  ``{group}--{sender}--{device}``; the last two ``--`` are turned back into ``::`` (old-style group ids
  such as ``4070...-1600000000@g.us`` keep their own single ``-``);
* no other category has ``:`` in its ids (sessions and identity keys use ``user.device`` addresses).

Categories contain ``-`` too, so a file name is matched against the known categories, longest first
(``sender-key-memory-...`` is not a ``sender-key``). A file of an unknown category is an error rather
than silently dropped: losing keys is what breaks decryption after a restore.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from shared.authstate import KEY_CATEGORIES, SENDER_KEY, AuthState, Credentials
from shared.bufferjson import JsonValue, dumps, revive
from shared.errors import BaileysFormatError

CREDS_FILE: Final = "creds.json"
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
#: Largest single file read (a session record is a few KB; this only guards against junk).
MAX_FILE_BYTES: Final = 8 * 1024 * 1024

_CATEGORIES_LONGEST_FIRST: Final = sorted(KEY_CATEGORIES, key=len, reverse=True)


def fix_file_name(name: str) -> str:
    """Baileys' ``fixFileName``."""
    return name.replace("/", "__").replace(":", "-")


def key_file_name(category: str, key_id: str) -> str:
    return fix_file_name(f"{category}-{key_id}.json")


def _unescape_id(category: str, escaped: str) -> str:
    key_id = escaped.replace("__", "/")
    if category == SENDER_KEY:
        parts = key_id.rsplit("--", 2)
        if len(parts) == 3 and all(parts):
            key_id = "::".join(parts)
    return key_id


def parse_key_file_name(file_name: str) -> tuple[str, str]:
    """``(category, id)`` of a key file, ids un-escaped as described in the module docstring."""
    if not file_name.endswith(".json"):
        raise BaileysFormatError(f"{file_name}: not a .json file")
    stem = file_name[: -len(".json")]
    for category in _CATEGORIES_LONGEST_FIRST:
        prefix = category + "-"
        if stem.startswith(prefix) and len(stem) > len(prefix):
            return category, _unescape_id(category, stem[len(prefix) :])
    raise BaileysFormatError(
        f"{file_name}: not a known key category ({', '.join(sorted(KEY_CATEGORIES))})"
    )


def _read_json(path: Path) -> JsonValue:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise BaileysFormatError(f"{path.name}: {size} bytes, over {MAX_FILE_BYTES}")
        text = path.read_bytes()
    except OSError as exc:
        raise BaileysFormatError(f"{path.name}: cannot read ({exc.strerror})") from exc
    try:
        return revive(text)
    except BaileysFormatError as exc:
        raise BaileysFormatError(f"{path.name}: {exc}") from exc


def read_folder(folder: Path) -> AuthState:
    """Load a Baileys auth folder; any malformed file is a :class:`BaileysFormatError` naming it."""
    if not folder.is_dir():
        raise BaileysFormatError(f"{folder} is not a directory")
    creds_path = folder / CREDS_FILE
    if not creds_path.is_file():
        raise BaileysFormatError(f"{folder} has no {CREDS_FILE}")
    creds = _read_json(creds_path)
    if not isinstance(creds, dict):
        raise BaileysFormatError(f"{CREDS_FILE}: not a JSON object")
    keys: dict[str, dict[str, JsonValue]] = {}
    for path in sorted(folder.iterdir()):
        if path.name == CREDS_FILE or path.name.startswith("."):
            continue
        if not path.is_file():
            raise BaileysFormatError(f"{path.name}: not a regular file")
        category, key_id = parse_key_file_name(path.name)
        value = _read_json(path)
        if value is None:
            continue  # Baileys deletes the file instead; a null value stores nothing either way
        entries = keys.setdefault(category, {})
        if key_id in entries:
            raise BaileysFormatError(f"{path.name}: a second file for {category} id {key_id!r}")
        entries[key_id] = value
    return AuthState(creds=Credentials(creds), keys=keys)


def write_folder(state: AuthState, folder: Path) -> list[str]:
    """Write ``state`` as a Baileys auth folder (files 0600); refuses a folder that is not empty."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BaileysFormatError(f"{folder} exists and is not an empty directory; refusing to overwrite")
    files: dict[str, JsonValue] = {CREDS_FILE: dict(state.creds.as_json())}
    for category, entries in state.keys.items():
        for key_id, value in entries.items():
            name = key_file_name(category, key_id)
            if name in files or "/" in name or name.startswith("."):
                raise BaileysFormatError(f"{category} id {key_id!r} has no unique Baileys file name")
            files[name] = value
    folder.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for name, value in files.items():
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dumps(value))
    return sorted(files)
