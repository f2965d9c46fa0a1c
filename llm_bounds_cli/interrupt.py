"""Ctrl-C in any command: one line saying what to do next, exit code 130, never a traceback.

An interrupted run needs no cleanup: every file is written atomically, the stages already finished
stay in ``--out`` under the run's key, and the folder's lock (``flock``) goes with the process, so
the same command resumes where it stopped. :func:`run_script` also covers a Ctrl-C while the command
is still importing torch. This module imports nothing heavy, so that it can.
"""
from __future__ import annotations

import functools
import importlib
import os
import sys

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command ended by Ctrl-C

NEXT_STEP = {
    "bound.py": "run the same command again to resume: the finished stages are kept in its --out folder",
    "compare.py": "run the same command again to resume: each model's finished stages are kept in --out",
    "verify.py": "nothing was written; run the same command again to verify",
    "calc.py": "nothing was written; run the same command again",
}


def interrupted(prog: str, shown: str | None = None) -> int:
    """Print the one line for ``prog`` interrupted by Ctrl-C (on the main process only, under
    torchrun), naming the command as ``shown`` (default ``prog``; e.g. ``llm-bounds bound``), and
    return :data:`EXIT_INTERRUPTED`."""
    if os.environ.get("RANK", "0") == "0":
        try:
            print(f"{shown or prog}: interrupted (Ctrl-C); {NEXT_STEP.get(prog, 'run the same command again')}",
                  file=sys.stderr, flush=True)
        except (KeyboardInterrupt, OSError):
            pass
    return EXIT_INTERRUPTED


def interruptible(prog: str):
    """Decorate a command's ``main``: a Ctrl-C anywhere in it returns :func:`interrupted`."""
    def wrap(main):
        @functools.wraps(main)
        def run(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except KeyboardInterrupt:
                return interrupted(prog, kwargs.get("prog"))
        return run
    return wrap


def run_script(prog: str, module: str, function: str) -> int:
    """What ``scripts/PROG`` runs: import ``module`` (torch and all) and call its ``function``; a
    Ctrl-C during the import too gives the one line and :data:`EXIT_INTERRUPTED`."""
    try:
        return getattr(importlib.import_module(module), function)()
    except KeyboardInterrupt:
        return interrupted(prog)
