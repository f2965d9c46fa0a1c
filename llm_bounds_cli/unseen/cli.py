"""``scripts/unseen_corpus.py``: build the unseen corpus (see ``--help``).

Exit codes: 0 the pinned corpus was written; 1 a download failed or the written file's sha256
differs from the pinned one (the file is kept); 2 bad input. Each failure is one line on stderr.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from llm_bounds.core.errors import BoundInputError, RunError, require
from llm_bounds_cli.parsing import OneLineParser
from llm_bounds_cli.unseen.build import EXPECTED_SHA256, build_unseen_corpus, default_output, default_sdist_cache

PROG = "unseen_corpus.py"


def unseen_parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description="Build the unseen corpus: release notes of 34 pinned PyPI sdists, "
                                             "kept only where first published after 2024-11-30, as one JSONL file "
                                             f"with a pinned sha256 ({EXPECTED_SHA256[:16]}...).")
    p.add_argument("--out", type=Path, default=None,
                   help=f"the JSONL file to write (default {default_output()}; $LLM_BOUNDS_CACHE moves it)")
    p.add_argument("--cache", type=Path, default=None,
                   help=f"folder of the downloaded sdists, reused when their sha256 matches "
                        f"(default {default_sdist_cache()})")
    p.add_argument("--manifest", type=Path, default=None,
                   help="also write the dating evidence as TSV: every section dated since 2024-06 with its "
                        "predecessor's date and whether it was kept")
    p.add_argument("--offline", action="store_true",
                   help="never run pip: every sdist must already be in --cache")
    return p


def check_file_destination(path: Path, flag: str) -> Path:
    """``path`` as a file this process can write (its folders may be new). Creates nothing."""
    require(str(path).strip() != "", f"{flag} is empty; pass a file path")
    path = path.expanduser()
    require(not path.is_dir(), f"{flag} {path} is a folder; pass a file path, e.g. {path / 'unseen-2025.jsonl'}")
    probe = path.parent
    while not probe.exists():
        probe = probe.parent
    require(probe.is_dir(), f"{flag} {path} lies under {probe}, which is a file; pass another path")
    require(os.access(probe, os.W_OK | os.X_OK), f"{flag} {path}: {probe} is not writable by this user")
    return path


def check_cache_folder(path: Path) -> Path:
    require(str(path).strip() != "", "--cache is empty; pass a folder")
    path = path.expanduser()
    require(not path.exists() or path.is_dir(), f"--cache {path} is a file; pass a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    require(probe.is_dir(), f"--cache {path} lies under {probe}, which is a file; pass another folder")
    return path


def unseen_corpus_main(argv=None, prog: str = PROG) -> int:
    args = unseen_parser(prog).parse_args(argv)
    try:
        out = check_file_destination(args.out if args.out is not None else default_output(), "--out")
        cache = check_cache_folder(args.cache if args.cache is not None else default_sdist_cache())
        manifest = check_file_destination(args.manifest, "--manifest") if args.manifest is not None else None
        require(manifest is None or manifest.resolve() != out.resolve(), "--manifest and --out name the same file")
        path, digest, stats = build_unseen_corpus(out, cache, download=not args.offline, manifest=manifest,
                                                  log=lambda message: print(f"{prog}: {message}", file=sys.stderr))
    except BoundInputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"{prog}: failed: {e}", file=sys.stderr)
        return 1
    print(f"sha256 {digest}  {path}")
    if not stats["matches_pinned"]:
        return 1
    print(f"{prog}: matches the pinned sha256; pass it with --unseen-dataset {path}", file=sys.stderr)
    return 0
