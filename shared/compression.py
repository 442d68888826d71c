"""zstd with a bound: nothing inflates past a caller-given size, whatever a frame header claims."""

from __future__ import annotations

import threading
from typing import Final

import zstandard

from shared.errors import DecompressionError

__all__ = ["LEVEL", "DecompressionError", "compress", "decompress"]

LEVEL: Final = 3


_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    # Compressor objects are not safe for concurrent use; one per thread is reused across calls.
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = zstandard.ZstdCompressor(level=LEVEL, write_content_size=True)
        _local.compressor = compressor
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = zstandard.ZstdDecompressor()
        _local.decompressor = decompressor
    return decompressor


def compress(data: bytes) -> bytes:
    return bytes(_compressor().compress(data))


def decompress(data: bytes, max_size: int) -> bytes:
    """Inflate one zstd frame that declares its size, refusing anything over ``max_size`` bytes."""
    try:
        declared = zstandard.frame_content_size(data)
    except zstandard.ZstdError as exc:
        raise DecompressionError("not a zstd frame") from exc
    if declared < 0 or declared > max_size:
        raise DecompressionError(f"zstd frame declares {declared} bytes, bound is {max_size}")
    try:
        out = bytes(_decompressor().decompress(data, max_output_size=max_size))
    except zstandard.ZstdError as exc:
        raise DecompressionError("zstd frame is corrupt") from exc
    if len(out) != declared:
        raise DecompressionError("zstd frame inflates to a size other than it declares")
    return out
