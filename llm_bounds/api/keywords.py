"""Python keyword arguments as the values of ``bound.py``'s flags.

Every flag of :data:`llm_bounds.certificate.flags.RUN_FLAGS` is a keyword: its option without the
dashes, ``-`` as ``_`` (``--n-samples`` is ``n_samples=``, ``--alpha`` is ``alpha=``, ``--lora-targets``
is ``lora_targets=``, ``--joint-claims`` is ``joint_claims=True``). A keyword takes what the flag's
text stands for (``levels=(17, 33)``, ``n_samples="all"``, a path as a ``pathlib.Path``) or the
flag's own text (``levels="17,33"``, read as the command line reads it); None means not given. An
unknown keyword or a value of the wrong kind raises
:class:`~llm_bounds.core.errors.BoundInputError` (a ``ValueError``) with a one-line message.
"""
from __future__ import annotations

import difflib
import os
from numbers import Integral, Real

from llm_bounds.certificate.flags import READERS, RUN_FLAGS, Flag
from llm_bounds.core.errors import BoundInputError, require

KEYWORDS: dict[str, Flag] = {f.keyword: f for f in RUN_FLAGS}
EXPECTS = {"str": "a string", "int": "an integer", "float": "a number", "int_list": "integers (a list or '17,33')",
           "float_list": "numbers (a list or '0.01,0.1')", "count_or_all": "an integer or 'all'",
           "escaped": "a string", "name_list": "names (a list or 'a,b')", "switch": "True or False",
           "const": "True or False"}


def unknown_keyword(key: str, valid) -> BoundInputError:
    """The one-line error of an unknown keyword: the closest valid one (a flag's setting name such as
    ``alphas`` points to its keyword ``alpha``), then every valid keyword."""
    by_dest = {f.dest: f.keyword for f in RUN_FLAGS if f.keyword in valid}
    close = [by_dest[key]] if key in by_dest else difflib.get_close_matches(key, list(valid), n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return BoundInputError(f"unknown keyword {key!r}; {hint}valid keywords: {', '.join(sorted(valid))}")


def _is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _sequence(value) -> list | None:
    """The items of a list, tuple, range or array (None for anything else, strings included)."""
    if isinstance(value, (list, tuple, range)) or hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        items = value.tolist() if hasattr(value, "tolist") else list(value)
        return items if isinstance(items, list) else [items]
    return None


def convert(flag: Flag, value):
    """``value`` given as keyword ``flag.keyword``, as the value the command line's parser gives."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    kind = flag.reads
    wrong = BoundInputError(f"{flag.keyword}= ({flag.option}) expects {EXPECTS[kind]}, got {value!r}")
    if isinstance(value, str) and kind not in ("switch", "const"):
        try:
            return READERS[kind](value)  # the command line's own reading
        except ValueError as e:  # BoundInputError included: its message names the problem
            raise (BoundInputError(f"{flag.keyword}= ({flag.option}): {e}") if isinstance(e, BoundInputError)
                   else wrong) from None
    if kind in ("switch", "const"):
        require(isinstance(value, bool), str(wrong))
        return value if kind == "switch" else (flag.const if value else None)
    if kind in ("int", "count_or_all"):
        require(_is_int(value), str(wrong))
        return int(value)
    if kind == "float":
        require(_is_number(value), str(wrong))
        return float(value)
    if kind in ("int_list", "float_list", "name_list"):
        items = [value] if _is_number(value) else _sequence(value)
        check = {"int_list": _is_int, "float_list": _is_number, "name_list": lambda x: isinstance(x, str)}[kind]
        require(items is not None and len(items) > 0 and all(check(x) for x in items), str(wrong))
        cast = {"int_list": int, "float_list": float, "name_list": str}[kind]
        return tuple(cast(x) for x in items)
    raise wrong


def flag_values(keywords: dict, valid=None, named=()) -> dict:
    """The flag values (by ``dest``) of the keyword arguments ``keywords``; None values are left
    out (not given). ``valid``: the flags' keywords accepted (default: every flag's); ``named``: the
    calling function's own parameters, named in the error of an unknown keyword."""
    valid = set(KEYWORDS) if valid is None else set(valid)
    values = {}
    for key, value in keywords.items():
        if key not in valid:
            raise unknown_keyword(key, valid | set(named))
        if value is not None:
            flag = KEYWORDS[key]
            values[flag.dest] = convert(flag, value)
    return values
