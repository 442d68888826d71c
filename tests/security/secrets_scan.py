"""Finding key material in text: every encoding a careless log line could use.

A secret is looked for whole and by a 16-byte prefix (a truncated log field still leaks), as lower
and upper hex, standard and URL-safe base64 (with and without padding), a Python bytes repr, and a
list of byte values.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shared.bufferjson import decode_base64
from shared.errors import BaileysFormatError

MIN_SECRET_BYTES = 16
PREFIX_BYTES = 15  # a multiple of 3, so its base64 is a prefix of the whole secret's base64
#: Names under which the auth state keeps secret bytes (public keys and signatures are not secret).
SECRET_FIELDS = frozenset({"private", "advSecretKey", "keyData", "rootKey", "chainKey", "senderKey",
                           "privKey", "privateKey", "seed"})


@dataclass(frozen=True)
class Secret:
    name: str
    value: bytes


@dataclass(frozen=True)
class Finding:
    secret: str
    encoding: str
    source: str
    line_number: int


def encodings(value: bytes) -> dict[str, str]:
    prefix = value[:PREFIX_BYTES]
    forms = {
        "hex": value.hex(),
        "HEX": value.hex().upper(),
        "base64": base64.b64encode(value).decode().rstrip("="),
        "base64url": base64.urlsafe_b64encode(value).decode().rstrip("="),
        "bytes-repr": repr(value[:PREFIX_BYTES])[2:-1],
        "int-list": ", ".join(str(b) for b in value[:8]),
        "hex-prefix": value[:16].hex(),
        "base64-prefix": base64.b64encode(prefix).decode(),
        "base64url-prefix": base64.urlsafe_b64encode(prefix).decode(),
    }
    return forms


def secrets_in_state(state_json: Any, path: str = "") -> Iterator[Secret]:
    """Secret byte strings of an auth state's JSON form (``AuthState.to_json()``: bytes values)."""
    if isinstance(state_json, Mapping):
        for key, value in state_json.items():
            child = f"{path}/{key}"
            if key in SECRET_FIELDS:
                raw = _as_bytes(value)
                if raw is not None and len(raw) >= MIN_SECRET_BYTES:
                    yield Secret(child, raw)
                    continue
            yield from secrets_in_state(value, child)
    elif isinstance(state_json, list | tuple):
        for index, value in enumerate(state_json):
            yield from secrets_in_state(value, f"{path}/{index}")


def _as_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        try:
            return decode_base64(value)
        except (BaileysFormatError, ValueError):
            return None
    return None


def scan(texts: Mapping[str, str], secrets: Iterable[Secret]) -> list[Finding]:
    """Every place a secret shows up in ``texts`` (source name -> text)."""
    findings: list[Finding] = []
    lines = {source: text.splitlines() for source, text in texts.items()}
    for secret in secrets:
        for encoding, needle in encodings(secret.value).items():
            if encoding == "int-list" and len(needle) < 20:
                continue  # eight small numbers can occur by chance
            for source, source_lines in lines.items():
                for number, line in enumerate(source_lines, 1):
                    if needle in line:
                        findings.append(Finding(secret.name, encoding, source, number))
    return findings
