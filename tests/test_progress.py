"""Progress bars in a log file redraw rarely; on a terminal they keep tqdm's own interval."""
import io

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
