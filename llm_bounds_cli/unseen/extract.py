"""Release-notes files out of a pinned sdist, split into dated release sections.

Files are read straight from the tarball (nothing is unpacked to disk), in the order of the
source's members and, within a glob, by path. Each file is split by its member's parser
(:mod:`llm_bounds_cli.unseen.sources` lists the kinds): a section is one version's notes, its
first line the version heading, and its date is always the one printed in the file. Date lines,
which are metadata rather than prose, leave the section's text. Which sections are kept is
decided by the dating rule (:mod:`llm_bounds_cli.unseen.dating`); what is removed from their text
by the cleaning rules (:mod:`llm_bounds_cli.unseen.clean`).
"""
from __future__ import annotations

import datetime as dt
import fnmatch
import re
import tarfile
import textwrap
from pathlib import Path

from llm_bounds.core.errors import RunError
from llm_bounds_cli.unseen.dating import Section
from llm_bounds_cli.unseen.sources import Member, Source

MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december")
UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+_.:])\1{2,}\s*$")     # an RST underline or overline row
ANCHOR = re.compile(r"^\.\. _[^:]+:\s*$")


def read_members(sdist: Path, glob: str) -> list[tuple[str, str]]:
    """``(path, text)`` of every regular file in the tarball whose path below the top folder
    matches ``glob``, sorted by path. Raises :class:`RunError` when none matches."""
    found = []
    with tarfile.open(sdist, "r:*") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            rel = member.name.split("/", 1)[1] if "/" in member.name else member.name
            if fnmatch.fnmatchcase(rel, glob):
                try:
                    found.append((rel, tar.extractfile(member).read().decode("utf-8")))
                except UnicodeDecodeError as e:
                    raise RunError(f"{sdist.name}: {rel} is not UTF-8 ({e.reason}); the pinned file has changed?") from None
    if not found:
        raise RunError(f"{sdist.name}: no file matches {glob!r}; the sources table and the sdist disagree")
    return sorted(found)


def month_number(word: str) -> int | None:
    """1-12 for a month name or an abbreviation of at least three letters ("Sept.", "Dec")."""
    word = word.lower().rstrip(".")
    if len(word) < 3:
        return None
    return next((i for i, name in enumerate(MONTHS, 1) if name.startswith(word)), None)


def parse_date(text: str) -> tuple[dt.date, str] | None:
    """``(date, precision)`` for the date formats the sources print, precision ``"day"`` or
    ``"month"``; None when the text is not a date ("unreleased", "2025-??-??").

    Accepted: 2025-02-18, 2025/02/18, 20250218, "Feb 18, 2025", "February 18th 2025",
    "18 Feb 2025", "2025 Feb 18", and month-only "September, 2025" (the 1st, precision month).
    """
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text.strip().replace(",", " "))
    words = text.split()
    try:
        m = re.fullmatch(r"(\d{4})[-/]?(\d{2})[-/]?(\d{2})", text)
        if m:
            return dt.date(int(m[1]), int(m[2]), int(m[3])), "day"
        if len(words) == 3:
            # (month, day, year) positions: "Feb 18 2025", "18 Feb 2025", "2025 Feb 18"
            for mo, day, year in ((0, 1, 2), (1, 0, 2), (1, 2, 0)):
                month = month_number(words[mo])
                if month and words[day].isdigit() and words[year].isdigit() and len(words[year]) == 4:
                    return dt.date(int(words[year]), month, int(words[day])), "day"
        if len(words) == 2:
            month = month_number(words[0])
            if month and words[1].isdigit() and len(words[1]) == 4:
                return dt.date(int(words[1]), month, 1), "month"
    except ValueError:   # "2025-13-45": digits that name no day
        return None
    return None


def dated_section(version: str, date_text: str | None, body: str) -> Section:
    parsed = parse_date(date_text) if date_text else None
    return Section(version, parsed[0] if parsed else None, parsed[1] if parsed else None, body)


def split_headings(text: str, head: str, date_in_body: str | None = None) -> list[Section]:
    """One section per line matching ``head`` (groups ``v`` and, optionally, ``d``) up to the next.

    Blank lines, underline rows and RST anchors at a section's end belong to the next heading and
    are dropped. Without a ``d`` group the date is the first match of ``date_in_body`` in the six
    lines under the heading, and every body line matching ``date_in_body`` is removed.
    """
    head_re = re.compile(head)
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if head_re.match(line)]
    sections = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        match = head_re.match(lines[start])
        body = lines[start + 1:end]
        while body and (not body[-1].strip() or UNDERLINE.match(body[-1]) or ANCHOR.match(body[-1])):
            body.pop()
        date_text = match.groupdict().get("d")
        if date_text is None and date_in_body:
            found = re.search(date_in_body, "\n".join(body[:6]), re.M)
            if found:
                date_text = found.group("d")
                body = [line for line in body if not re.search(date_in_body, line)]
        title = lines[start].strip().lstrip("#").strip()
        sections.append(dated_section(match.group("v"), date_text, title + "\n\n" + "\n".join(body)))
    return sections


def split_django(text: str) -> list[Section]:
    """A Django release-notes file: ``Django X release notes`` and a ``*Month D, YYYY*`` line (removed).
    A file without a date (a release still under development) gives no section."""
    version = re.search(r"^Django (\S+) release notes", text, re.M)
    date = re.search(r"^\*([A-Z][a-z]+ \d{1,2}, \d{4})\*\s*$", text, re.M)
    if not version or not date:
        return []
    return [dated_section(version.group(1), date.group(1), text[:date.start()] + text[date.end():])]


def split_changelog_blocks(text: str, label: str = "SQLAlchemy") -> list[Section]:
    """SQLAlchemy-style ``.. changelog::`` blocks: ``:version:``, one or more ``:released:`` (the
    earliest counts: first publication), and ``.. change::`` entries whose field lines are dropped.
    The section's text is "LABEL VERSION" and the entries, one paragraph each."""
    sections = []
    for block in re.split(r"^\.\. changelog::\s*$", text, flags=re.M)[1:]:
        version = re.search(r"^\s+:version:\s*(\S+)", block, re.M)
        dates = [parse_date(x) for x in re.findall(r"^\s+:released:\s*(.+?)\s*$", block, re.M)]
        dates = [d for d, _ in filter(None, dates)]
        if not version or not dates:
            continue
        entries = []
        for change in re.split(r"^\s+\.\. change::\s*$", block, flags=re.M)[1:]:
            change = "\n".join(line for line in change.split("\n") if not re.match(r"^\s+:\w+:(?:\s|$)", line))
            entries.append(textwrap.dedent(change).strip())
        body = f"{label} {version.group(1)}\n\n" + "\n\n".join(e for e in entries if e)
        sections.append(Section(version.group(1), min(dates), "day", body))
    return sections


def split_blogpost(text: str) -> list[Section]:
    """A Markdown post with front matter: the date from ``date:``, the version from the ``# title``
    (which loses its ``#``)."""
    front = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    if not front:
        return []
    date = re.search(r"^date:\s*(\d{4}-\d{2}-\d{2})", front.group(1), re.M)
    body = text[front.end():]
    version = re.search(r"^# .*?(\d+\.\d+\.\d+)", body, re.M)
    if not date or not version:
        return []
    return [dated_section(version.group(1), date.group(1), re.sub(r"^# (.*)$", r"\1", body, count=1, flags=re.M))]


def split_member(member: Member, text: str) -> list[Section]:
    """The release sections of one file, by the member's parser."""
    if member.parser == "heading":
        return split_headings(text, member.head, member.date_in_body)
    if member.parser == "django":
        return split_django(text)
    if member.parser == "sqlalchemy":
        return split_changelog_blocks(text, member.label)
    if member.parser == "blogpost":
        return split_blogpost(text)
    raise ValueError(f"unknown parser {member.parser!r}")


def source_sections(source: Source, sdist: Path) -> list[Section]:
    """Every release section of a source's files, with its path set, in member, path and file order."""
    sections = []
    for member in source.members:
        for path, text in read_members(sdist, member.glob):
            for section in split_member(member, text):
                section.path = path
                sections.append(section)
    return sections
