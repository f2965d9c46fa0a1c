"""The on-disk cache of token streams and compressor baselines (``~/.cache/llm-bounds``), bounded.

Every entry is keyed by the content it was computed from (see :func:`llm_bounds.data.corpus.build_corpus`
and :func:`llm_bounds.data.baselines.baseline_bits_per_byte`), so it is never stale, only old. After
each write the cache is pruned to :func:`cache_limit_bytes` (1 GiB unless ``LLM_BOUNDS_CACHE_MAX_MB``
says otherwise), the least recently used entries first. Deleting the folder is always safe:
``rm -r ~/.cache/llm-bounds``.

The folder may hold other files (``LLM_BOUNDS_CACHE`` can point anywhere), so pruning deletes only
what the cache wrote and recognises as its own (:func:`own_entries`): an entry is named by the
cache's own pattern (a token stream: 32 hex digits; baselines: ``baselines-N-`` and 32 hex digits),
holds only the files that kind of entry writes (regular files, no links), and has its marker, a
small JSON file that names the entry (a token stream's ``cache_entry``; baselines: the sha256 of the
compressed bytes, whose first 32 digits are in the name; a token stream's marker from before
``cache_entry`` existed: the full set of keys those markers had). Anything else (a file, a folder, a link,
an unfinished entry without its marker) is neither counted nor deleted, whatever the limit.
"""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

DEFAULT_LIMIT_MB = 1024
MARKER_MAX_BYTES = 2**20
# entry name -> the suffixes its files may have; the marker is ENTRY.json
CORPUS_ENTRY = re.compile(r"^[0-9a-f]{32}$")
CORPUS_SUFFIXES = (".json", ".train.bin", ".heldout.bin", ".offsets.npz")
BASELINES_ENTRY = re.compile(r"^baselines-[0-9]+-([0-9a-f]{32})$")
BASELINES_SUFFIXES = (".json",)


def default_cache_dir() -> Path:
    """``$LLM_BOUNDS_CACHE``, else ``~/.cache/llm-bounds``."""
    return Path(os.environ.get("LLM_BOUNDS_CACHE") or Path.home() / ".cache" / "llm-bounds")


def cache_limit_bytes() -> int:
    """The cache's size limit: ``$LLM_BOUNDS_CACHE_MAX_MB`` megabytes (default 1,024)."""
    try:
        return max(0, int(float(os.environ.get("LLM_BOUNDS_CACHE_MAX_MB", DEFAULT_LIMIT_MB)) * 2**20))
    except ValueError:
        return DEFAULT_LIMIT_MB * 2**20


def corpus_marker(entry: str) -> dict:
    """The keys a token-stream entry's marker (``ENTRY.json``) carries so that pruning knows it."""
    return {"cache_entry": entry}


def touch(path: Path) -> None:
    """Mark a cache entry as used now (its last use decides when it is evicted)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _split(name: str) -> tuple[str, str] | None:
    """A file name -> (entry, suffix) when it is a name the cache writes, else None."""
    for pattern, suffixes in ((CORPUS_ENTRY, CORPUS_SUFFIXES), (BASELINES_ENTRY, BASELINES_SUFFIXES)):
        for suffix in suffixes:
            if name.endswith(suffix) and pattern.match(name[:-len(suffix)]):
                return name[:-len(suffix)], suffix
    return None


def _is_marker(entry: str, path: Path) -> bool:
    """True when ``path`` (``ENTRY.json``, a regular file) is the marker the cache wrote for ``entry``."""
    try:
        if path.lstat().st_size > MARKER_MAX_BYTES:
            return False
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    baselines = BASELINES_ENTRY.match(entry)
    if baselines is not None:
        return isinstance(data.get("sha256"), str) and data["sha256"].startswith(baselines.group(1))
    if not str(data.get("format", "")).startswith("corpus-"):
        return False
    if "cache_entry" in data:
        return data["cache_entry"] == entry
    # written before markers named their entry (corpus-v1): the full set of keys it always had
    return (re.fullmatch(r"[0-9a-f]{64}", str(data.get("content_hash"))) is not None
            and isinstance(data.get("tokenizer_fingerprint"), str) and isinstance(data.get("train_tokens"), int))


def own_entries(cache_dir: Path) -> dict[str, tuple[int, float, list[Path]]]:
    """The entries of ``cache_dir`` that the cache wrote: name -> (bytes, last use as an mtime,
    files with the marker last). See the module docstring for what counts as the cache's own."""
    files: dict[str, list[tuple[Path, os.stat_result]]] = {}
    try:
        children = list(Path(cache_dir).iterdir())
    except OSError:
        return {}
    for p in children:
        split = _split(p.name)
        if split is None:
            continue
        try:
            st = p.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            files.setdefault(split[0], []).append((p, st))
    entries = {}
    for name, group in files.items():
        marker = [p for p, _ in group if p.name == f"{name}.json"]
        if not marker or not _is_marker(name, marker[0]):
            continue
        paths = sorted((p for p, _ in group), key=lambda q: q.name == f"{name}.json")
        entries[name] = (sum(st.st_size for _, st in group), max(st.st_mtime for _, st in group), paths)
    return entries


def prune_cache(cache_dir: Path, keep: str, limit: int | None = None) -> list[str]:
    """Delete the least recently used of the cache's own entries (:func:`own_entries`) until they
    hold at most ``limit`` bytes, never the entry ``keep`` (the one just written or read) and never
    a file the cache did not write; returns the deleted entries. Unreadable files are skipped: the
    cache is an optimisation and never fails a run."""
    limit = cache_limit_bytes() if limit is None else limit
    entries = own_entries(cache_dir)
    total = sum(size for size, _, _ in entries.values())
    deleted = []
    for name, (size, _, paths) in sorted(entries.items(), key=lambda kv: kv[1][1]):
        if total <= limit:
            break
        if name == keep:
            continue
        # the marker goes last: an interrupted prune leaves an entry still known as the cache's own
        # (readers treat an entry with a missing file as a miss)
        for p in paths:
            try:
                p.unlink()
            except OSError:
                pass
        total -= size
        deleted.append(name)
    return deleted
