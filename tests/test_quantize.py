import numpy as np
import pytest

from llm_bounds.core.errors import BoundInputError
from llm_bounds.message.quantize import Quantized, assign_nearest, quantize


def _brute_nearest(z, codebook):
    """Nearest level by full distance table, lowest index among ties (independent of the module)."""
    c = codebook.astype(np.float64)
    dist = np.abs(np.asarray(z, dtype=np.float64)[:, None] - c[None, :])
    return np.argmin(dist, axis=1)


@pytest.mark.parametrize("method", ["uniform", "kmeans"])
@pytest.mark.parametrize("d,L", [(1, 2), (2, 256), (37, 5), (5000, 11), (20000, 256)])
def test_structure_and_nearest_assignment(method, d, L):
    z = np.random.default_rng(d + L).standard_normal(d).astype(np.float32)
    q = quantize(z, L, method=method)
    assert q.codebook.dtype == np.float16 and q.codebook.shape == (L,)
    assert np.all(np.diff(q.codebook.astype(np.float64)) >= 0)
    assert q.indices.dtype == np.int32 and q.indices.shape == (d,)
    assert q.indices.min() >= 0 and q.indices.max() < L
    assert q.values().dtype == np.float32
    assert q.values().tobytes() == q.codebook.astype(np.float32)[q.indices].tobytes()
    assert np.array_equal(q.indices, _brute_nearest(z, q.codebook))


@pytest.mark.parametrize("method", ["uniform", "kmeans"])
def test_deterministic_for_a_seed(method):
    z = np.random.default_rng(1).standard_normal(3000)
    a, b = quantize(z, 17, method, seed=4), quantize(z, 17, method, seed=4)
    assert a.codebook.tobytes() == b.codebook.tobytes() and np.array_equal(a.indices, b.indices)


def test_uniform_levels_are_bin_means_and_empty_bins_keep_centres():
    rng = np.random.default_rng(2)
    # Values only in the outer thirds of [0, 3], so the middle bins of L = 9 are empty.
    z = np.concatenate([rng.uniform(0, 1, 400), rng.uniform(2, 3, 400), [0.0, 3.0]])
    L = 9
    q = quantize(z, L, "uniform")
    width = 3.0 / L
    expected = []
    for k in range(L):
        lo, hi = k * width, (k + 1) * width
        inside = z[(z >= lo) & ((z < hi) if k < L - 1 else (z <= hi))]
        expected.append(inside.mean() if inside.size else (lo + hi) / 2)
    assert np.array_equal(q.codebook, np.sort(np.array(expected)).astype(np.float16))


def test_kmeans_beats_uniform_distortion_and_is_a_lloyd_fixed_point():
    z = np.random.default_rng(3).standard_normal(50_000)
    u, k = quantize(z, 11, "uniform"), quantize(z, 11, "kmeans")
    mse = lambda q: float(np.mean((q.values() - z) ** 2))
    assert mse(k) < mse(u)
    # Each level is the mean of its cell up to float16 rounding (relative 2^-10).
    for j in range(11):
        cell = z[k.indices == j]
        assert abs(cell.mean() - float(k.codebook[j])) <= 2e-3 * max(1.0, abs(cell.mean()))


@pytest.mark.parametrize("method", ["uniform", "kmeans"])
def test_degenerate_inputs(method):
    same = quantize(np.full(100, 0.7), 5, method)
    assert np.all(same.values() == np.float32(np.float16(0.7)))
    one = quantize(np.array([2.5]), 256, method)
    assert one.values().tolist() == [2.5]
    few = np.array([1.0, -2.0, 1.0, 0.5, -2.0])          # 3 distinct values, 8 levels
    q = quantize(few, 8, method)
    assert np.array_equal(q.values(), few.astype(np.float32))
    assert (q.counts() > 0).sum() == 3 and q.counts().sum() == few.size


def test_assign_nearest_ties_and_duplicates_go_to_lowest_index():
    c = np.array([0.0, 1.0, 1.0, 2.0], dtype=np.float16)
    idx = assign_nearest(np.array([0.5, 1.0, 1.5, 3.0, -1.0]), c)
    assert idx.tolist() == [0, 1, 1, 3, 0]


def test_bad_input_raises_clear_errors():
    with pytest.raises(BoundInputError, match="NaN"):
        quantize(np.array([0.0, np.nan]), 4)
    with pytest.raises(BoundInputError, match="empty"):
        quantize(np.array([]), 4)
    with pytest.raises(BoundInputError, match="levels"):
        quantize(np.zeros(3), 0)
    with pytest.raises(BoundInputError, match="method"):
        quantize(np.zeros(3), 4, method="lloyd")
    with pytest.raises(BoundInputError, match="float16"):
        quantize(np.array([0.0, 1e6]), 2)
    with pytest.raises(BoundInputError, match="indices"):
        Quantized(codebook=np.zeros(2, np.float16), indices=np.array([0, 2]))
