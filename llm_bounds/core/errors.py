"""The one exception type for bad input, so that command-line entry points can turn it into a
single clear line and exit code 2 instead of a traceback."""


class BoundInputError(ValueError):
    """Input that would make a bound meaningless (δ outside (0,1), a NaN component, ...).

    The message names the problem and the fix, on one line.
    """


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
