"""The unseen corpus (llm_bounds_cli/unseen): the dating rule, section splitting, the cleaning rules,
the deterministic JSONL and the command line, on synthetic snippets and tarballs (offline, no pip).
The rebuild of the pinned corpus is slow and needs the sdists: LLM_BOUNDS_UNSEEN_CACHE=folder."""
import datetime as dt
import hashlib
import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from llm_bounds.core.errors import RunError
from llm_bounds.data.cache import corpus_marker, prune_cache
from llm_bounds_cli.unseen import build
from llm_bounds_cli.unseen.build import (EXPECTED_SHA256, build_unseen_corpus, default_output, fetch_sdist,
                                         jsonl_bytes, provenance_markdown)
from llm_bounds_cli.unseen.clean import clean, drop_repeats
from llm_bounds_cli.unseen.cli import unseen_corpus_main
from llm_bounds_cli.unseen.dating import Section, apply_dating_rule, version_key
from llm_bounds_cli.unseen.extract import (parse_date, split_blogpost, split_changelog_blocks, split_django,
                                           split_headings)
from llm_bounds_cli.unseen.sources import PARSER_KINDS, SOURCES, Member, Source

D = dt.date


def sections(*rows):
    return [Section(v, d, "day", f"notes of {v}") for v, d in rows]


def kept(rows, one_series=False):
    return [s.version for s in apply_dating_rule(sections(*rows), one_series)]


# --- the dating rule -------------------------------------------------------------------------------

def test_a_release_is_kept_only_when_its_predecessor_is_from_2025():
    rows = [("2.0.36", D(2024, 10, 15)), ("2.0.37", D(2025, 1, 9)), ("2.0.38", D(2025, 2, 6))]
    assert kept(rows) == ["2.0.38"]   # 2.0.37 was developed from October 2024; 2.0.36 has no predecessor here


def test_the_first_release_of_a_series_follows_the_first_release_of_the_series_before():
    rows = [("5.1", D(2024, 8, 7)), ("5.2", D(2025, 4, 2)), ("5.2.1", D(2025, 5, 7)), ("6.0", D(2025, 12, 3))]
    secs = sections(*rows)
    assert [s.version for s in apply_dating_rule(secs)] == ["5.2.1", "6.0"]
    by_version = {s.version: s.predecessor_date for s in secs}
    assert by_version["6.0"] == D(2025, 4, 2)      # 5.2, not the newer 5.2.1
    assert by_version["5.2"] == D(2024, 8, 7)      # 5.1: dropped


def test_a_lower_series_that_started_after_the_release_does_not_count():
    rows = [("2.8.0", D(2024, 10, 1)), ("3.0.0", D(2025, 2, 1)), ("2.9.0", D(2025, 3, 1)), ("3.0.1", D(2025, 3, 10))]
    secs = sections(*rows)
    assert [s.version for s in apply_dating_rule(secs)] == ["3.0.1"]
    assert {s.version: s.predecessor_date for s in secs}["3.0.0"] == D(2024, 10, 1)


def test_pre_releases_order_the_series_and_a_series_started_long_ago_is_dropped():
    rows = [("2.0.0b1", D(2022, 10, 13)), ("2.0.40", D(2025, 3, 27)), ("2.1.0b1", D(2026, 1, 21)),
            ("2.1.0b2", D(2026, 4, 1)), ("2.1.0", D(2026, 6, 1))]
    assert kept(rows) == ["2.1.0b2", "2.1.0"]
    assert version_key("1.0.dev1") < version_key("1.0a1") < version_key("1.0b2") < version_key("1.0rc1") \
        < version_key("1.0") < version_key("1.0.post1") < version_key("1.0.1")
    assert version_key("v1.2") == version_key("1.2.0") and version_key("unreleased") is None


def test_calendar_versions_with_one_release_line():
    rows = [("2024.2", D(2024, 9, 4)), ("2025.1", D(2025, 1, 15)), ("2025.2", D(2025, 3, 22))]
    secs = sections(*rows)
    assert [s.version for s in apply_dating_rule(secs, one_series=True)] == ["2025.2"]
    assert [s.predecessor_date for s in secs] == [None, D(2024, 9, 4), D(2025, 1, 15)]


def test_a_release_dated_before_2025_is_dropped_whatever_its_predecessor():
    assert kept([("1.0.1", D(2025, 2, 1)), ("1.0.2", D(2024, 12, 20))]) == []


def test_undated_sections_and_non_versions_are_dropped_and_a_repeated_version_uses_its_first_date():
    secs = sections(("3.0.0", D(2025, 1, 9)), ("3.0.0", D(2025, 1, 15)), ("3.0.1", D(2025, 1, 17)),
                    ("unreleased", D(2025, 6, 1))) + [Section("3.0.2", None, None, "undated")]
    secs = [Section("2.9.0", D(2024, 12, 1), "day", "x")] + secs
    assert [s.version for s in apply_dating_rule(secs)] == ["3.0.1"]
    assert secs[1].predecessor_date == secs[2].predecessor_date == D(2024, 12, 1)


# --- dates and splitting ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2025-02-18", (D(2025, 2, 18), "day")), ("2025/02/18", (D(2025, 2, 18), "day")),
    ("20250218", (D(2025, 2, 18), "day")), ("Feb 18, 2025", (D(2025, 2, 18), "day")),
    ("February 18th 2025", (D(2025, 2, 18), "day")), ("18 Sept. 2025", (D(2025, 9, 18), "day")),
    ("2023 Dec 08", (D(2023, 12, 8), "day")), ("September, 2025", (D(2025, 9, 1), "month")),
    ("2025-??-??", None), ("unreleased", None), ("2025-13-45", None), ("Ma 3, 2025", None),
])
def test_parse_date(text, expected):
    assert parse_date(text) == expected


def test_split_headings_with_the_date_in_the_heading():
    text = ("Changelog\n=========\n\n.. _v9.0.0:\n\npytest 9.0.0 (2025-11-05)\n=========================\n\n"
            "- New feature.\n\n.. _v8.4.2:\n\npytest 8.4.2 (2025-09-04)\n=========================\n\n- A fix.\n")
    secs = split_headings(text, r"^pytest (?P<v>\S+) \((?P<d>\d{4}-\d{2}-\d{2})\)\s*$")
    assert [(s.version, s.date, s.precision) for s in secs] == [("9.0.0", D(2025, 11, 5), "day"),
                                                                 ("8.4.2", D(2025, 9, 4), "day")]
    assert secs[0].body == "pytest 9.0.0 (2025-11-05)\n\n=========================\n\n- New feature."
    assert secs[1].body.endswith("- A fix.")


def test_split_headings_with_the_date_on_a_line_below_which_leaves_the_text():
    text = "# Changes\n\n## Version 8.3.0\n\nReleased 2026-02-01\n\n- Add a flag.\n\n## Version 8.2.2\n\nUnreleased\n"
    secs = split_headings(text, r"^## Version (?P<v>\S+)\s*$", r"^Released (?P<d>\d{4}-\d{2}-\d{2})")
    assert [(s.version, s.date) for s in secs] == [("8.3.0", D(2026, 2, 1)), ("8.2.2", None)]
    assert "Released" not in secs[0].body and secs[0].body.startswith("Version 8.3.0\n\n")


def test_split_django_sqlalchemy_and_blogpost():
    django = split_django("==========================\nDjango 6.0 release notes\n==========================\n\n"
                          "*December 3, 2025*\n\nWelcome to Django 6.0!\n")
    assert [(s.version, s.date) for s in django] == [("6.0", D(2025, 12, 3))]
    assert "December" not in django[0].body and "Welcome" in django[0].body
    assert split_django("Django 6.2 release notes - UNDER DEVELOPMENT\n\nSoon.\n") == []

    sa = split_changelog_blocks(
        ".. changelog::\n    :version: 2.1.0b2\n    :released: April 1, 2026\n    :released: March 30, 2026\n\n"
        "    .. change::\n        :tags: bug, orm\n        :tickets: 123\n\n        Fixed the identity map.\n\n"
        ".. changelog::\n    :version: 2.1.0b3\n    :include_notes_from: unreleased_21\n", label="Alembic")
    assert [(s.version, s.date) for s in sa] == [("2.1.0b2", D(2026, 3, 30))]     # the earliest date; no date: none
    assert sa[0].body == "Alembic 2.1.0b2\n\nFixed the identity map."

    post = split_blogpost("---\ndate: 2025-07-14\nauthors: [someone]\n---\n\n# Zarr-Python 3.1.0 is out\n\nNews.\n")
    assert [(s.version, s.date) for s in post] == [("3.1.0", D(2025, 7, 14))]
    assert post[0].body.lstrip().startswith("Zarr-Python 3.1.0 is out")


# --- cleaning ---------------------------------------------------------------------------------------

def test_links_become_their_text():
    text = ("See `the guide <https://x.org/guide>`_, [the docs](https://x.org/docs), [ref][1], `Tornado`_ "
            "and <https://x.org/a>; https://x.org/bare stays.")
    assert clean(text) == "See the guide, the docs, ref, Tornado and https://x.org/a; https://x.org/bare stays."


def test_issue_and_pr_references_are_removed():
    text = ("- Fixed the parser (#123).\n- #456: Faster import.\n- Better errors :issue:`789` [bug=12].\n"
            "- Retry (PR-#10645, #10646).\n#1, #2\n\n*Related issues and pull requests on GitHub:*\n:issue:`99`.\n")
    assert clean(text) == "- Fixed the parser.\n- Faster import.\n- Better errors.\n- Retry."


def test_roles_and_literals_become_text():
    text = "Use :class:`~pkg.mod.Thing`, :pep:`8`, :ref:`the guide <guide>`, :func:`_pytest.x.run` and ``x=1``."
    assert clean(text) == "Use `Thing`, PEP 8, the guide, `x.run` and `x=1`."


def test_code_blocks_are_dropped_and_the_introducing_sentence_kept():
    rst = ("Call it like this::\n\n    run(fast=True)\n    more()\n\nThen this.\n\n.. code-block:: python\n\n"
           "    x = 1\n\n.. note::\n\n   Keep this note.\n")
    assert clean(rst) == "Call it like this:\n\nThen this.\n\n   Keep this note."
    md = "Before.\n\n```python\nx = 1\n```\n\nAfter.\n"
    assert clean(md, markdown=True) == "Before.\n\nAfter."
    assert "x = 1" in clean(md, markdown=False)   # fences are Markdown only


def test_name_lists_and_markup_noise_are_dropped():
    rst = (".. _release-2.0:\n\nFeatures\n--------\n\n- A feature.\n\nContributors\n------------\n\n- Alice\n- Bob\n\n"
           "Bugfixes\n--------\n\n- A fix.\n\n.. toctree::\n   :maxdepth: 2\n\n<!-- hidden -->\n")
    assert clean(rst) == "Features\n\n- A feature.\n\nBugfixes\n\n- A fix."
    md = "## 1.0\n\n- Thing.\n\n### New Contributors\n\n- @alice\n\n## 0.9\n\n- Old.\n"
    assert clean(md, markdown=True) == "## 1.0\n\n- Thing.\n\n## 0.9\n\n- Old."


def test_repeated_paragraphs_and_short_documents_are_dropped():
    cve = "CVE-2025-0001: Potential denial of service in the template engine was fixed."
    filler = "A long, unique paragraph about a new feature. " * 8
    docs = [{"text": f"Release 1\n\n{cve}\n\n{filler}", "source": "a", "date": "2025-02-01"},
            {"text": f"Release 2\n\n{cve}\n\nShort.\n\n{filler.upper()}", "source": "b", "date": "2025-02-02"},
            {"text": f"Release 3\n\n{cve}", "source": "c", "date": "2025-02-03"}]
    out = drop_repeats(docs)
    assert [d["source"] for d in out] == ["a", "b"]      # c is left with "Release 3" only: under 300 characters
    assert out[0]["text"].count(cve) == 1 and cve not in out[1]["text"]
    assert "Short." in out[1]["text"]                    # paragraphs under 40 characters are never de-duplicated
    assert drop_repeats([{"text": "x " * 200 + "\n\n" + "  " + "x " * 200}])[0]["text"].count("x") == 200


# --- writing -------------------------------------------------------------------------------------------

def test_jsonl_is_deterministic_utf8_in_a_fixed_key_order():
    docs = [{"date": "2025-03-01", "source": "pypi:a==1:N#1", "text": "Café «quoted»\nline two"},
            {"source": "pypi:b==2:M#2", "text": "Second", "date": "2025-03"}]
    data = jsonl_bytes(docs)
    assert data == jsonl_bytes([dict(reversed(list(d.items()))) for d in docs])
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 3
    assert lines[0] == '{"text": "Café «quoted»\\nline two", "source": "pypi:a==1:N#1", "date": "2025-03-01"}'
    assert [json.loads(x)["text"] for x in lines[:2]] == ["Café «quoted»\nline two", "Second"]


def tiny_sdist(folder: Path, name="demo", version="2.0.0") -> Source:
    """A synthetic sdist with a changelog in the pytest style, and its row for the sources table."""
    entries = [("2.0.0", "2026-03-01"), ("1.3.0", "2025-09-01"), ("1.2.0", "2025-02-01"), ("1.1.0", "2024-10-01")]
    text = "Changelog\n=========\n\n" + "".join(
        f"{name} {v} ({d})\n{'=' * 20}\n\n- In {v} the scheduler learned to {'wait and retry ' * (20 + i)}.\n"
        f"- Fixed a crash (#{100 + i}).\n\n" for i, (v, d) in enumerate(entries))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, content in ((f"{name}-{version}/CHANGES.rst", text), (f"{name}-{version}/README", "hello")):
            info = tarfile.TarInfo(path)
            info.size = len(content.encode())
            info.mtime = 0
            tar.addfile(info, io.BytesIO(content.encode()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{version}.tar.gz").write_bytes(buf.getvalue())
    return Source(name, version, hashlib.sha256(buf.getvalue()).hexdigest(), f"{name}-{version}.tar.gz", "MIT",
                  (Member("CHANGES.rst", "heading", r"^" + name + r" (?P<v>\S+) \((?P<d>\d{4}-\d{2}-\d{2})\)\s*$"),))


def test_a_build_from_a_synthetic_sdist_is_deterministic(tmp_path):
    src = tiny_sdist(tmp_path / "cache")
    logs = []
    out, digest, stats = build_unseen_corpus(tmp_path / "a" / "c.jsonl", tmp_path / "cache", download=False,
                                             sources=(src,), manifest=tmp_path / "m.tsv", log=logs.append)
    out2, digest2, _ = build_unseen_corpus(tmp_path / "b.jsonl", tmp_path / "cache", download=False,
                                           sources=(src,), log=logs.append)
    assert digest == digest2 == hashlib.sha256(out.read_bytes()).hexdigest() and out.read_bytes() == out2.read_bytes()
    docs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [(d["source"], d["date"]) for d in docs] == [("pypi:demo==2.0.0:CHANGES.rst#1.3.0", "2025-09-01"),
                                                        ("pypi:demo==2.0.0:CHANGES.rst#2.0.0", "2026-03-01")]
    assert all("#10" not in d["text"] and d["text"].startswith("demo ") for d in docs)
    assert stats["documents"] == 2 and not stats["matches_pinned"] and stats["sources"][0]["first_release"] == "1.3.0"
    assert not any("warning" in m for m in logs)          # other rows than SOURCES are not pinned
    assert (tmp_path / "m.tsv").read_text().splitlines()[1:] == [
        "demo==2.0.0\tCHANGES.rst\t1.1.0\t2024-10-01\tNone\tdropped",
        "demo==2.0.0\tCHANGES.rst\t1.2.0\t2025-02-01\t2024-10-01\tdropped",
        "demo==2.0.0\tCHANGES.rst\t1.3.0\t2025-09-01\t2025-02-01\tkept",
        "demo==2.0.0\tCHANGES.rst\t2.0.0\t2026-03-01\t2025-09-01\tkept"]
    assert "| 1 | `demo==2.0.0` | `CHANGES.rst` | MIT |" in provenance_markdown(stats)


def test_a_cached_sdist_with_other_bytes_is_refused_offline(tmp_path):
    src = tiny_sdist(tmp_path)
    (tmp_path / src.filename).write_bytes(b"not the pinned file")
    with pytest.raises(RunError, match="not in"):
        fetch_sdist(src, tmp_path, download=False)


# --- the command line and the sources table ---------------------------------------------------------

def test_cli_bad_input_exits_2_and_a_failed_download_exits_1_with_one_line(tmp_path, capsys, monkeypatch):
    assert unseen_corpus_main(["--out", str(tmp_path), "--cache", str(tmp_path / "c")]) == 2
    assert unseen_corpus_main(["--cache", __file__, "--out", str(tmp_path / "x.jsonl")]) == 2
    with pytest.raises(SystemExit) as e:
        unseen_corpus_main(["--frobnicate"])
    assert e.value.code == 2
    assert unseen_corpus_main(["--offline", "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "x.jsonl")]) == 1
    failed = subprocess.CompletedProcess([], 1, "", "WARNING: Retrying\nERROR: No matching distribution found\n")
    monkeypatch.setattr(build.subprocess, "run", lambda *a, **k: failed)
    assert unseen_corpus_main(["--cache", str(tmp_path / "c"), "--out", str(tmp_path / "x.jsonl")]) == 1
    err = [x for x in capsys.readouterr().err.splitlines() if "downloading" not in x]
    assert len(err) == 5 and all(x.startswith("unseen_corpus.py: ") for x in err)
    assert "is a folder" in err[0] and "is a file" in err[1] and "not in" in err[3]
    assert "No matching distribution found" in err[4] and "Traceback" not in "".join(err)
    assert not (tmp_path / "x.jsonl").exists()


def test_cli_says_when_the_sha256_differs_from_the_pin_and_keeps_the_file(tmp_path, capsys, monkeypatch):
    src = tiny_sdist(tmp_path / "cache")
    monkeypatch.setattr(build, "SOURCES", (src,))
    out = tmp_path / "u.jsonl"
    assert unseen_corpus_main(["--offline", "--cache", str(tmp_path / "cache"), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert out.is_file() and captured.out.startswith(f"sha256 {hashlib.sha256(out.read_bytes()).hexdigest()}")
    assert f"not the pinned {EXPECTED_SHA256}: the file is kept" in captured.err


def test_the_default_output_sits_in_a_subfolder_that_cache_pruning_leaves_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("LLM_BOUNDS_CACHE", str(tmp_path))
    assert default_output() == tmp_path / "unseen" / "unseen-2025.jsonl"
    default_output().parent.mkdir()
    default_output().write_text("{}\n")
    entry = "0123456789abcdef0123456789abcdef"  # a corpus entry the cache wrote: its marker names it
    (tmp_path / f"{entry}.json").write_text(json.dumps({"format": "corpus-v2", **corpus_marker(entry)}))
    (tmp_path / f"{entry}.train.bin").write_bytes(b"x" * 100)
    assert prune_cache(tmp_path, keep="other", limit=0) == [entry] and default_output().is_file()


def test_every_source_is_pinned_permissive_and_parsable():
    assert len(SOURCES) == 34 and len({s.name for s in SOURCES}) == 34
    for s in SOURCES:
        assert re.fullmatch(r"[0-9a-f]{64}", s.sha256) and s.filename.endswith(".tar.gz"), s.name
        assert re.match(r"(MIT|BSD-[23]-Clause|Apache-2\.0|public domain)\b", s.licence), s.name
        for m in s.members:
            assert m.parser in PARSER_KINDS, s.name
            assert m.parser != "heading" or "(?P<v>" in m.head and re.compile(m.head), s.name


@pytest.mark.slow
def test_the_pinned_corpus_rebuilds_to_its_sha256(tmp_path):
    cache = os.environ.get("LLM_BOUNDS_UNSEEN_CACHE")
    if not cache or not Path(cache).is_dir():
        pytest.skip("set LLM_BOUNDS_UNSEEN_CACHE to a folder holding the 34 pinned sdists "
                    "(python scripts/unseen_corpus.py --cache FOLDER fills one) to rebuild the pinned corpus")
    out, digest, stats = build_unseen_corpus(tmp_path / "unseen.jsonl", cache, download=False, log=lambda m: None)
    assert (stats["documents"], stats["text_bytes"]) == (410, 1_043_484)
    assert digest == EXPECTED_SHA256
