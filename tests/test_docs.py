"""The documentation (docs/, built by `mkdocs build --strict`, and README.md) kept in step with the code.

* the command reference is generated from the parsers, for every command, and follows their help;
* every flag the pages and the README show exists, every test they cite exists, every API link resolves;
* every message quoted on the Troubleshooting page is one the code prints;
* the Theory page links every inequality of the bound and cites every simulation test;
* the blocks marked ```` ```bash {.runnable} ```` run as written (slow: smoke-sized runs, about 2 minutes).
"""
import argparse
import ast
import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from llm_bounds_cli.reference import COMMANDS, command_parser, parser_markdown

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "hooks" not in p.parts)
FENCE = re.compile(r"^( *)```([^\n]*)\n(.*?)^\1```[ \t]*$", re.M | re.S)


def fences(path: Path) -> list[tuple[str, str]]:
    """(info string, body) of every fenced block of a Markdown file, bodies dedented."""
    out = []
    for m in FENCE.finditer(path.read_text()):
        indent = len(m.group(1))
        out.append((m.group(2).strip(), "\n".join(line[indent:] for line in m.group(3).splitlines())))
    return out


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---- the command reference --------------------------------------------------------------------

def test_every_command_has_a_page_with_its_generated_reference():
    markers = {m for p in (DOCS / "commands").glob("*.md")
               for m in re.findall(r"<!--\s*command-reference:\s*([a-z_ -]+?)\s*-->", p.read_text())}
    assert markers == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_reference_lists_every_argument_of_the_parser(name):
    parser = command_parser(name)
    page = parser_markdown(parser, COMMANDS[name].invocation)
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert actions and page.count("\n| `") == len(actions)
    for action in actions:
        for flag in action.option_strings:
            assert re.search(rf"`{re.escape(flag)}[ `]", page), f"{name}: {flag} is missing from its page"


def test_changing_a_flags_help_changes_its_page():
    parser = command_parser("verify")
    before = parser_markdown(parser, "python scripts/verify.py")
    rtol = next(a for a in parser._actions if "--rtol" in a.option_strings)
    rtol.help = "a help text the test wrote (default %(default)s)"
    after = parser_markdown(parser, "python scripts/verify.py")
    assert "a help text the test wrote (default 1e-06)" in after and "the test wrote" not in before


def test_the_programs_commands_take_the_scripts_arguments():
    """`llm-bounds X` is documented from its own parser, under the program's name, and takes exactly the
    arguments of `scripts/X.py` where there is one."""
    from llm_bounds_cli.main import COMMANDS as PROGRAM

    assert {f"llm-bounds {name}" for name in PROGRAM} <= set(COMMANDS)
    for name in PROGRAM:
        parser = command_parser(f"llm-bounds {name}")
        assert parser.prog == f"llm-bounds {name}"
        script = name.replace("-", "_")
        if script in COMMANDS:
            flags = [a.option_strings for a in parser._actions]
            assert flags == [a.option_strings for a in command_parser(script)._actions], name


def test_capturing_a_parser_runs_nothing_and_restores_argparse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parse = argparse.ArgumentParser.parse_args
    assert command_parser("bound").prog == "bound.py"
    assert argparse.ArgumentParser.parse_args is parse and list(tmp_path.iterdir()) == []


def test_a_subcommand_is_documented_from_its_own_parser(monkeypatch):
    import llm_bounds_cli.reference as reference

    def main(argv):  # a console script with subcommands, as a stand-in
        parser = argparse.ArgumentParser(prog="tool")
        sub = parser.add_subparsers(dest="command")
        sub.add_parser("check").add_argument("--strictness", help="how strict")
        parser.parse_args(argv)
        raise AssertionError("the parser was not captured")
    monkeypatch.setattr(sys.modules[__name__], "stand_in_main", main, raising=False)
    monkeypatch.setitem(reference.COMMANDS, "tool check", reference.Command("tool check", __name__, "stand_in_main",
                                                                            "check"))
    page = parser_markdown(command_parser("tool check"), "tool check")
    assert "`--strictness STRICTNESS`" in page and "how strict" in page


# ---- flags, tests and API links named in the pages and the README --------------------------------

def all_flags() -> dict[str, set[str]]:
    return {name: {s for a in command_parser(name)._actions for s in a.option_strings} for name in COMMANDS}


def command_lines(text: str):
    """(command name, its --flags) for every `scripts/X.py`, `llm-bounds X` and `python -m llm_bounds X`
    invocation in a shell block."""
    for line in text.replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        for i, tok in enumerate(tokens):
            script = re.fullmatch(r"(?:.*/)?scripts/(\w+)\.py", tok)
            program = tok == "llm-bounds" or (tok == "llm_bounds" and tokens[i - 1:i] == ["-m"])
            if program and i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                name, rest = f"llm-bounds {tokens[i + 1]}", tokens[i + 2:]
            elif script:
                name, rest = script.group(1), tokens[i + 1:]
            else:
                continue
            if name == "benchmark":
                name, rest = f"benchmark {rest[0]}", rest[1:]
            end = next((j for j, t in enumerate(rest) if t in ("&&", "||", ";", "|")), len(rest))
            yield name, [t.split("=")[0] for t in rest[:end] if t.startswith("--")]


def documents():
    return [*PAGES, README]


def test_every_flag_shown_in_a_command_exists():
    flags, seen, wrong = all_flags(), 0, []
    for path in documents():
        for info, body in fences(path):
            if info.split(" ")[0] not in ("bash", "{.bash"):
                continue
            for name, used in command_lines(body):
                seen += 1
                wrong += [f"{rel(path)}: {name} has no {f}" for f in used if f not in flags.get(name, set())]
    assert seen >= 20 and wrong == []


def test_every_flag_named_in_the_text_exists():
    known = set().union(*all_flags().values())
    named = {(rel(path), m) for path in documents()
             for m in re.findall(r"`(--[a-z][a-z0-9-]*)", re.sub(r"```.*?```", "", path.read_text(), flags=re.S))}
    assert len(named) >= 30 and sorted(f"{p}: {flag}" for p, flag in named if flag not in known) == []


def cited_tests(text: str) -> set[str]:
    return set(re.findall(r"tests/test_\w+\.py::\w+", text))


def test_every_cited_test_exists():
    cited = set().union(*(cited_tests(p.read_text()) for p in documents()))
    missing = []
    for ref in sorted(cited):
        file, name = ref.split("::")
        if not re.search(rf"^def {name}\(", (ROOT / file).read_text(), re.M):
            missing.append(ref)
    assert len(cited) >= 40 and missing == []


def api_links(text: str) -> set[str]:
    return set(re.findall(r"\]\[(llm_bounds(?:_cli)?(?:\.\w+)+)\]", text))


def resolve(path: str):
    """The object a dotted path names (a module, or an attribute of one, possibly nested)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def test_every_api_link_names_a_public_object_of_the_code():
    links = set().union(*(api_links(p.read_text()) for p in PAGES))
    assert len(links) >= 30
    for link in sorted(links):
        assert not any(part.startswith("_") for part in link.split(".")), link
        resolve(link)


def test_every_package_of_the_library_is_on_an_api_page():
    markers = {m for p in (DOCS / "api").glob("*.md")
               for m in re.findall(r"<!--\s*api-modules:\s*([a-z_.]+)", p.read_text())}
    packages = {"llm_bounds"} | {f"llm_bounds.{p.name}" for p in (ROOT / "llm_bounds").iterdir()
                                 if (p / "__init__.py").is_file()}
    assert markers == packages


# ---- the Theory page ----------------------------------------------------------------------------

def test_theory_links_every_inequality_and_cites_every_simulation_test():
    text = (DOCS / "theory.md").read_text()
    from llm_bounds.bound import concentration
    needed = {f"llm_bounds.bound.concentration.{n}" for n in dir(concentration) if n.startswith("ucb_")}
    needed |= {"llm_bounds.bound.smoothing.smoothed_loss_range", "llm_bounds.message.complexity.message_complexity",
               "llm_bounds.message.complexity.elias_delta_bits", "llm_bounds.bound.alpha_grid.bound_over_alpha_grid",
               "llm_bounds.bound.generalization.generalization_bound",
               "llm_bounds.certificate.context.searched_grids", "llm_bounds.certificate.claims.claim_delta",
               "llm_bounds.certificate.checkpoints.checkpoint_steps", "llm_bounds.certificate.tracking.choose_checkpoint"}
    assert sorted(needed - api_links(text)) == []
    simulations = set(re.findall(r"^def (test_\w+)\(", (ROOT / "tests" / "test_validity.py").read_text(), re.M))
    cited = {ref.split("::")[1] for ref in cited_tests(text) if ref.startswith("tests/test_validity.py")}
    assert len(simulations) >= 20 and sorted(simulations - cited) == []


def test_joint_claims_compute_each_bound_at_delta_over_n():
    from llm_bounds.certificate.config import preset_config
    from llm_bounds.certificate.claims import claim_delta, reported_claims
    alone, joint = preset_config("smoke"), preset_config("smoke", joint_claims=True)
    assert len(reported_claims(joint)) == 8 and claim_delta(alone) == alone.delta
    assert claim_delta(joint) == pytest.approx(joint.delta / 8)
    no_documents = preset_config("smoke", joint_claims=True, n_documents=0)
    assert len(reported_claims(no_documents)) == 4 and claim_delta(no_documents) == pytest.approx(no_documents.delta / 4)


# ---- the Troubleshooting page: every quoted message is one the code prints ----------------------

PREFIX = re.compile(r"^[\w.]+\.py: (?:error|failed|not verified|note|mismatch): ")


def string_templates() -> list[list[str | None]]:
    """Every string literal of the packages as parts: text, or None where a value is put in (an
    f-string's fields, a ``{}`` of a format string). Implicitly joined literals are one string."""
    out = []
    for path in [*(ROOT / "llm_bounds").rglob("*.py"), *(ROOT / "llm_bounds_cli").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.JoinedStr):
                parts = [v.value if isinstance(v, ast.Constant) else None for v in node.values]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts = [None if re.fullmatch(r"\{[^{}]*\}", p) else p
                         for p in re.split(r"(\{[^{}]*\})", node.value) if p]
            else:
                continue
            if sum(len(p) for p in parts if p) >= 8:
                out.append(parts)
    return out


def coverage(message: str, templates) -> tuple[float, int]:
    """The share of ``message`` covered by the literal text of templates found in it, and the
    longest literal text of one such template."""
    covered, longest = [False] * len(message), 0
    for parts in templates:
        if not all(p in message for p in parts if p is not None):  # cheap: most templates fail here
            continue
        pattern = "".join(f"({re.escape(p)})" if p is not None else "(?:.*?)" for p in parts)
        m = re.search(pattern, message)
        if m is None:
            continue
        literal = 0
        for g in range(1, (m.lastindex or 0) + 1):
            a, b = m.span(g)
            covered[a:b] = [True] * (b - a)
            literal += b - a
        longest = max(longest, literal)
    return sum(covered) / max(1, len(message)), longest


def quoted_messages() -> list[str]:
    return [line for info, body in fences(DOCS / "troubleshooting.md") if info == "text"
            for line in body.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def templates():
    return string_templates()


def test_the_troubleshooting_page_quotes_messages(templates):
    assert len(quoted_messages()) >= 20 and len(templates) > 500


@pytest.mark.parametrize("message", quoted_messages())
def test_a_quoted_message_is_printed_by_the_code(message, templates):
    text = PREFIX.sub("", message)
    share, longest = coverage(text, templates)
    assert share >= 0.6 and longest >= 20, f"not in the code ({share:.0%} covered): {message}"


def test_a_message_the_code_never_prints_is_caught(templates):
    share, longest = coverage("the moon is made of cheese; pass --cheese to use it", templates)
    assert share < 0.6 or longest < 20


# ---- the README ---------------------------------------------------------------------------------

def test_the_readme_is_short_and_links_into_the_site():
    text = README.read_text()
    assert len(text.splitlines()) < 150
    links = re.findall(r"\]\((docs/[\w/.-]+\.md)(?:#[\w-]+)?\)", text)
    assert {"docs/quickstart.md", "docs/theory.md", "docs/commands/index.md", "docs/troubleshooting.md"} <= set(links)
    assert [link for link in links if not (ROOT / link).is_file()] == []


# ---- the runnable blocks --------------------------------------------------------------------------

def runnable_blocks(path: Path) -> list[str]:
    return [body for info, body in fences(path) if re.fullmatch(r"bash\s*\{\s*\.runnable\s*\}", info)]


RUNNABLE = [p for p in PAGES if runnable_blocks(p)]


def test_runnable_blocks_are_marked_and_smoke_sized():
    blocks = [b for p in RUNNABLE for b in runnable_blocks(p)]
    assert len(blocks) >= 5
    for block in blocks:  # nothing that trains for minutes: a preset that runs in seconds, or no training
        for name, flags in command_lines(block):
            if name in ("bound", "llm-bounds bound"):
                assert "--preset smoke" in block or "--dry-run" in flags, block


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def python_on_path(tmp_path_factory):
    """A folder whose `python` is the interpreter running the tests."""
    folder = tmp_path_factory.mktemp("bin")
    (folder / "python").symlink_to(sys.executable)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[rel(p) for p in RUNNABLE])
def test_runnable_blocks_run_as_written(page, tmp_path, shared_cache, python_on_path):
    """Each page's blocks in order, in one empty folder (as a reader would, from the repository's
    root: `scripts/` is linked in), with `python` the interpreter running the tests."""
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = dict(os.environ, LLM_BOUNDS_CACHE=str(shared_cache), HF_HUB_OFFLINE="1",
               PATH=f"{python_on_path}{os.pathsep}{os.environ.get('PATH', '')}")
    for block in runnable_blocks(page):
        res = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{rel(page)}:\n{block}\n{res.stderr[-2000:]}"
