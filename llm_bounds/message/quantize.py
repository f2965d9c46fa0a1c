"""Quantization of a parameter vector z to L levels: a float16 codebook and one index per coordinate.

The codebook travels in the message as float16, so it is rounded to float16 *before* the indices are
assigned, and the quantized vector is defined as ``codebook.astype(float32)[indices]``: exactly what
the decoder rebuilds. Indices go to the nearest level (ties to the lower index), so the same rule
serves both codebooks:

* ``"uniform"``: L equal-width bins over [min z, max z], each level at the mean of the values in its
  bin, an empty bin keeping its centre (the method of Lotfi et al.'s reference code);
* ``"kmeans"``: 1-D Lloyd iterations from a quantile initialisation, exact and vectorised via prefix
  sums over the sorted values; an empty cluster is re-seeded at a data point drawn from
  ``numpy.random.default_rng(seed)``.

Levels may be unused (count 0), e.g. when z has fewer distinct values than L.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llm_bounds.core.errors import require, require_one_of

METHODS = ("uniform", "kmeans")
MAX_LEVELS = 1 << 16


@dataclass
class Quantized:
    """A quantized vector: ``codebook`` (L float16 levels) and ``indices`` (d int32 values in [0, L))."""

    codebook: np.ndarray
    indices: np.ndarray

    def __post_init__(self):
        self.codebook = np.ascontiguousarray(self.codebook, dtype=np.float16).reshape(-1)
        self.indices = np.ascontiguousarray(self.indices, dtype=np.int32).reshape(-1)
        require(1 <= self.codebook.size <= MAX_LEVELS,
                f"a codebook has 1 to {MAX_LEVELS} levels, got {self.codebook.size}")
        require(bool(np.isfinite(self.codebook).all()),
                "the float16 codebook has a non-finite level; rescale z into the float16 range (|z| < 65504)")
        require(self.indices.size >= 1, "a quantized vector has at least one coordinate, got d = 0")
        require(int(self.indices.min()) >= 0 and int(self.indices.max()) < self.codebook.size,
                f"indices must lie in [0, {self.codebook.size}), got range "
                f"[{int(self.indices.min())}, {int(self.indices.max())}]")

    @property
    def levels(self) -> int:
        """L, the number of codebook levels (used or not)."""
        return int(self.codebook.size)

    @property
    def d(self) -> int:
        """The number of coordinates."""
        return int(self.indices.size)

    def values(self) -> np.ndarray:
        """The quantized vector ẑ = codebook[indices] as float32 (the decoder's exact output)."""
        return self.codebook.astype(np.float32)[self.indices]

    def counts(self) -> np.ndarray:
        """How many coordinates use each level, an int64 array of length L summing to d."""
        return np.bincount(self.indices, minlength=self.levels).astype(np.int64)


def _check_vector(z) -> np.ndarray:
    """z as a flat float64 array, after checking it is non-empty and finite."""
    z = np.asarray(z)
    require(z.size >= 1, "cannot quantize an empty vector; pass z with at least one coordinate")
    require(np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer),
            f"z must be a real array, got dtype {z.dtype}")
    z = z.astype(np.float64).reshape(-1)
    require(bool(np.isfinite(z).all()), "z has NaN or infinite entries; fix the training run before quantizing")
    return z


def to_float16_codebook(levels: np.ndarray) -> np.ndarray:
    """Round float levels to the float16 codebook that the message carries, sorted ascending."""
    with np.errstate(over="ignore"):
        c16 = np.sort(np.asarray(levels, dtype=np.float64)).astype(np.float16)
    require(bool(np.isfinite(c16).all()),
            "a codebook level overflows float16 (|level| > 65504); rescale z before quantizing")
    return c16


def assign_nearest(z: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the nearest level of a sorted ``codebook`` for each entry of ``z`` (ties → lower index).

    Distances are compared in float64, where float16 and float32 values are exact.
    """
    c = np.asarray(codebook, dtype=np.float64)
    require(bool(np.all(c[1:] >= c[:-1])), "assign_nearest needs an ascending codebook; sort it first")
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    hi = np.clip(np.searchsorted(c, z, side="left"), 0, c.size - 1)   # first level >= z
    lo = np.clip(hi - 1, 0, c.size - 1)
    take_lo = np.abs(z - c[lo]) <= np.abs(c[hi] - z)
    idx = np.where(take_lo, lo, hi)
    # Duplicated float16 levels: move to the first copy so the lowest index wins ties.
    first = np.searchsorted(c, c, side="left")
    return first[idx].astype(np.int32)


def uniform_levels(z: np.ndarray, levels: int) -> np.ndarray:
    """Float64 levels: the mean of z in each of L equal-width bins over [min z, max z] (centre if empty)."""
    lo, hi = float(z.min()), float(z.max())
    if hi == lo:
        return np.full(levels, lo)
    width = (hi - lo) / levels
    bins = np.clip(((z - lo) / width).astype(np.int64), 0, levels - 1)
    sums = np.bincount(bins, weights=z, minlength=levels)
    counts = np.bincount(bins, minlength=levels)
    centres = lo + (np.arange(levels) + 0.5) * width
    return np.where(counts > 0, sums / np.maximum(counts, 1), centres)


def kmeans_levels(z: np.ndarray, levels: int, seed: int = 0, max_iter: int = 300, tol: float = 1e-12) -> np.ndarray:
    """Float64 levels from 1-D Lloyd iterations (k-means on the squared error), deterministic per seed.

    Init: the (i + ½)/L quantiles. Each iteration costs O(L log d) thanks to prefix sums over the sorted
    values. Stops when no level moves by more than ``tol`` times the spread of z, or after ``max_iter``.
    """
    rng = np.random.default_rng(seed)
    zs = np.sort(z)
    prefix = np.concatenate([[0.0], np.cumsum(zs)])
    spread = float(zs[-1] - zs[0])
    if spread == 0.0:
        return np.full(levels, zs[0])
    c = np.quantile(zs, (np.arange(levels) + 0.5) / levels)
    for _ in range(max_iter):
        c = np.sort(c)
        cuts = np.searchsorted(zs, (c[1:] + c[:-1]) / 2, side="right")
        edges = np.concatenate([[0], cuts, [zs.size]])
        n = np.diff(edges)
        means = (prefix[edges[1:]] - prefix[edges[:-1]]) / np.maximum(n, 1)
        empty = n == 0
        new = np.where(empty, c, means)
        if empty.any():
            new[empty] = zs[rng.integers(0, zs.size, int(empty.sum()))]
        moved = float(np.max(np.abs(new - c)))
        c = new
        if moved <= tol * spread and not empty.any():
            break
    return np.sort(c)


def quantize(z, levels: int, method: str = "uniform", seed: int = 0) -> Quantized:
    """Quantize z to ``levels`` float16 levels with the ``"uniform"`` or ``"kmeans"`` codebook.

    The codebook is rounded to float16 and sorted before each coordinate goes to its nearest level,
    so ``result.values()`` is exactly what the message decodes to. Deterministic for a given seed.
    """
    require_one_of(method, METHODS, "quantization method")
    require(float(levels) == int(levels) and 1 <= int(levels) <= MAX_LEVELS,
            f"levels must be an integer in [1, {MAX_LEVELS}], got {levels!r}")
    levels = int(levels)
    z = _check_vector(z)
    raw = uniform_levels(z, levels) if method == "uniform" else kmeans_levels(z, levels, seed=seed)
    codebook = to_float16_codebook(raw)
    return Quantized(codebook=codebook, indices=assign_nearest(z, codebook))
