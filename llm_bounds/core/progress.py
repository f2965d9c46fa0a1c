"""Progress bars that stay readable in a log file.

On a terminal a tqdm bar redraws in place. Redirected to a file, every redraw is kept, so a
6,000-step run at tqdm's default 0.1 s interval leaves thousands of copies of the bar in the log:
there the bar redraws at most every :data:`LOG_INTERVAL_S` seconds.
"""
from __future__ import annotations

import sys

LOG_INTERVAL_S = 30.0


def progress_bar(**kwargs):
    """A ``tqdm`` bar (keyword arguments as tqdm's) that redraws at most every 30 s when its
    output (``file``, default stderr) is not a terminal."""
    from tqdm.auto import tqdm
    out = kwargs.get("file") or sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()):
        kwargs.setdefault("mininterval", LOG_INTERVAL_S)
    return tqdm(**kwargs)
