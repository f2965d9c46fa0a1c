"""The dating rule of the unseen corpus (the "development-window" rule) and the version order it uses.

A release section for version V carries a date D(V) printed in the pinned file itself (a heading,
a ``Released ...`` line, a ``:released:`` field, front matter); nothing comes from outside the
file. Text in that section was written during V's development, which started no earlier than the
release that preceded V in its line of development, ``predecessor(V)``:

- the next-lower version in V's series (same major.minor; pre-releases included, ordered as
  dev < a < b < rc < final < post). For calendar-versioned projects with one release line
  (tzdata, xarray) the whole project is one series;
- when V is the first release of its series: the first release of the most recent lower series
  that came out before V (Django 6.0 -> 5.2, pytest 9.0.0 -> 8.4.0; a maintenance series whose
  first release came after V does not count).

**V is kept only if D(predecessor(V)) >= 2025-01-01 and D(V) >= 2025-01-01.** 2025-01-01 leaves a
month of margin after the 2024-11-30 cut-off the corpus is for (Gemma-3's knowledge ends in
August 2024; SmolLM2 was released in November 2024). A version whose predecessor is not in the
same source has no evidence and is dropped, and so is a section without a readable date or version.
A backported fix may carry wording a little older than its release, but never older than the
previous release of its line, which is in 2025 or later for every kept section.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

CUTOFF = dt.date(2024, 11, 30)          # the newest training data of the models the corpus is for
DEV_START_MIN = dt.date(2025, 1, 1)     # a kept section's predecessor (and the section) are this recent

_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)(?:[.-]?(alpha|a|beta|b|rc|c|post|dev)[.-]?(\d*))?")
_TAG_RANK = {"dev": -4, "a": -3, "alpha": -3, "b": -2, "beta": -2, "rc": -1, "c": -1, "": 0, "post": 1}


@dataclass
class Section:
    """One dated release section of one file; ``predecessor_date`` and ``kept`` are set by
    :func:`apply_dating_rule` for sections it could order."""

    version: str
    date: dt.date | None
    precision: str | None               # "day" or "month" (pyparsing prints only the month)
    body: str
    path: str = ""
    predecessor_date: dt.date | None = None
    kept: bool = False

    @property
    def date_text(self) -> str:
        return self.date.isoformat() if self.precision == "day" else self.date.strftime("%Y-%m")


def version_key(version: str) -> tuple | None:
    """A sortable key for a version string: (release padded to 4 numbers, pre/post rank, its number),
    or None when the text does not start with a version."""
    m = _VERSION.match(version)
    if not m:
        return None
    release = tuple(int(x) for x in m.group(1).split("."))
    release = release + (0,) * max(0, 4 - len(release))
    return release, _TAG_RANK[(m.group(2) or "").lower()], int(m.group(3) or 0)


def series_of(key: tuple, one_series: bool = False) -> tuple:
    """The line of development of a version key: its major.minor, or one line for the whole project."""
    return () if one_series else key[0][:2]


def predecessor_dates(release_dates: dict[tuple, dt.date], one_series: bool = False) -> dict[tuple, dt.date | None]:
    """For each version key, the date of its predecessor (see the module's rule), or None when the
    source holds no evidence of one. ``release_dates`` maps version keys to their release dates."""
    keys = sorted(release_dates)
    first_of_series: dict[tuple, dt.date] = {}
    for k in keys:
        s = series_of(k, one_series)
        first_of_series[s] = min(first_of_series.get(s, release_dates[k]), release_dates[k])
    out: dict[tuple, dt.date | None] = {}
    previous_in_series: dict[tuple, tuple] = {}
    for k in keys:
        s = series_of(k, one_series)
        if s in previous_in_series:
            out[k] = release_dates[previous_in_series[s]]
        else:
            lower = [d for ser, d in first_of_series.items() if ser < s and d <= release_dates[k]]
            out[k] = max(lower) if lower else None
        previous_in_series[s] = k
    return out


def apply_dating_rule(sections: list[Section], one_series: bool = False) -> list[Section]:
    """The sections of one source that the rule keeps, in their given order. Every section with a
    date and a version gets ``predecessor_date`` and ``kept`` (the evidence a manifest lists)."""
    dated = [s for s in sections if s.date is not None and version_key(s.version) is not None]
    release_dates: dict[tuple, dt.date] = {}
    for s in dated:   # a version may have two sections (a summary and the notes): its first date counts
        k = version_key(s.version)
        release_dates[k] = min(release_dates.get(k, s.date), s.date)
    before = predecessor_dates(release_dates, one_series)
    for s in dated:
        s.predecessor_date = before[version_key(s.version)]
        s.kept = s.predecessor_date is not None and s.predecessor_date >= DEV_START_MIN and s.date >= DEV_START_MIN
    return [s for s in dated if s.kept]
