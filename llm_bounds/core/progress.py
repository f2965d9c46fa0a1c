"""Progress bars that work in a terminal, in a notebook and in a log file.

The bars are ``tqdm.auto``'s: a widget in a Jupyter notebook, a line redrawn in place on a terminal.
Redirected to a file, every redraw is kept, so a 6,000-step run at tqdm's default 0.1 s interval
leaves thousands of copies of the bar in the log: there the bar redraws at most every
:data:`LOG_INTERVAL_S` seconds (a notebook's output stream is no terminal either, but it redraws in
place, so it keeps tqdm's interval).
"""
from __future__ import annotations

import sys

LOG_INTERVAL_S = 30.0


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where ``tqdm.auto`` draws a widget), as tqdm itself decides."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def progress_bar(**kwargs):
    """A ``tqdm.auto`` bar (keyword arguments as tqdm's) that redraws at most every 30 s when its
    output (``file``, default stderr) is neither a terminal nor a notebook."""
    from tqdm.auto import tqdm
    out = kwargs.get("file") or sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()) and not in_notebook():
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    return tqdm(**kwargs)
