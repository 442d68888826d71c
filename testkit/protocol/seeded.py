"""Deterministic randomness for protocol tests."""

from __future__ import annotations

import hashlib


class SeededRandom:
    """A reproducible byte stream (SHA-256 in counter mode) standing in for ``os.urandom``."""

    def __init__(self, seed: bytes | str = b"keeper") -> None:
        self._seed = seed.encode() if isinstance(seed, str) else seed
        self._counter = 0

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        return out[:n]
