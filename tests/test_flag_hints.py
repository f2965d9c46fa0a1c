"""Every `pass --X` / `use --X` hint in the library names a flag that a command line really has."""
import re
from pathlib import Path

from llm_bounds_cli.bound import bound_parser
from llm_bounds_cli.calc import build_parser

ROOT = Path(__file__).resolve().parents[1]
HINT = re.compile(r"\b(?:pass|use|check|with)\s+(?:e\.g\.\s+)?(--[a-z][a-z0-9-]*)")


def flags() -> set[str]:
    return {s for p in (bound_parser(), build_parser()) for a in p._actions for s in a.option_strings}


def hints():
    for path in sorted((ROOT / "llm_bounds").rglob("*.py")):
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for flag in HINT.findall(line):
                yield f"{path.relative_to(ROOT)}:{lineno}", flag


def test_hints_are_found_at_all():
    assert len(list(hints())) >= 5


def test_every_hinted_flag_exists():
    known = flags()
    assert [f"{where} names {flag}" for where, flag in hints() if flag not in known] == []


def test_the_check_catches_a_wrong_flag():
    assert HINT.findall("pass e.g. --alphas 0.1") == ["--alphas"] and "--alphas" not in flags()
