"""The cleaning rules of the unseen corpus: light, rule-based removal of markup noise, then a global
removal of repeated paragraphs and of documents left too short.

:func:`clean`, on one section's text, in this order:

1. **Noise.** HTML comments; RST link targets and anchors (``.. _x: url``), ``__ url`` and
   Markdown reference definitions; structural directives (toctree, changelog, change, contents,
   include, image, ...) and their ``:field:`` lines; underline and overline rows. Admonition
   markers (``.. note::``, ``.. warning::``, ``.. versionadded::``, ...) go, their text stays.
2. **Code.** RST code directives (code-block, doctest, ipython, ...) and ``::`` literal blocks
   go with their indented content; the sentence that introduces a literal block stays, ending in
   ``:``. Markdown fenced blocks go (in ``.md`` files).
3. **List-like sub-sections** go with their content: Contributors, Acknowledgements, Authors,
   Vendored Libraries, Issues closed, Pull requests, Full changelog, New contributors, Thanks,
   Issues resolved, What's Changed; and the label lines ``Pull-Requests:``, ``Pull requests:``,
   ``Authors:``, ``Contributors:`` with everything up to the next heading.
4. **Links become their text**: ```text <url>`_`` and ``[text](url)`` and ``[text][ref]`` become
   ``text``, ``<url>`` becomes ``url``; bare URLs stay.
5. **Issue and PR references go**: roles (``:issue:``, ``:pr:``, ``{pr}``, ``:gh:``, ...),
   bracketed or parenthesised numbers (``(#123)``, ``[#1, #2]``, ``(PR-#10645)``, ``[bug=123]``),
   a leading ``#123:`` or ``2667_,`` on a list item, lines holding only references, the
   "Related issues and pull requests on GitHub:" lines, and parentheses these removals left empty.
   Other Sphinx/MyST roles become their display text (:func:`render_role`: ``:class:`~a.b.C```
   -> ```C```, ``:ref:`text <x>``` -> ``text``, ``:pep:`8``` -> ``PEP 8``) and RST ````lit````
   becomes ```lit```.
6. **Whitespace.** Line ends stripped; lines left with punctuation only dropped; at most one
   blank line in a row.

Then, over all documents in output order (:func:`drop_repeats`): a paragraph of at least
40 characters (whitespace-normalised) is dropped when the same text was already emitted (the
same CVE text in several Django branches' notes, SQLAlchemy 2.0 entries repeated in 2.1), and a
document left with fewer than 300 characters is dropped.
"""
from __future__ import annotations

import re

MIN_DOC_CHARS = 300          # documents shorter than this after cleaning are dropped
MIN_DEDUP_PARA_CHARS = 40    # only paragraphs at least this long take part in the duplicate check

UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+_.:])\1{2,}\s*$")
MD_HEADING = re.compile(r"^(#{1,6})\s")
LABEL_DROP = re.compile(r"^(?:Pull-Requests|Pull requests|Authors|Contributors):\s*$")
DROP_SUBSECTIONS = re.compile(
    r"^(vendored libraries|contributors?|acknowledge?ments|authors|issues closed.*|"
    r"pull requests.*|full changelog|new contributors|thanks|issues resolved|what[\u2019']s changed)\s*:?\s*$", re.I)

# rule 1: noise
COMMENT_HTML = re.compile(r"<!--.*?-->", re.S)
DIRECTIVE_DROP = re.compile(
    r"^\s*\.\. (?:changelog|change|toctree|contents|currentmodule|module|py:currentmodule|"
    r"highlight|default-role|include|raw|only|rst-class|index|meta|autosummary|"
    r"towncrier-draft-entries|changelog_imports|role|image|figure)::.*$")
FIELD_LINE = re.compile(r"^\s*:(?:tags|tickets|versions|maxdepth|include_notes_from|released|"
                        r"version|local|depth|Release|Date|start-line|orphan|tocdepth|"
                        r"Author|Contact|Revision|Web site|Copyright|caption|linenos|"
                        r"emphasize-lines|dedent|name|class):(?:\s.*)?$")
LINK_TARGET = re.compile(r"^\s*(?:\.\. _[^:]*:.*|__ \S.*|\.\. __:.*|\[[^\]]+\]:\s+\S+.*)$")
ADMONITION = re.compile(r"^(\s*)\.\. (?:warning|note|important|attention|caution|tip|hint|danger|"
                        r"error|admonition|versionadded|versionchanged|deprecated|seealso)::\s*")
# rule 2: code
CODE_DIRECTIVE = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode|doctest|testcode|"
                            r"testoutput|ipython|parsed-literal|literalinclude|jupyter-execute)::.*$")
MD_FENCE = re.compile(r"^\s*(`{3,}|~{3,})[^`~]*$")
# rule 4: links, in this order
LINKS = (
    (re.compile(r"`([^`<]*?)\s*<[^`>]+>`__?"), r"\1"),           # `text <url>`_
    (re.compile(r"`([^`]+)`__?(?=\W|$)"), r"\1"),                # `text`_
    (re.compile(r"!?\[([^\]]+)\]\([^)]*\)"), r"\1"),             # [text](url), ![alt](img)
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),              # [text][ref]
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),                # <url>
)
# rule 5: references
REF = r"(?:[\w.-]+/[\w.-]+)?(?:PR[- ]?)?(?:#|gh-|GH-|bpo-)\d+"
REF_GROUP = re.compile(r"[ \t]*[\(\[]\s*(?:(?:" + REF + r")\s*[,;]?\s*(?:and\s+)?)+[\)\]]")
REF_ONLY_LINE = re.compile(r"^\s*[-*]?\s*(?:(?:" + REF + r")[\s,;.]*(?:and\s+)?)+$")
LEAD_REF = re.compile(r"^(\s*(?:[-*+]|\d+\.)?\s*)(?:" + REF + r"[,\s]*)+:\s*")
ROLE_REF = re.compile(r"[:{](?:issue|issues|pr|pull|gh|ghissue|ghpull|bug|ticket|commit|sha|bpo)[:}]`[^`]*`")
BUG_REF = re.compile(r"[ \t]*\[bug=[\d,\s]+\]")
FOOTNOTE_REF = re.compile(r"^(\s*[-*]\s+)(?:\d+_[,:]?\s*)+,?\s*")          # psutil: "- 2667_, [macOS]: ..."
RELATED_LINE = re.compile(r"^\s*\*?(?:Related issues and pull requests on GitHub|Related commits on GitHub):?\*?:?\s*$")
EMPTY_REF_PAREN = re.compile(r"[ \t]*\((?:\s|,|;|and|see|(?:Git[Hh]ub|GH)|issues?|PRs?|pull requests?|tickets?|bugs?|#)*\)")
ROLE = re.compile(r"(?::(?P<r1>[\w:.+-]+):|\{(?P<r2>[\w:.+-]+)\})`(?P<t>[^`]*)`")
PLAIN_ROLES = {"ref", "doc", "term", "user", "abbr", "guilabel", "menuselection", "dfn", "title",
               "pypi", "numref", "download", "std:ref", "std:doc", "manpage", "sup", "sub"}
NAMED_ROLES = ("pep", "rfc", "cve", "cwe")


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def is_rst_heading(lines: list[str], i: int) -> bool:
    """Whether line ``i`` is a title with an underline row below it."""
    return i + 1 < len(lines) and bool(lines[i].strip()) and bool(UNDERLINE.match(lines[i + 1]))


def drop_blocks(lines: list[str], markdown: bool = False) -> list[str]:
    """Rules 2 and 3: the lines without code blocks and without the list-like sub-sections."""
    out: list[str] = []
    i, n = 0, len(lines)
    while i < n:
        line = lines[i]
        fence = MD_FENCE.match(line) if markdown else None
        if fence:   # up to and including the closing fence
            i += 1
            while i < n and not lines[i].strip().startswith(fence.group(1)):
                i += 1
            i += 1
            continue
        code = CODE_DIRECTIVE.match(line)
        literal = not code and line.rstrip().endswith("::") and not line.lstrip().startswith("..")
        if code or literal:   # the directive or "...::" line, then everything indented deeper
            base = indent_of(line)
            if literal:
                intro = line.rstrip()[:-2].rstrip()
                if intro:
                    out.append(intro if intro.endswith(":") else intro + ":")
            i += 1
            while i < n and (not lines[i].strip() or indent_of(lines[i]) > base):
                i += 1
            out.append("")
            continue
        if LABEL_DROP.match(line):   # up to the next heading
            i += 1
            while i < n and not is_rst_heading(lines, i) and not MD_HEADING.match(lines[i]):
                i += 1
            continue
        md_title = re.match(r"^#{2,6}\s+(.*)$", line)
        title = md_title.group(1).strip() if md_title else (line.strip() if is_rst_heading(lines, i) else None)
        if title and DROP_SUBSECTIONS.match(title.strip("*_ ")):   # up to the next heading of its level or above
            level = len(line) - len(line.lstrip("#")) if md_title else None
            i += 1 if md_title else 2
            while i < n:
                if not md_title and is_rst_heading(lines, i):
                    break
                heading = MD_HEADING.match(lines[i])
                if heading and (level is None or len(heading.group(1)) <= level):
                    break
                i += 1
            continue
        out.append(line)
        i += 1
    return out


def render_role(m: re.Match) -> str:
    """A Sphinx or MyST role as text: ``:ref:`text <x>``` -> text, ``:pep:`8``` -> PEP 8,
    ``:class:`~a.b.C``` -> `C`, ``:meth:`!x``` -> `x`; a leading private module (``_pytest.``) goes."""
    role = (m.group("r1") or m.group("r2")).lower()
    text = m.group("t").strip()
    target = re.match(r"^(.*?)\s*<[^<>]*>$", text, re.S)
    explicit = bool(target and target.group(1))
    if explicit:
        text = target.group(1)
    elif target:
        text = text.strip("<>")
    if role in NAMED_ROLES:
        return f"{role.upper()} {text}"
    if role in PLAIN_ROLES:
        return text
    if explicit:
        return f"`{text}`"
    text = text.lstrip("!")
    if text.startswith("~"):
        text = text[1:].split(".")[-1]
    text = re.sub(r"^\.?_?[a-z]+\.(?=\w)", lambda x: "" if x.group(0).lstrip(".").startswith("_") else x.group(0), text)
    return f"`{text.lstrip('.')}`"


def clean(text: str, markdown: bool = False) -> str:
    """One section's text after the cleaning rules 1-6 of this module; ``markdown`` for ``.md`` files."""
    text = COMMENT_HTML.sub("", text.replace("\r\n", "\n").replace("\t", "    "))
    lines = [ADMONITION.sub(r"\1", line) for line in drop_blocks(text.split("\n"), markdown)
             if not (LINK_TARGET.match(line) or DIRECTIVE_DROP.match(line) or FIELD_LINE.match(line)
                     or UNDERLINE.match(line))]
    text = "\n".join(lines)
    for pattern, replacement in LINKS:
        text = pattern.sub(replacement, text)
    text = "\n".join(line for line in text.split("\n") if not RELATED_LINE.match(line))
    text = REF_GROUP.sub("", BUG_REF.sub("", ROLE_REF.sub("", text)))
    text = "\n".join(FOOTNOTE_REF.sub(r"\1", LEAD_REF.sub(r"\1", line)) for line in text.split("\n")
                     if not REF_ONLY_LINE.match(line))
    text = ROLE.sub(render_role, text)
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    text = EMPTY_REF_PAREN.sub("", text)
    text = re.sub(r"[ \t]+([.,;])(?=\s|$)", r"\1", text)        # space left before punctuation
    text = re.sub(r"\n[ \t]*([.,;])(?=\s|$)", r"\1", text)      # punctuation orphaned on its own line
    text = "\n".join(line.rstrip() for line in text.split("\n") if not line.strip() or re.search(r"\w", line))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def drop_repeats(documents: list[dict], min_paragraph: int = MIN_DEDUP_PARA_CHARS,
                 min_chars: int = MIN_DOC_CHARS) -> list[dict]:
    """The documents (dicts with ``text``), in order, without paragraphs of at least ``min_paragraph``
    characters already emitted by an earlier document (or earlier in the same one), and without
    documents left shorter than ``min_chars`` characters. Paragraphs are compared with their
    whitespace normalised; a dropped document's paragraphs still count as emitted."""
    seen: set[str] = set()
    out = []
    for doc in documents:
        kept = []
        for paragraph in re.split(r"\n\s*\n", doc["text"]):
            key = " ".join(paragraph.split())
            if len(key) >= min_paragraph:
                if key in seen:
                    continue
                seen.add(key)
            kept.append(paragraph)
        text = "\n\n".join(kept).strip()
        if len(text) >= min_chars:
            out.append({**doc, "text": text})
    return out
