"""Progress bars in a log file redraw rarely; on a terminal and in a notebook they keep tqdm's own interval."""
import io
import sys
import types

from llm_bounds.core.progress import LOG_INTERVAL_S, progress_bar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_into_a_file_redraws_at_most_every_30_s():
    log = io.StringIO()
    bar = progress_bar(total=6000, file=log, unit="step")
    for _ in range(6000):
        bar.update(1)
    bar.close()
    assert bar.mininterval == LOG_INTERVAL_S == 30.0
    assert log.getvalue().count("step") <= 4  # the first draw and the closing one, whatever the speed


def test_a_bar_on_a_terminal_keeps_tqdm_s_interval_and_an_explicit_one_is_kept():
    assert progress_bar(total=3, file=Terminal()).mininterval < 1.0
    assert progress_bar(total=3, file=io.StringIO(), mininterval=2.0).mininterval == 2.0


def test_a_bar_in_a_notebook_keeps_tqdm_s_interval(monkeypatch):
    """A Jupyter kernel's output stream is no terminal, but it redraws the bar in place."""
    shell = types.SimpleNamespace(config={"IPKernelApp": {}})
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: shell))
    assert progress_bar(total=3, file=io.StringIO()).mininterval < 1.0
    shell.config = {}  # IPython in a terminal: not a notebook
    assert progress_bar(total=3, file=io.StringIO()).mininterval == LOG_INTERVAL_S
