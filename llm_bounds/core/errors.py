"""The two exception types a command line turns into a single clear line instead of a traceback:
:class:`BoundInputError` (bad input, exit code 2, raised before any work) and :class:`RunError`
(a run that could not finish: divergence, a full disk; exit code 1)."""


class BoundInputError(ValueError):
    """Input that would make a bound meaningless (δ outside (0,1), a NaN component, ...).

    The message names the problem and the fix, on one line.
    """


class UnsafeFolderError(BoundInputError):
    """A model or tokenizer folder this tool refuses to read because reading it could run code
    (custom code, pickled weights): bad input, exit code 2 in every command, ``verify.py`` included."""


class RunError(RuntimeError):
    """A run that started and could not finish (training diverged, the disk is full, another run
    holds the folder). The message names the cause, the fix and what was left on disk, on one line."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`BoundInputError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise BoundInputError(message)


def require_one_of(value, choices, what: str) -> None:
    """Raise "unknown WHAT 'value'; choose one of a, b, c" unless ``value`` is one of ``choices``."""
    require(value in choices, f"unknown {what} {value!r}; choose one of {', '.join(choices)}")


def dataclass_from_dict(cls, d: dict, what: str):
    """``cls(**d)`` for a dataclass, refusing unknown keys (a typo must not silently become a default)."""
    from dataclasses import fields

    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    require(not unknown, f"unknown {what} {unknown}; valid keys are {sorted(known)}")
    return cls(**d)
