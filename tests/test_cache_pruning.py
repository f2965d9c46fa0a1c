"""The cache deletes only its own entries: a user's files in the cache folder (``LLM_BOUNDS_CACHE`` may
point anywhere) survive any number of writes over the limit, and the cache's entries are still
pruned least recently used first."""
import hashlib
import json
import os
from pathlib import Path

import pytest

from llm_bounds.data.baselines import baseline_bits_per_byte
from llm_bounds.data.cache import own_entries, prune_cache
from llm_bounds.data.corpus import build_corpus
from llm_bounds.data.tokenizers import ByteTokenizer

HEX = "0123456789abcdef" * 2


def documents(i: int) -> list[str]:
    return [f"run {i}, document {j}: in the beginning was the word. " * 40 for j in range(4)]


def make_decoys(cache: Path) -> dict[str, str]:
    """The user's files: a note, a PDF, a sparse file larger than any limit, a folder, and files
    named as the cache names its own but not written by it. Returns path -> sha256 of the bytes."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "notes.txt").write_text("my notes, not a cache entry\n")
    (cache / "paper.pdf").write_bytes(b"%PDF-1.7\n" + os.urandom(20_000))
    with open(cache / "big.iso", "wb") as f:
        f.truncate(1_200 * 2**20)  # 1.2 GB on paper, over the 1 GiB default; sparse, so nothing is written
    (cache / "projects").mkdir()
    (cache / "projects" / "draft.txt").write_text("a folder of the user's")
    (cache / f"{HEX}.json").write_text(json.dumps({"hello": "a JSON file whose name looks like an entry"}))
    (cache / f"{HEX}.train.bin").write_bytes(os.urandom(30_000))
    (cache / f"baselines-1-{HEX}.json").write_text(json.dumps({"sha256": "f" * 64, "bytes": 3}))
    (cache / f"{'a' * 32}.train.bin").write_bytes(os.urandom(30_000))   # no marker: not provably ours
    (cache / f"{'b' * 32}.json").symlink_to(cache / "notes.txt")         # a link is never ours
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() and p.name != "big.iso" else ""
            for p in cache.rglob("*")}


def assert_decoys_intact(decoys: dict[str, str]) -> None:
    for path, digest in decoys.items():
        p = Path(path)
        assert p.exists() or p.is_symlink(), f"the cache deleted {p.name}, which it did not write"
        if digest:
            assert hashlib.sha256(p.read_bytes()).hexdigest() == digest, f"{p.name} changed"
    assert Path(next(p for p in decoys if p.endswith("big.iso"))).stat().st_size == 1_200 * 2**20


@pytest.mark.parametrize("limit_mb", ["0", "0.02", "1024"])
def test_writes_over_the_limit_never_delete_the_users_files(tmp_path, monkeypatch, limit_mb):
    cache = tmp_path / "cache"
    decoys = make_decoys(cache)
    monkeypatch.setenv("LLM_BOUNDS_CACHE", str(cache))
    monkeypatch.setenv("LLM_BOUNDS_CACHE_MAX_MB", limit_mb)
    for i in range(4):  # several runs' worth of writes, each followed by a prune
        build_corpus(documents(i), ByteTokenizer(), heldout_fraction=0.25, seed=0)
        baseline_bits_per_byte(f"the scored text of run {i} ".encode() * 200, cache_dir=cache)
        assert_decoys_intact(decoys)
    prune_cache(cache, keep="none", limit=0)  # the harshest prune there is
    assert_decoys_intact(decoys)
    assert own_entries(cache) == {}


def test_the_caches_own_entries_are_still_pruned_least_recently_used_first(tmp_path):
    cache = tmp_path / "cache"
    decoys = make_decoys(cache)
    for i in range(3):
        build_corpus(documents(i), ByteTokenizer(), heldout_fraction=0.25, seed=0, cache_dir=cache)
    baseline_bits_per_byte(b"compressed once " * 300, cache_dir=cache)
    entries = own_entries(cache)
    assert len(entries) == 4, sorted(entries)  # three token streams and one baselines entry, nothing else
    (baselines,) = [name for name in entries if name.startswith("baselines-")]
    assert set(entries) == {baselines} | {build_key(i, cache) for i in range(3)}
    # last use: the baselines entry first, then stream 0, stream 2, stream 1 (most recently)
    last_use = [baselines] + [build_key(i, cache) for i in (0, 2, 1)]
    for t, name in enumerate(last_use):
        for p in entries[name][2]:
            os.utime(p, (1_000_000 + t, 1_000_000 + t))
    sizes = {name: entries[name][0] for name in entries}
    keep_two = sizes[last_use[2]] + sizes[last_use[3]]
    assert prune_cache(cache, keep="none", limit=keep_two) == last_use[:2]
    assert set(own_entries(cache)) == set(last_use[2:])
    assert_decoys_intact(decoys)


def build_key(i: int, cache: Path) -> str:
    """The entry name of run i's token streams (its marker names it)."""
    want = build_corpus(documents(i), ByteTokenizer(), heldout_fraction=0.25, seed=0, cache_dir=False).content_hash
    for p in cache.glob("*.json"):
        try:
            meta = json.loads(p.read_text())
        except (ValueError, OSError):
            continue
        if isinstance(meta, dict) and meta.get("content_hash") == want:
            return p.name.split(".")[0]
    raise AssertionError(f"no entry for run {i}")


def test_an_entry_written_before_markers_named_it_is_still_the_caches_own(tmp_path):
    build_corpus(documents(0), ByteTokenizer(), heldout_fraction=0.25, seed=0, cache_dir=tmp_path)
    (marker,) = tmp_path.glob("*.json")
    meta = json.loads(marker.read_text())
    del meta["cache_entry"]  # as the corpus-v1 cache wrote it
    marker.write_text(json.dumps(meta))
    name = marker.name.split(".")[0]
    assert set(own_entries(tmp_path)) == {name}
    assert prune_cache(tmp_path, keep="none", limit=0) == [name] and not list(tmp_path.iterdir())
