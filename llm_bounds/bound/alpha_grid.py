"""The smoothing weight α chosen from a grid after evaluation, with the choice charged.

The prediction-smoothed loss −log2((1−α)p + α/V) (:mod:`llm_bounds.bound.smoothing`) trades the
loss range against the fit; the best α is only known after the sample is scored, so the bound is
taken at every α of a grid fixed beforehand and the smallest is reported, paying for the choice
by a union bound (log2|G| bits in K and a |G|-way split of the subsample δ).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from llm_bounds.bound.generalization import BoundResult, generalization_bound
from llm_bounds.core.errors import require


def bound_over_alpha_grid(*, empirical_by_alpha: Mapping[float, float],
                          variance_by_alpha: Mapping[float, float] | None = None,
                          centred_sq_by_alpha: Mapping[float, float] | None = None,
                          centred_sq_variance_by_alpha: Mapping[float, float] | None = None,
                          running_sq_by_alpha: Mapping[float, float] | None = None,
                          centred_sq_running_by_alpha: Mapping[float, float] | None = None,
                          centre_mean_by_alpha: Mapping[float, float] | None = None,
                          log_wealth_by_alpha: Mapping[float, Sequence[float]] | None = None,
                          **kwargs) -> tuple[BoundResult, list[BoundResult]]:
    """The smallest nll bound over a grid G of smoothing weights α, with the choice charged.

    For every α ∈ G the bound is computed with log2|G| extra bits in K and the subsample δ split
    |G| ways, so the minimum over G is itself a valid bound at confidence 1 − δ (union bound over
    the grid: each α gets prior weight 1/|G| in both terms). Returns (chosen, all results in grid
    order). ``kwargs`` are passed to :func:`generalization_bound` (metric is ``nll``).
    """
    alphas: Sequence[float] = list(empirical_by_alpha)
    require(len(alphas) >= 1, "the alpha grid is empty; give at least one alpha")
    require(len(set(alphas)) == len(alphas), f"the alpha grid has duplicates: {alphas}")
    extra_union = int(kwargs.pop("subsample_union", 1))
    extra_bits = float(kwargs.pop("grid_bits", 0.0))
    g = len(alphas)
    results = []
    for a in alphas:
        var = None if variance_by_alpha is None else variance_by_alpha[a]
        sq = None if centred_sq_by_alpha is None else centred_sq_by_alpha[a]
        sq_var = None if centred_sq_variance_by_alpha is None else centred_sq_variance_by_alpha[a]
        run_sq = None if running_sq_by_alpha is None else running_sq_by_alpha[a]
        sq_run_sq = None if centred_sq_running_by_alpha is None else centred_sq_running_by_alpha[a]
        centre = None if centre_mean_by_alpha is None else centre_mean_by_alpha[a]
        wealth = None if log_wealth_by_alpha is None else log_wealth_by_alpha[a]
        results.append(generalization_bound(
            metric="nll", alpha=a, empirical=empirical_by_alpha[a], subsample_variance=var, centred_sq_mean=sq,
            centred_sq_variance=sq_var, subsample_running_sq=run_sq, centred_sq_running_sq=sq_run_sq,
            centre_mean=centre, log_wealth_mean=wealth,
            grid_bits=extra_bits + math.log2(g), subsample_union=extra_union * g, **kwargs))
    chosen = min(results, key=lambda res: res.bound)
    return chosen, results

