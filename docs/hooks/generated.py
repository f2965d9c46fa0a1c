"""MkDocs hook: the parts of the site generated at build time from the code itself.

* ``<!-- command-reference: NAME -->`` becomes the reference of command NAME (a key of
  ``llm_bounds_cli.reference.COMMANDS``), rendered from its argparse parser by
  :func:`llm_bounds_cli.reference.command_markdown`; every command must have a page.
* ``<!-- api-modules: PACKAGE [MODULE ...] -->`` becomes one mkdocstrings directive per module of
  PACKAGE (the named modules first, in that order, then the others alphabetically), so that a new
  module appears on the API pages without an edit here.
* ``<!-- include: FILE -->`` becomes the text of FILE (a Markdown file at the repository's root,
  such as BENCHMARKS.md), its relative links rewritten for the including page, so that the site
  shows the record itself rather than a copy.

An unknown name fails the build.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]

COMMAND = re.compile(r"<!--\s*command-reference:\s*([a-z_ -]+?)\s*-->")
API = re.compile(r"<!--\s*api-modules:\s*([a-z_.]+)((?:\s+[a-z_]+)*)\s*-->")
INCLUDE = re.compile(r"<!--\s*include:\s*([\w.-]+\.md)\s*-->")
LINK = re.compile(r"(\]\()([^)\s#:]+)(\))")  # a relative Markdown link or image
_seen: set[str] = set()


def included(name: str, page_path: str) -> str:
    """The root file ``name``, its relative links made relative to ``page_path`` (under docs/)."""
    source = ROOT / name
    if not source.is_file() or source.parent != ROOT:
        raise PluginError(f"include: {name} is not a file at the repository's root")
    here = (ROOT / "docs" / page_path).parent

    def relink(match):
        return match.group(1) + os.path.relpath(ROOT / match.group(2), here) + match.group(3)
    return LINK.sub(relink, source.read_text())


def package_modules(package: str, first: list[str]) -> list[str]:
    """The modules of ``package`` (a dotted name under this checkout), ``first`` leading."""
    folder = ROOT.joinpath(*package.split("."))
    if not (folder / "__init__.py").is_file():
        raise PluginError(f"api-modules: {package} is not a package of this checkout")
    names = sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "__main__"))  # __main__: a program
    unknown = [n for n in first if n not in names]
    if unknown:
        raise PluginError(f"api-modules: {package} has no module {', '.join(unknown)}")
    return first + [n for n in names if n not in first]


def on_config(config, **kwargs):
    # this checkout's packages, as scripts/ does (not at import: MkDocs restores sys.path after
    # loading a hook, and an editable install of another checkout would then win)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return config


def on_pre_build(config, **kwargs):
    _seen.clear()


def on_page_markdown(markdown, page, config, files, **kwargs):
    from llm_bounds_cli.reference import COMMANDS, command_markdown

    def command(match):
        name = match.group(1)
        if name not in COMMANDS:
            raise PluginError(f"{page.file.src_uri}: no command {name!r}; known: {', '.join(COMMANDS)}")
        _seen.add(name)
        return command_markdown(name)

    def api(match):
        package, first = match.group(1), match.group(2).split()
        return "\n\n".join(f"::: {package}.{name}" for name in package_modules(package, first)) + "\n"

    markdown = INCLUDE.sub(lambda match: included(match.group(1), page.file.src_path), markdown)
    return API.sub(api, COMMAND.sub(command, markdown))


def on_post_build(config, **kwargs):
    from llm_bounds_cli.reference import COMMANDS

    missing = sorted(set(COMMANDS) - _seen)
    if missing:
        raise PluginError(f"commands with no reference page: {', '.join(missing)}; add "
                          "<!-- command-reference: NAME --> to a page under docs/commands/")
