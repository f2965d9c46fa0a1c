"""``llm-bounds COMMAND ...`` (and ``python -m llm_bounds``): one program for every command line,
with the same arguments as ``scripts/*.py``: ``bound``, ``verify``, ``compare``, ``calc``,
``unseen-corpus`` and ``card``. A command's module is imported when it runs (``calc`` loads no torch).
"""
from __future__ import annotations

import importlib
import sys

PROG = "llm-bounds"
# command -> (module, function taking (argv, prog)), and what it does
COMMANDS = {
    "bound": ("llm_bounds_cli.bound", "bound_main", "train, code and certify a model (scripts/bound.py)"),
    "verify": ("llm_bounds_cli.verify", "verify_main", "re-derive a certificate (scripts/verify.py)"),
    "compare": ("llm_bounds_cli.compare", "main", "certify several model sizes alike (scripts/compare.py)"),
    "calc": ("llm_bounds_cli.calc", "main", "a bound from known components (scripts/calc.py)"),
    "unseen-corpus": ("llm_bounds_cli.unseen.cli", "unseen_corpus_main",
                      "build the corpus no pretrained weights saw (scripts/unseen_corpus.py)"),
    "card": ("llm_bounds_cli.card", "card_main", "print a certificate as a model-card section"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: {PROG} COMMAND [ARGS ...]   ({PROG} COMMAND --help for a command's arguments)", "",
             "commands:"]
    lines += [f"  {name.ljust(width)}  {what}" for name, (_, _, what) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"{PROG}: error: unknown command {command!r}; choose one of {', '.join(COMMANDS)} "
              f"(see {PROG} --help)", file=sys.stderr)
        return 2
    module, function, _ = COMMANDS[command]
    return getattr(importlib.import_module(module), function)(rest, prog=f"{PROG} {command}")
