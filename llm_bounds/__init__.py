"""llm-bounds: certified, non-vacuous, compression-based generalization bounds for language models.

From Python (the command lines' ``scripts/*.py`` and ``llm-bounds`` run the same code)::

    import llm_bounds

    cert = llm_bounds.certify(preset="smoke", out="runs/smoke")   # bound.py's flags as keywords
    print(cert.bound_bits_per_byte, cert.path)
    print(llm_bounds.verify(cert.path).ok)

:func:`certify`, :func:`verify`, :func:`compare`, :func:`load` and :class:`Certificate` are
:mod:`llm_bounds.api`'s, imported on first use: ``import llm_bounds`` alone loads no torch (the
bound calculator runs without it). Errors: :class:`BoundInputError` (bad input, a ``ValueError``)
and :class:`RunError` (a run that could not finish), each with a one-line message.
"""
import importlib

from llm_bounds.core.errors import BoundInputError, RunError

# name -> the module that defines it, imported when the name is first used (PEP 562)
LAZY = {"certify": "llm_bounds.api.entry", "verify": "llm_bounds.api.entry", "compare": "llm_bounds.api.entry",
        "load": "llm_bounds.api.entry", "Certificate": "llm_bounds.api.results",
        "Verification": "llm_bounds.certificate.verify"}

__all__ = ["certify", "verify", "compare", "load", "Certificate", "Verification", "BoundInputError", "RunError"]


def __getattr__(name):
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'llm_bounds' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(LAZY))
