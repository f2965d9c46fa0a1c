"""argparse helpers shared by the command lines: one-line usage errors (exit 2), the readers of
comma lists and escapes (:mod:`llm_bounds.certificate.flags`) as argparse types, and a parser
option from a row of a flag table."""
from __future__ import annotations

import argparse

from llm_bounds.certificate import flags
from llm_bounds.core.errors import BoundInputError


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line (exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def argparse_type(reader):
    """``reader`` (text -> value, raising BoundInputError) as an argparse type: its one-line message
    becomes the usage error."""
    def read(text: str):
        try:
            return reader(text)
        except BoundInputError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    read.__name__ = reader.__name__
    return read


int_list = argparse_type(flags.int_list)
float_list = argparse_type(flags.float_list)
unescape = flags.unescape
count_or_all = argparse_type(flags.count_or_all)


def add_flag(parser: argparse.ArgumentParser, flag: flags.Flag) -> None:
    """The option of one row of a flag table (:class:`llm_bounds.certificate.flags.Flag`)."""
    kwargs = dict(dest=flag.dest, help=flag.help or None)
    if flag.reads == "switch":
        kwargs["action"] = "store_true"
    elif flag.reads == "const":
        kwargs.update(action="store_const", const=flag.const)
    elif flag.reads in ("int", "float"):
        kwargs["type"] = flags.READERS[flag.reads]   # argparse's own message: "invalid int value: 'x'"
    elif flag.reads != "str":
        kwargs["type"] = argparse_type(flags.READERS[flag.reads])
    parser.add_argument(flag.option, **kwargs)
