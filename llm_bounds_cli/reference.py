"""The command reference, rendered from the argparse parsers themselves.

The site's command pages (``docs/hooks/generated.py``, run by ``mkdocs build``) and their tests take
every flag, value, default and help text from here, so the documentation cannot drift from the code:
a parser is obtained by running the command's own ``main`` up to its ``parse_args`` call, which is
intercepted, so no flag is copied by hand and no work is done.
"""
from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass

from llm_bounds_cli.main import COMMANDS as PROGRAM, PROG


@dataclass(frozen=True)
class Command:
    """One command line: how a user starts it, and the function that parses its arguments."""

    invocation: str   # what a user types, e.g. "python scripts/bound.py"
    module: str       # the module of its main function
    function: str     # main(argv) -> exit code; builds its parser and parses argv first
    subcommand: str | None = None  # for a main with subcommands (add_subparsers): the one documented
    prog: str | None = None        # passed to main as prog= (a subcommand of the llm-bounds program)


COMMANDS: dict[str, Command] = {
    "bound": Command("python scripts/bound.py", "llm_bounds_cli.bound", "bound_main"),
    "verify": Command("python scripts/verify.py", "llm_bounds_cli.verify", "verify_main"),
    "compare": Command("python scripts/compare.py", "llm_bounds_cli.compare", "main"),
    "calc": Command("python scripts/calc.py", "llm_bounds_cli.calc", "main"),
    "unseen_corpus": Command("python scripts/unseen_corpus.py", "llm_bounds_cli.unseen.cli", "unseen_corpus_main"),
    "benchmark coding": Command("python scripts/benchmark.py coding", "llm_bounds_cli.benchmarks.coding", "main"),
    "benchmark subspace": Command("python scripts/benchmark.py subspace", "llm_bounds_cli.benchmarks.subspace", "main"),
    "benchmark eval": Command("python scripts/benchmark.py eval", "llm_bounds_cli.benchmarks.evaluation", "main"),
    "benchmark train": Command("python scripts/benchmark.py train", "llm_bounds_cli.benchmarks.training", "main"),
}


def _program_commands() -> dict[str, Command]:
    """``llm-bounds COMMAND`` for every command of the program (``llm_bounds_cli.main``), each
    parsed by the same main as its script, under the program's name."""
    return {f"{PROG} {name}": Command(f"{PROG} {name}", module, function, prog=f"{PROG} {name}")
            for name, (module, function, _) in PROGRAM.items()}


COMMANDS.update(_program_commands())


USAGE_WIDTH = 80  # the usage line's wrap, fixed so that the page does not depend on the terminal


class _Parsed(Exception):
    """Raised in place of parsing: carries the parser that was about to parse."""

    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__("parser captured")
        self.parser = parser


def command_parser(name: str) -> argparse.ArgumentParser:
    """The parser of command ``name`` (a key of :data:`COMMANDS`), exactly as its ``main`` builds it."""
    if name not in COMMANDS:
        raise KeyError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    command = COMMANDS[name]
    main = getattr(importlib.import_module(command.module), command.function)

    def capture(self, *args, **kwargs):
        raise _Parsed(self)

    saved = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
    argparse.ArgumentParser.parse_args = argparse.ArgumentParser.parse_known_args = capture
    try:
        main([]) if command.prog is None else main([], prog=command.prog)
    except _Parsed as parsed:
        parser = parsed.parser
    else:
        raise RuntimeError(f"{command.module}.{command.function} returned without parsing its arguments")
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = saved
    if command.subcommand is None:
        return parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command.subcommand in action.choices:
            return action.choices[command.subcommand]
    raise RuntimeError(f"{command.module}.{command.function} has no subcommand {command.subcommand!r}")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (one line, no column breaks, no HTML)."""
    text = " ".join(str(text).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def _invocation(action: argparse.Action) -> str:
    """How the argument is written: ``--flag VALUE``, ``--flag {a,b}``, ``--switch`` or ``NAME``."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    if action.nargs == 0:
        value = ""
    elif action.choices is not None:
        value = " {" + ",".join(str(c) for c in action.choices) + "}"
    else:
        metavar = action.metavar if action.metavar is not None else action.dest.upper()
        value = " " + (" ".join(metavar) if isinstance(metavar, tuple) else metavar)
    return ", ".join(f"`{flag}{value}`" for flag in action.option_strings)


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS) or not action.option_strings:
        return ""
    return f"`{action.default}`"


def parser_markdown(parser: argparse.ArgumentParser, invocation: str) -> str:
    """A Markdown reference of ``parser``: its usage line, description and a table of every argument
    (the help texts with ``%(default)s`` and the like expanded, as ``--help`` prints them). The
    default column is left out when no argument has one (the preset or recipe sets them)."""
    formatter = parser.formatter_class(prog=parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    usage = formatter.format_help().strip()
    actions = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    defaults = any(_default(a) for a in actions)
    lines = [f"**Start it with** `{invocation}`.", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    lines += ["```text", usage, "```", ""]
    lines += ["| argument | default | what it does |", "|---|---|---|"] if defaults else \
             ["| argument | what it does |", "|---|---|"]
    for action in actions:
        help_text = _cell(formatter._expand_help(action)) if action.help else ""
        cells = [_invocation(action)] + ([_default(action)] if defaults else []) + [help_text]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "`-h`, `--help` prints the same, as plain text."]
    return "\n".join(lines) + "\n"


def command_markdown(name: str) -> str:
    """The generated reference of command ``name``."""
    return parser_markdown(command_parser(name), COMMANDS[name].invocation)
