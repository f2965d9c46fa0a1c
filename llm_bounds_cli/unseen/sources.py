"""The pinned sources of the unseen corpus: 34 PyPI source distributions (sdists) and the
release-notes files read from each.

Every row pins a name, a version and the sha256 of the sdist file. PyPI never replaces a file
once uploaded, so a pinned row always names the same bytes; the builder refuses any other bytes.
Each :class:`Member` names a glob (relative to the sdist's top folder) and the parser that splits
the file into dated release sections (:mod:`llm_bounds_cli.unseen.extract`):

- ``heading``: one section per line matching ``head``; the date is the heading's ``d`` group, or
  the first match of ``date_in_body`` in the six lines after it;
- ``django``: one file is one release (``Django X release notes`` and a ``*Month D, YYYY*`` line);
- ``sqlalchemy``: ``.. changelog::`` blocks with ``:version:`` and ``:released:`` fields
  (SQLAlchemy and Alembic);
- ``blogpost``: a Markdown post whose front matter holds ``date:`` (the Zarr release posts).

Licences (read from each sdist's licence file and metadata; every one is permissive):

- BSD-3-Clause: Django, astropy, Scrapy, click, Werkzeug, Python-Markdown, psutil, django-debug-toolbar;
- BSD-2-Clause: Sphinx, Numba;
- MIT: SQLAlchemy, Alembic, pytest, pip, attrs, Twisted, urllib3, pyparsing, Beautiful Soup, SQLFluff, Zarr;
- MIT OR Apache-2.0: Trio, structlog;
- Apache-2.0: coverage.py, xarray, aiohttp, yarl, Cython, Tornado, Certbot, PyMongo, Falcon;
- tzdata: Apache-2.0 (the package); its NEWS.md repeats the IANA tz release notes, which tz places
  in the public domain;
- docutils: ``RELEASE-NOTES.rst`` says "This document has been placed in the public domain".

The documentation and changelogs are in the same repository as the code and under the same licence.
Only this table and the code that reads it are shipped, never the text.
"""
from __future__ import annotations

from dataclasses import dataclass

PARSER_KINDS = ("heading", "django", "sqlalchemy", "blogpost")

# Heading patterns used by several sources.
ISO = r"(?P<d>\d{4}-\d{2}-\d{2})"
VERSION_ISO = r"^(?P<v>\d[\w.]*) \(" + ISO + r"\)\s*$"       # "3.11.13 (2025-02-24)"
KEEPACHANGELOG = r"^## \[(?P<v>[^\]]+)\]\(.*\) - " + ISO + r"\s*$"   # "## [25.2.0](url) - 2025-03-12"


@dataclass(frozen=True)
class Member:
    """Files of one sdist (a glob) and how to split them into dated release sections."""

    glob: str
    parser: str = "heading"
    head: str | None = None           # heading: the regex of a version heading (groups v, optional d)
    date_in_body: str | None = None   # heading: the regex of the date line under it (group d)
    label: str = "SQLAlchemy"         # sqlalchemy: the product name written before the version


@dataclass(frozen=True)
class Source:
    """One pinned sdist."""

    name: str
    version: str
    sha256: str
    filename: str                     # the file's name on PyPI (and in the cache folder)
    licence: str
    members: tuple[Member, ...]
    one_series: bool = False          # calendar versions with one release line (tzdata, xarray)

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


def _src(name, version, sha256, licence, *members, filename=None, one_series=False) -> Source:
    return Source(name, version, sha256, filename or f"{name}-{version}.tar.gz", licence, tuple(members), one_series)


def _head(glob, head, date_in_body=None) -> Member:
    return Member(glob, "heading", head, date_in_body)


SOURCES: tuple[Source, ...] = (
    _src("django", "6.1.3", "b5d2d9e35295065d13b1927b3f19a59bd119f737aa6299def14ccca1ae3c8c0d", "BSD-3-Clause",
         Member("docs/releases/[0-9]*.txt", "django")),
    _src("sqlalchemy", "2.1.9", "d700a8b2edfb26282a470333d6bc4a454c4acda4d201a3bea7b72fa76c217d28", "MIT",
         Member("doc/build/changelog/changelog_20.rst", "sqlalchemy"),
         Member("doc/build/changelog/changelog_21.rst", "sqlalchemy")),
    _src("tzdata", "2026.6", "85d2cd9c09f81f0bb29db27759fc83af4f1e620efb814f8c5bf8b4cc4feece6d",
         "Apache-2.0 (package); IANA tz NEWS text: public domain",
         _head("NEWS.md", r"^# Version (?P<v>\S+)\s*$", r"released " + ISO), one_series=True),
    _src("coverage", "7.17.5", "4f41d35b798714a2e79ec2097d6b03c92cd3b7de58e422fce7a1ca2c0c25b276", "Apache-2.0",
         _head("CHANGES.rst", r"^Version (?P<v>\S+) \u2014 " + ISO + r"\s*$")),
    _src("pytest", "9.2.0", "97c4f3b1f3c7414aa36465e09b8220f1d03627993bd51b1282e193753c80557b", "MIT",
         _head("doc/en/changelog.rst", r"^pytest (?P<v>\S+) \(" + ISO + r"\)\s*$")),
    _src("pip", "26.3", "6c36ae7da8695be67e3cd9f7d87919667ced53f57ce2ede75d89b5912ed2bc4c", "MIT",
         _head("NEWS.rst", VERSION_ISO)),
    _src("sphinx", "9.2.0", "90470459f3cab15d9dfed146c71cf77694b0445df17b2e0e69059cb9f7fc9ee4", "BSD-2-Clause",
         _head("doc/changes/[0-9]*.rst", r"^Release (?P<v>\S+) \(released (?P<d>\w+ \d{1,2}, \d{4})\)\s*$")),
    _src("attrs", "26.1.0", "d03ceb89cb322a8fd706d4fb91940737b6642aa36998fe130a9bc96c985eff32", "MIT",
         _head("CHANGELOG.md", KEEPACHANGELOG)),
    _src("astropy", "8.0.2", "e6af35823099ad6a40b57dbe5ff845f577374ea131925c9fa4b49eeab06c5310", "BSD-3-Clause",
         _head("CHANGES.rst", r"^Version (?P<v>\S+) \(" + ISO + r"\)\s*$")),
    _src("xarray", "2026.9.0", "6abc69694c22fa1f0fb2f357ff4e41d88beb4477ed71091f944b7dbf67ed54fe", "Apache-2.0",
         _head("doc/whats-new.rst", r"^v(?P<v>\d[\w.]*) \((?P<d>[^)]*\d{4}[^)]*)\)\s*$"), one_series=True),
    _src("trio", "0.35.0", "7efb295c78a0ecd1235c5759e620b5da564ca80d2efcb0055423588547248b96", "MIT OR Apache-2.0",
         _head("docs/source/history.rst", r"^[Tt]rio (?P<v>\S+) \(" + ISO + r"\)\s*$")),
    _src("scrapy", "2.19.0", "34130726582b64c91531162ab277c4053e558876d49ba219cb43679e71d80a87", "BSD-3-Clause",
         _head("docs/news.rst", r"^Scrapy (?P<v>\S+) \(" + ISO + r"\)\s*$")),
    _src("twisted", "26.10.0", "5f0355403e507fc23ceea85e9dbb4bc59335aabde41dd324e8b8cea180dd38de", "MIT",
         _head("NEWS.rst", r"^[Tt]wisted (?P<v>\S+) \(" + ISO + r"\)\s*$")),
    _src("urllib3", "2.8.0", "63bf2ead4c879426ebf22ef2a781eeb4aa3b4ae798a0435506f8687fd5bb9b63", "MIT",
         _head("CHANGES.rst", VERSION_ISO)),
    _src("pyparsing", "3.3.3", "928ae7e20211f3b6f3915a72f06a0cfd29ab9d24279dd6346b6b1a7146397d36", "MIT",
         _head("CHANGES", r"^Version (?P<v>\d\S*) - (?P<d>[A-Z][a-z]+,? \d{4})\s*$")),
    _src("click", "8.5.1", "9bbfada76703fd1d784b83eea012e3e8c6a001a876543ef104fa56aaaeb072b4", "BSD-3-Clause",
         _head("CHANGES.md", r"^## Version (?P<v>\S+)\s*$", r"^Released " + ISO)),
    _src("markdown", "3.11.3", "81eb91631dc97ad1efbc76019ef0f80fe90ca49ddf81546752d79989c3bfff3e", "BSD-3-Clause",
         _head("docs/changelog.md", r"^## \[(?P<v>[^\]]+)\] - " + ISO + r"\s*$")),
    _src("alembic", "1.20.1", "83490def1f723413db5096591f7609ac52544805be93849170088ed04f5a2e0b", "MIT",
         Member("docs/build/changelog.rst", "sqlalchemy", label="Alembic")),
    _src("aiohttp", "3.14.5", "5558a7f5a05af9ecf744af91e5baefc436f93c9333e656c27ec253f9a6bbe178", "Apache-2.0",
         _head("CHANGES.rst", VERSION_ISO)),
    _src("yarl", "1.25.1", "03dd38de09bc213e9a8b29761eec33ee1d5318dac0e49d8af36e4d27830e23a7", "Apache-2.0",
         _head("CHANGES.rst", r"^(?P<v>\d+\.\d+\.\d+)\s*$", r"^\*\(" + ISO + r"\)\*")),
    _src("cython", "3.3.1", "e0e45989e821bef6aa9ae15c7d583ab5e055f7406c4b3624e49e06d24e90375a", "Apache-2.0",
         _head("CHANGES.rst", r"^(?P<v>\d[\w.]*) \((?P<d>[0-9?-]+)\)\s*$")),
    _src("tornado", "6.6.1", "28e6311402af59c8b02e3fa0f5e7d8eb465b25081381803b127d97e6a4395d5a", "Apache-2.0",
         _head("docs/releases/v*.rst", r"^What's new in Tornado (?P<v>\S+)\s*$",
               r"^(?P<d>[A-Z][a-z]{2,8}\.? \d{1,2},? \d{4})\s*$")),
    _src("psutil", "7.2.2", "0746f5f8d406af344fd547f1c8daa5f5c33dbc293bb8d6a16d80b4bb88f59372", "BSD-3-Clause",
         _head("HISTORY.rst", r"^(?P<v>\d+\.\d+\.\d+)\s*$", r"^" + ISO + r"\s*$")),
    _src("beautifulsoup4", "4.15.0", "288e3ca7d54b06f2ac191970bc275c1939cb46d450b255bf6718b04aa37ab4f7", "MIT",
         _head("CHANGELOG", r"^= (?P<v>\S+) \((?P<d>\d{8})\)\s*$")),
    _src("werkzeug", "3.1.9", "55ca7c70a75689be937aa27f8ff4b018f06ff4838fc73045560bf0f5a1291060", "BSD-3-Clause",
         _head("CHANGES.rst", r"^Version (?P<v>\d\S*)\s*$", r"^Released " + ISO)),
    _src("certbot", "5.8.0", "a4a2c7b0459bb626b3791ef07b6df26bbb222d2324783ba3e60f76c0933eec87", "Apache-2.0",
         _head("CHANGELOG.md", r"^## (?P<v>\d\S*) - " + ISO + r"\s*$")),
    _src("structlog", "26.1.0", "f63a716cbd1b1291cf7661de7794b455acfa4c43c5bcf1630e6ad5ddc1adb3b7", "MIT OR Apache-2.0",
         _head("CHANGELOG.md", KEEPACHANGELOG)),
    _src("django-debug-toolbar", "8.0.0", "cae32d3e441e608f39f3f1ca6b3f028c38d5d04d74c98d8ab96d46022dee3163",
         "BSD-3-Clause", _head("docs/changes.rst", VERSION_ISO), filename="django_debug_toolbar-8.0.0.tar.gz"),
    _src("sqlfluff", "4.5.0", "0b0d5b2cca03e7d138b8d899249fed5fa54083e407bbd161449c0b30f901b7b8", "MIT",
         _head("CHANGELOG.md", r"^## \[(?P<v>[^\]]+)\] - " + ISO + r"\s*$")),
    _src("pymongo", "4.20.1", "1ac112b3ffa3d010cfc2fc54e3ae677a12c63d18c6115db4451df64f1a1175eb", "Apache-2.0",
         _head("doc/changelog.rst", r"^Changes in Version (?P<v>\S+) \((?P<d>\d{4}/\d{2}/\d{2})\)\s*$")),
    _src("falcon", "4.4.0", "9f3ffbddc8baed4573295642eddb18a37eea37baba9f20c5be379c8b3d3d79e6", "Apache-2.0",
         _head("docs/changes/[0-9]*.rst", r"^Changelog for Falcon (?P<v>\S+)\s*$", r"^\.\. falcon-release: " + ISO)),
    _src("zarr", "3.4.2", "645d64f292f457120fc0ca18dbe38f665b4c21aaea38a2a88b5eead8f06f3d28", "MIT",
         _head("docs/release-notes.md", r"^## (?P<v>\d[\w.]*) \(" + ISO + r"\)\s*$"),
         Member("docs/blog/posts/*-release.md", "blogpost")),
    _src("numba", "0.68.1", "9de461812470173a14eeb7e0bbd27c897dffe835402a33861166842fc5f6ea57", "BSD-2-Clause",
         _head("docs/source/release/*-notes.rst", r"^Version (?P<v>\d\S*) \((?P<d>\d{1,2} [A-Z][a-z]+ \d{4})\)\s*$")),
    _src("docutils", "0.23", "746f5060322511280a1e50eb76846ed6bf2342984b2ac04dc42caa1a8d78799e",
         "public domain (RELEASE-NOTES.rst)", _head("RELEASE-NOTES.rst", r"^Release (?P<v>\S+) \(" + ISO + r"\)\s*$")),
)
