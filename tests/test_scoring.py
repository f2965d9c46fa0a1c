"""The scoring grid: every target scored once, with the context the window rule gives it."""
import numpy as np
import pytest

from llm_bounds.core.errors import BoundInputError
from llm_bounds.data.scoring import ScoringGrid, document_units, make_units, token_units, unit_windows


def reference_contexts(first: int, last: int, base: int, T: int, S: int) -> dict[int, int]:
    """Brute force: walk the windows over x[base:] and record which one scores each target."""
    ctx = {}
    for c in range(0, last - base + 1, S):
        lo = 1 if c == 0 else c + T - S + 1
        for r in range(lo, c + T + 1):
            t = base + r
            if first <= t <= last:
                assert t not in ctx, "two windows score the same target"
                ctx[t] = base + c
    return ctx


def test_grid_validation():
    ScoringGrid(256, 128)
    for T, S in [(256, 100), (8, 16), (0, 1), (8, 0)]:
        with pytest.raises(BoundInputError):
            ScoringGrid(T, S)


@pytest.mark.parametrize("T,S,N", [(8, 4, 50), (8, 8, 33), (12, 3, 40), (4, 1, 9)])
def test_token_units_match_the_window_rule(T, S, N):
    units = token_units(N, ScoringGrid(T, S))
    assert units.num_units == (N - 1) // S and units.m == units.num_units * S
    assert np.all(units.score_end - units.score_start == S)
    assert units.score_start[0] == 1 and np.all(units.score_start[1:] == units.score_end[:-1])
    assert units.score_end[-1] <= N and N - units.score_end[-1] < S  # only a partial tail is unscored
    ref = reference_contexts(1, N - 1, 0, T, S)
    for u in range(units.num_units):
        windows = unit_windows(units.context_start[u], units.score_start[u], units.score_end[u], units.grid)
        assert len(windows) == 1, "a token-level unit lies inside one window"
        ws, a, b = windows[0]
        assert (a, b) == (units.score_start[u], units.score_end[u])
        assert all(ref[t] == ws == units.context_start[u] for t in range(a, b))
        assert b - 1 - ws <= T  # the inputs x[ws : b-1] fit in one window


def test_document_units_cover_each_document_once():
    offsets = np.array([1, 4, 30, 31, 60, 123])  # documents of 3, 26, 1, 29, 63 tokens (closing EOD included)
    T, S = 8, 2
    units = document_units(offsets, ScoringGrid(T, S))
    assert units.granularity == "document" and units.m == units.num_units == 5
    np.testing.assert_array_equal(units.context_start, offsets[:-1] - 1)
    for i in range(units.num_units):
        c, first, end = units.context_start[i], units.score_start[i], units.score_end[i]
        ref = reference_contexts(first, end - 1, c, T, S)
        got = {}
        for ws, a, b in unit_windows(c, first, end, units.grid):
            assert ws >= c and b - 1 - ws <= T
            for t in range(a, b):
                assert t not in got
                got[t] = ws
        assert got == ref and set(got) == set(range(first, end))


def test_full_risk_is_the_mean_over_units():
    rng = np.random.Generator(np.random.PCG64(0))
    N, grid = 203, ScoringGrid(16, 4)
    loss = rng.random(N)  # a per-target loss, any values
    units = token_units(N, grid)
    unit_means = np.array([loss[a:b].mean() for a, b in zip(units.score_start, units.score_end)])
    scored = np.concatenate([np.arange(a, b) for a, b in zip(units.score_start, units.score_end)])
    assert len(scored) == units.m == len(set(scored.tolist()))
    assert np.isclose(np.sum(units.weights * unit_means), loss[scored].mean())


def test_too_short_and_bad_level():
    with pytest.raises(BoundInputError, match="shorter than one window"):
        token_units(256, ScoringGrid(256, 128))
    token_units(257, ScoringGrid(256, 128))
    with pytest.raises(BoundInputError, match="granularity"):
        make_units("sentence", ScoringGrid(8, 4), 100)
    with pytest.raises(BoundInputError, match="no documents"):
        document_units(np.array([1]), ScoringGrid(8, 4))
