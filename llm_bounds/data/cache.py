"""The on-disk cache of token streams and compressor baselines (``~/.cache/llm-bounds``), bounded.

Every entry is keyed by the content it was computed from (see :func:`llm_bounds.data.corpus.build_corpus`
and :func:`llm_bounds.data.baselines.baseline_bits_per_byte`), so it is never stale, only old. An
entry is the group of files that share a name up to the first dot. After each write the cache is
pruned to :func:`cache_limit_bytes` (1 GiB unless ``LLM_BOUNDS_CACHE_MAX_MB`` says otherwise), the
least recently used entries first. Deleting the folder is always safe: ``rm -r ~/.cache/llm-bounds``.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_LIMIT_MB = 1024


def default_cache_dir() -> Path:
    """``$LLM_BOUNDS_CACHE``, else ``~/.cache/llm-bounds``."""
    return Path(os.environ.get("LLM_BOUNDS_CACHE") or Path.home() / ".cache" / "llm-bounds")


def cache_limit_bytes() -> int:
    """The cache's size limit: ``$LLM_BOUNDS_CACHE_MAX_MB`` megabytes (default 1,024)."""
    try:
        return max(0, int(float(os.environ.get("LLM_BOUNDS_CACHE_MAX_MB", DEFAULT_LIMIT_MB)) * 2**20))
    except ValueError:
        return DEFAULT_LIMIT_MB * 2**20


def touch(path: Path) -> None:
    """Mark a cache entry as used now (its last use decides when it is evicted)."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune_cache(cache_dir: Path, keep: str, limit: int | None = None) -> list[str]:
    """Delete the least recently used entries of ``cache_dir`` until it holds at most ``limit``
    bytes, never the entry ``keep`` (the one just written or read); returns the deleted entries.
    Unreadable files are skipped: the cache is an optimisation and never fails a run."""
    limit = cache_limit_bytes() if limit is None else limit
    entries: dict[str, list] = {}
    try:
        files = [p for p in Path(cache_dir).iterdir() if p.is_file() and not p.name.startswith(".")]
    except OSError:
        return []
    for p in files:
        try:
            st = p.stat()
        except OSError:
            continue
        e = entries.setdefault(p.name.split(".")[0], [0, 0.0, []])
        e[0] += st.st_size
        e[1] = max(e[1], st.st_mtime)
        e[2].append(p)
    total = sum(e[0] for e in entries.values())
    deleted = []
    for name, (size, _, paths) in sorted(entries.items(), key=lambda kv: kv[1][1]):
        if total <= limit:
            break
        if name == keep:
            continue
        # the completeness marker (.json) goes first, so that a reader never trusts a partial entry
        for p in sorted(paths, key=lambda q: q.suffix != ".json"):
            try:
                p.unlink()
            except OSError:
                pass
        total -= size
        deleted.append(name)
    return deleted
