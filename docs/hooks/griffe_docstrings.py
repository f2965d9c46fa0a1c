"""Griffe extension for the API pages: the library's docstrings are written for readers of the code
(Sphinx roles such as :func:`name`, reStructuredText simple tables); this turns them into what
mkdocstrings renders, without touching the source:

* a role whose target is documented on the site becomes a cross-reference (``[`name`][path]``), so
  that ``mkdocs build --strict`` fails if it stops resolving; any other target (private, imported
  from elsewhere, without a docstring) becomes plain code;
* a simple table (rows between ``===  ===`` borders) becomes a Markdown table;
* characters Markdown would read as emphasis inside formulas (``a1*a2``, the ``_`` after a
  combining accent in ``R̂_m``) are escaped, outside code;
* a bullet list right under a line of text gets the blank line Markdown needs before it;
* an aligned list under a heading line (``Arguments:`` then indented ``name   description``
  lines, continued by deeper-indented lines) becomes a two-column Markdown table.
"""
from __future__ import annotations

import re

import griffe

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):`(~?)([^`]+)`")
BORDER = re.compile(r"^(\s*)=+( +=+)+\s*$")
HEADING = re.compile(r"^(\S.*):\s*$")
ENTRY = re.compile(r"^( +)(\S.*?)\s{2,}(\S.*)$")
NAMES = re.compile(r"^([\w.]+(?:, [\w.]+)*)\s+(\S.*)$")  # an entry: a name, or a comma list of names
CODE = re.compile(r"(``.*?``|`[^`]*`)")
LITERAL = re.compile(r"(?<=[\w])\*(?=[\w])|(?<=[\u0300-\u036f])_")  # a1*a2; R̂_m (after an accent)


def _linkable(obj) -> bool:
    """Whether mkdocstrings renders ``obj`` on an API page (the site renders every public module
    of the library, and the public members with a docstring)."""
    if any(part.startswith("_") for part in obj.path.split(".")):
        return False
    if obj.is_module:
        return not obj.is_init_module
    while not obj.is_module:
        if not obj.docstring:
            return False
        obj = obj.parent
    return True


def _resolve(target: str, obj, collection):
    """The object ``target`` names from inside ``obj`` (absolute, or relative to obj's scopes)."""
    candidates = [target] if target.startswith("llm_bounds") else []
    scope = obj
    while scope is not None:
        candidates.append(f"{scope.path}.{target}")
        scope = scope.parent
    for path in candidates:
        try:
            found = collection.get_member(path)
            if found.is_alias:
                found = found.final_target
            return found
        except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
            continue
    return None


def convert_roles(text: str, obj, collection) -> str:
    def replace(match):
        short, target = match.group(1) == "~", match.group(2).strip().rstrip("()")
        shown = target.rsplit(".", 1)[-1] if short else target
        found = _resolve(target, obj, collection)
        if found is not None and _linkable(found):
            return f"[`{shown}`][{found.path}]"
        return f"`{shown}`"
    return ROLE.sub(replace, text)


def convert_tables(text: str) -> str:
    """reStructuredText simple tables (header, border, rows; a row whose first cell is blank
    continues the row above) as Markdown tables."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        match = BORDER.match(lines[i])
        ends = [j for j in range(i + 1, len(lines)) if BORDER.match(lines[j])] if match else []
        if len(ends) < 2:
            out.append(lines[i])
            i += 1
            continue
        starts = [m.start() for m in re.finditer(r"=+", lines[i])]

        def cells(line):
            bounds = starts[1:] + [None]
            return [line[a:b].strip() for a, b in zip(starts, bounds)]
        header = [cells(line) for line in lines[i + 1:ends[0]]]
        rows: list[list[str]] = []
        for line in lines[ends[0] + 1:ends[1]]:
            if not line.strip():
                continue
            row = cells(line)
            if rows and not row[0]:
                rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], row)]
            else:
                rows.append(row)
        head = [" ".join(parts).strip() for parts in zip(*header)] if header else [""] * len(starts)
        indent = match.group(1)
        out += [indent + "| " + " | ".join(map(_escape, head)) + " |", indent + "|" + "---|" * len(starts)]
        out += [indent + "| " + " | ".join(map(_escape, row)) + " |" for row in rows]
        i = ends[1] + 1
    return "\n".join(out)


def escape_formulas(text: str) -> str:
    """``*`` between word characters and ``_`` after a combining accent, escaped outside code."""
    out = []
    for line in text.splitlines():
        if not line.startswith("    "):  # an indented block is code: left as it is
            line = "".join(part if CODE.fullmatch(part) else LITERAL.sub(lambda m: "\\" + m.group(0), part)
                           for part in CODE.split(line))
        out.append(line)
    return "\n".join(out)


def separate_lists(text: str) -> str:
    """A blank line before a ``*`` or ``-`` list that starts right under a line of text."""
    out: list[str] = []
    for line in text.splitlines():
        item = re.match(r"^[*-] ", line)
        if item and out and out[-1].strip() and not re.match(r"^\s*[*-] |^\s{2,}\S", out[-1]):
            out.append("")
        out.append(line)
    return "\n".join(out)


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def convert_definitions(text: str) -> str:
    """An unindented ``Heading:`` line followed by at least two aligned ``name   description``
    entries as a bold heading and a table (the layout of the argument lists here)."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        head = HEADING.match(lines[i])
        first = ENTRY.match(lines[i + 1]) if head and i + 1 < len(lines) else None
        if first:
            indent, rows, j = len(first.group(1)), [], i + 1
            while j < len(lines) and lines[j].strip():
                line = lines[j]
                depth = len(line) - len(line.lstrip())
                entry = NAMES.match(line.strip()) if depth == indent else None
                if entry:
                    rows.append([entry.group(1), entry.group(2)])
                elif depth > indent and rows:
                    rows[-1][1] += " " + line.strip()
                else:
                    break
                j += 1
            if len(rows) >= 2:
                out += [f"**{head.group(1)}:**", "", "| name | description |", "|---|---|"]
                out += [f"| `{_escape(name)}` | {_escape(text)} |" for name, text in rows]
                out.append("")
                i = j
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


class SphinxDocstrings(griffe.Extension):
    """Rewrite every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg, loader, **kwargs):
        collection = loader.modules_collection
        stack = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring:
                text = convert_definitions(convert_tables(separate_lists(escape_formulas(obj.docstring.value))))
                obj.docstring.value = convert_roles(text, obj, collection)
            stack.extend(member for member in obj.members.values() if not member.is_alias)
