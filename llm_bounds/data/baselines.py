"""Classical compressors on the scored training text: the figure a reader compares a bound with.

gzip -9 (zlib's DEFLATE in a gzip container), bzip2 -9 and xz -9e (LZMA2, extreme preset), from
Python's standard library, each in **bits per byte** of exactly the bytes given: 8 × compressed
length / input length, container headers included (what a file on disk would cost).

These are informational: they are not part of any bound, and another Python build may produce a few
bytes more or less, so the verifier does not re-derive them.
"""
from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
from pathlib import Path

from llm_bounds.core.errors import RunError, require
from llm_bounds.core.files import write_atomic
from llm_bounds.data.cache import prune_cache, touch

COMPRESSORS = ("gzip -9", "bzip2 -9", "xz -9e")
BASELINES_FORMAT = 1


def compressed_bits(data: bytes) -> dict[str, int]:
    """Compressed size in bits of ``data`` under each of :data:`COMPRESSORS`."""
    return {"gzip -9": 8 * len(gzip.compress(data, compresslevel=9, mtime=0)),
            "bzip2 -9": 8 * len(bz2.compress(data, compresslevel=9)),
            "xz -9e": 8 * len(lzma.compress(data, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME))}


def _cache_path(data: bytes, cache_dir: Path | None) -> Path | None:
    digest = hashlib.sha256(data).hexdigest()
    return None if cache_dir is None else Path(cache_dir) / f"baselines-{BASELINES_FORMAT}-{digest[:32]}.json"


def baselines_cached(data: bytes, cache_dir: Path | None) -> bool:
    """True when :func:`baseline_bits_per_byte` of ``data`` is in ``cache_dir`` (costs nothing to get)."""
    path = _cache_path(data, cache_dir)
    return path is not None and path.is_file()


def baseline_bits_per_byte(data: bytes, cache_dir: Path | None = None) -> dict:
    """``{compressor: bits per byte, ..., "bytes": len(data), "sha256": ...}`` for ``data``.

    Cached under ``cache_dir`` by the sha256 of ``data`` (xz -9e takes seconds on megabytes).
    """
    require(len(data) > 0, "there are no scored bytes to compress")
    digest = hashlib.sha256(data).hexdigest()
    path = _cache_path(data, cache_dir)
    if path is not None and path.is_file():
        touch(path)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # pruned or damaged meanwhile: compress again
    result = {name: bits / len(data) for name, bits in compressed_bits(data).items()}
    result.update(bytes=len(data), sha256=digest)
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(result, indent=1))
            prune_cache(path.parent, keep=path.name.split(".")[0])
        except (OSError, RunError):
            pass  # the cache is an optimisation
    return result
