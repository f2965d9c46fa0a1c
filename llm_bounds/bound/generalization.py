"""Compression (Occam) generalization bounds for language models, at the token and document level.

The claim, for a hypothesis h named by a prefix-free code of K(h) bits (:mod:`llm_bounds.message.complexity`),
a loss bounded in [lo, hi] with width Δ = hi − lo, and a confidence 1 − δ:

    R(h) ≤ R̂_m(h) + (complexity term)        for every h at once, with probability ≥ 1 − δ_c,
    R̂_m(h) ≤ R̂_n(h) + (subsample term)       for the chosen h,      with probability ≥ 1 − δ_s,

and δ_c + δ_s = δ, so ``bound = R̂_n + subsample term + complexity term`` holds with
probability ≥ 1 − δ (union bound). The default split gives δ_c = r·δ with r = n/(n+m), as in the
reference (Lotfi et al., ICML 2024, App. A); with no subsampling (n = None) δ_c = δ.

**Levels** (what R and m mean):

* ``document`` (Lotfi et al., *Non-Vacuous Generalization Bounds for Large Language Models*,
  ICML 2024): the m training documents are i.i.d. draws from a distribution D; the loss of a
  document is its mean smoothed loss in bits per token; R(h) = E_{doc∼D}[loss], R̂_m its mean over
  the m training documents. Hoeffding (or the tighter Chernoff/kl form) over m documents.
* ``token`` (Lotfi et al., *Unlocking Tokens as Data Points*, NeurIPS 2024): the m scored training
  tokens X_1..X_m form one sequence with no independence assumed. The risk is the **average
  conditional expected loss at the training contexts**,
  R(h) = (1/m)·Σ_i E[ℓ(h, X_i | X_<i) | X_<i], and R̂_m(h) = (1/m)·Σ_i ℓ(h, X_i | X_<i), both in
  bits per token. The differences form a martingale with increments in an interval of width Δ,
  so Azuma–Hoeffding applies (or the variance-aware Freedman-type bound, or, when every training
  token is scored, the betting form); for a 0–1 loss the Bernoulli-MGF supermartingale gives
  the martingale kl bound.

**Metrics**: ``nll`` is the prediction-smoothed log-loss −log2((1−α)p + α/V) in bits per token,
in [log2(V/((1−α)V+α)), log2(V/α)] (:mod:`llm_bounds.bound.smoothing`); ``error`` is a 0–1 loss (top-k
error), in [0, 1].

**Subsampling**: R̂_m is estimated from n units drawn uniformly *with replacement* from the m
units (chunks of equally many tokens at the token level, documents at the document level), so
the n draws are i.i.d. with mean exactly R̂_m; any i.i.d. inequality bounds R̂_m from above.

**Union bounds that are charged** (each one is reported):

* K(h) bits for the hypothesis (message + length prefix + hyperparameter bits, given as
  ``complexity_bits``);
* ``grid_bits`` = log2|G| when the reported value is the best over a grid G chosen *after*
  looking at the subsample (e.g. the smoothing α): added to K in the complexity term **and** the
  subsample δ is split |G| ways (``subsample_union``), because the choice used the subsample too
  (the reference charges the bits but forgets this second union);
* ``best`` compares several subsample inequalities on the same data: δ_s is split among them,
  except that kl is never looser than Hoeffding (Pinsker), so taking kl over Hoeffding needs no
  charge.

Each reported bound is a separate claim at confidence 1 − δ (e.g. the log-loss bound and the
top-1 error bound each hold with probability ≥ 1 − δ).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Sequence

import numpy as np

from llm_bounds.bound.concentration import (betting_lambda_grid, ucb_bernoulli_martingale, ucb_betting_martingale,
                                            ucb_empirical_bernstein, ucb_freedman_martingale, ucb_hoeffding, ucb_kl)
from llm_bounds.core.errors import require, require_one_of
from llm_bounds.bound.smoothing import check_alpha_vocab, smoothed_loss_range

GRANULARITIES = ("token", "document")
METRICS = ("nll", "error")
METHODS = ("hoeffding", "kl", "bernstein", "freedman", "betting", "best")
LN2 = math.log(2.0)


@dataclass(frozen=True)
class BoundResult:
    """One certified upper bound with every term that went into it.

    ``bound = empirical + subsample_term + complexity_term``. Units are those of the metric: bits
    per token for ``nll`` (per-document mean bits per token at the document level), a rate in
    [0, 1] for ``error``.
    """

    bound: float
    granularity: str
    metric: str
    method: str
    complexity_method: str        # inequality used for R ≤ R̂_m + … (or "best of …")
    subsample_method: str         # inequality used for R̂_m ≤ R̂_n + … ("none" without subsampling)
    empirical: float              # R̂_n (or R̂_m when n is None)
    full_empirical_ucb: float     # upper confidence bound on R̂_m
    subsample_term: float         # full_empirical_ucb − empirical
    complexity_term: float        # bound − full_empirical_ucb
    complexity_bits: float        # K(h) as given (message, length prefix, hyperparameters)
    grid_bits: float              # log2|G| for a grid searched after evaluation
    total_bits: float             # complexity_bits + grid_bits: the K in the complexity term
    delta: float
    delta_complexity: float
    delta_subsample: float
    subsample_union: int          # ways δ_s is split (grid size × compared inequalities)
    method_union: int             # ways the whole δ is split among compared methods ("best")
    delta_variance: float         # freedman: δ for the upper bound on the centred second moment
    centred_sq_mean: float | None   # freedman: (1/m)Σ(ℓ_t − c_t)² estimate, squared units
    centred_sq_ucb: float | None    # freedman: its upper confidence bound
    freedman_lambda: float | None   # freedman: the λ of the grid that attained the bound
    kl_martingale_lambda: float | None  # martingale-kl (token-level errors): the λ of its grid that attained it
    loss_lo: float
    loss_hi: float
    loss_range: float             # Δ = loss_hi − loss_lo
    m: int
    n: int | None
    alpha: float | None
    vocab_size: int | None
    centre_mean: float | None = None       # betting: c̄ = (1/m)Σc_t, the mean predictable centre (loss units)
    log_wealth: float | None = None        # betting: G(λ) = (1/m)Σln(1 + λξ_t) at the chosen λ (nats per token)
    betting_lambda: float | None = None    # betting: the λ of its grid that attained the bound

    def to_dict(self) -> dict:
        """The JSON form; ``granularity`` is written under the public key ``level``."""
        return {("level" if k == "granularity" else k): v for k, v in asdict(self).items()}


def loss_interval(metric: str, alpha: float | None, vocab_size: int | None) -> tuple[float, float]:
    """[lo, hi] of the per-token (or per-unit mean) loss for ``metric``."""
    require_one_of(metric, METRICS, "metric")
    if metric == "error":
        return 0.0, 1.0
    require(alpha is not None and vocab_size is not None,
            "the nll metric needs the smoothing alpha and the vocabulary size (--alpha, --vocab-size)")
    check_alpha_vocab(alpha, vocab_size)
    return smoothed_loss_range(alpha, vocab_size)


def _is_count(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x) and float(x) == int(x) and x >= 1


def generalization_bound(*, granularity: str, metric: str, empirical: float, complexity_bits: float, m: int,
                         delta: float, n: int | None = None, alpha: float | None = None,
                         vocab_size: int | None = None, method: str = "best",
                         subsample_variance: float | None = None, centred_sq_mean: float | None = None,
                         centred_sq_variance: float | None = None, grid_bits: float = 0.0, subsample_union: int = 1,
                         delta_split: float | None = None, subsample_running_sq: float | None = None,
                         centred_sq_running_sq: float | None = None, centre_mean: float | None = None,
                         log_wealth_mean: Sequence[float] | None = None) -> BoundResult:
    """Upper bound on the risk R(h) (see the module docstring for R at each level), w.p. ≥ 1 − δ.

    Arguments (units of the metric unless stated):
      empirical          R̂_n, the mean over the n sampled units (or R̂_m when ``n`` is None).
      complexity_bits    K(h) ≥ 0 in bits, used as given.
      m                  number of units the risk averages over: tokens (token level) or
                         documents (document level).
      n                  number of units sampled uniformly with replacement, or None if
                         ``empirical`` is the full R̂_m.
      subsample_variance unbiased sample variance of the n per-unit values (squared units); enables
                         the empirical Bernstein subsample term.
      centred_sq_mean    token level: mean over the sampled units of the per-unit mean of
                         (ℓ_t − c_t)², with c_t a predictable centre (squared units per token);
                         enables the variance-aware ``freedman`` complexity term.
      centred_sq_variance  unbiased sample variance of those per-unit values; enables an empirical
                         Bernstein upper bound on the centred second moment.
      subsample_running_sq  (1/n)Σ(x_i − c_i)² of the n per-unit values in drawn order, with the
                         running-mean centre (:func:`llm_bounds.bound.concentration.running_centred_square`);
                         enables the variance-aware subsample term (below).
      centred_sq_running_sq  the same for the per-unit centred second moments (freedman).
      centre_mean, log_wealth_mean  token level with n = None (every token scored): the mean centre
                         c̄ (loss units per token) and G(λ) = (1/m)Σln(1 + λ(c_t − ℓ_t)/Δ) for each λ
                         of :func:`llm_bounds.bound.concentration.betting_lambda_grid` (nats per
                         token); enable the ``betting`` complexity term.
      grid_bits, subsample_union  charges for a choice made after evaluation (module docstring).
      delta_split        r, the share of δ given to the complexity term; default n/(n+m).

    Methods:
      hoeffding   Hoeffding/Azuma in both terms: exactly the reference SubLoRA formula
                  B = R̂ + Δ·[sqrt((K ln2 + ln(1/(rδ)))/(2m)) + sqrt(ln(1/((1−r)δ))/(2n))].
      kl          the Chernoff/kl form wherever observations are independent (the document-level
                  complexity term and every subsample term); at the token level Azuma for the
                  log-loss, and for a 0–1 loss (``error``) the martingale kl bound
                  (:func:`llm_bounds.bound.concentration.ucb_bernoulli_martingale`), fixed per
                  metric so that no union between the two is paid.
      bernstein   as kl, with the empirical Bernstein subsample term (needs the variance).
      freedman    token level: the variance-aware martingale bound
                  (:func:`llm_bounds.bound.concentration.ucb_freedman_martingale`) for the complexity term,
                  with upper bounds on R̂_m and on the centred second moment from the subsample
                  (each the best of kl and, when the variance is given, empirical Bernstein, at
                  half the budget); the subsample budget (1−r)δ is split equally between the two.
      betting     token level, n = None: the capital-process (betting) bound in its ratio form
                  (:func:`llm_bounds.bound.concentration.ucb_betting_martingale`), never looser than
                  freedman at the same λ; it needs every token's loss and centre, so no subsample.
      best        the tightest of the valid methods, each at δ/M where M is the number of methods
                  compared (union bound): kl (with the best of kl/Bernstein for the subsample term
                  when the variance is given) and, at the token level with ``centred_sq_mean``,
                  freedman. kl is never looser than Hoeffding, so Hoeffding need not be compared.

    With ``subsample_running_sq`` (what a run passes) the methods are fixed per metric before the
    data is seen, so no δ is paid for candidates that cannot win. The subsample terms (R̂_m, and the
    centred second moment with ``centred_sq_running_sq``) are the Freedman-type bound for i.i.d.
    draws with the running-mean centre, whose width follows the observed spread instead of the
    Maurer–Pontil range term 7Δ·ln(2/δ)/(3(n−1)); for a 0–1 loss it is compared with the binomial
    kl bound (either can win: kl near 0), with δ split 2 ways. ``best`` at the token level for the
    log-loss is ``freedman`` alone (method_union = 1), or ``betting`` alone when every token is
    scored and its inputs are given (it dominates freedman, so nothing is compared).
    """
    require_one_of(method, METHODS, "method")
    kw = dict(granularity=granularity, metric=metric, empirical=empirical, complexity_bits=complexity_bits, m=m, n=n,
              alpha=alpha, vocab_size=vocab_size, subsample_variance=subsample_variance,
              centred_sq_mean=centred_sq_mean, centred_sq_variance=centred_sq_variance, grid_bits=grid_bits,
              subsample_union=subsample_union, delta_split=delta_split, subsample_running_sq=subsample_running_sq,
              centred_sq_running_sq=centred_sq_running_sq, centre_mean=centre_mean, log_wealth_mean=log_wealth_mean)
    if method != "best":
        return _single_bound(method=method, delta=delta, **kw)
    if granularity == "token" and metric == "nll" and n is None and log_wealth_mean is not None:
        return replace(_single_bound(method="betting", delta=delta, **kw), method="best")
    fixed = (granularity == "token" and metric == "nll" and centred_sq_mean is not None
             and (subsample_running_sq is not None or n is None))
    if fixed:  # chosen by the inputs there are, before the data: no union over methods
        return replace(_single_bound(method="freedman", delta=delta, **kw), method="best")
    # "best" inside _single_bound is the kl path with the best subsample inequality.
    candidates = ["best"] + (["freedman"] if granularity == "token" and centred_sq_mean is not None else [])
    if len(candidates) == 1:
        return _single_bound(method="best", delta=delta, **kw)
    results = [_single_bound(method=c, delta=delta / len(candidates), **kw) for c in candidates]
    chosen = min(results, key=lambda r: r.bound)
    return replace(chosen, method="best", delta=float(delta), method_union=len(candidates))


def _ucb_best(mean, variance, lo, hi, n, log_inv_delta, methods) -> tuple[str, float]:
    """The smallest of the named i.i.d. upper bounds, each given ``log_inv_delta`` (already split)."""
    values = {}
    for c in methods:
        if c == "hoeffding":
            values[c] = ucb_hoeffding(mean, lo, hi, n, log_inv_delta)
        elif c == "kl":
            values[c] = ucb_kl(mean, lo, hi, n, log_inv_delta)
        else:
            values[c] = ucb_empirical_bernstein(mean, variance, lo, hi, n, log_inv_delta)
    best = min(values, key=values.get)
    return best, values[best]


def _single_bound(*, granularity, metric, empirical, complexity_bits, m, delta, n, alpha, vocab_size, method,
                  subsample_variance, centred_sq_mean, centred_sq_variance, grid_bits, subsample_union,
                  delta_split, subsample_running_sq, centred_sq_running_sq, centre_mean,
                  log_wealth_mean) -> BoundResult:
    require_one_of(granularity, GRANULARITIES, "level")
    require(isinstance(delta, (int, float)) and math.isfinite(delta) and 0.0 < delta < 1.0,
            f"delta must lie strictly between 0 and 1, got {delta!r}; e.g. --delta 0.05")
    require(isinstance(complexity_bits, (int, float)) and math.isfinite(complexity_bits) and complexity_bits >= 0,
            f"complexity bits must be a finite number >= 0, got {complexity_bits!r}")
    require(math.isfinite(grid_bits) and grid_bits >= 0, f"grid bits must be >= 0, got {grid_bits!r}")
    require(_is_count(m), f"m must be a positive integer (units in the training set), got {m!r}")
    require(n is None or _is_count(n), f"n must be a positive integer (sampled units) or omitted, got {n!r}")
    require(_is_count(subsample_union), f"subsample_union must be a positive integer, got {subsample_union!r}")
    m = int(m)
    n = None if n is None else int(n)
    lo, hi = loss_interval(metric, alpha, vocab_size)
    width = hi - lo
    require(isinstance(empirical, (int, float)) and math.isfinite(empirical),
            f"empirical loss must be a finite number, got {empirical!r}")
    tol = 1e-9 * max(1.0, abs(hi))
    require(lo - tol <= empirical <= hi + tol,
            f"empirical {metric} {empirical!r} lies outside the loss range [{lo:.6g}, {hi:.6g}]; "
            f"check the units (bits per token) and the alpha/vocab size")
    if subsample_variance is not None:
        require(n is not None and n >= 2, "a subsample variance needs n >= 2 sampled units (--n)")
        max_var = width * width / 4.0 * n / (n - 1)
        require(math.isfinite(subsample_variance) and -tol <= subsample_variance <= max_var * (1 + 1e-9),
                f"subsample variance {subsample_variance!r} is impossible for values in a range of "
                f"width {width:.6g} (must lie in [0, {max_var:.6g}])")
        subsample_variance = max(float(subsample_variance), 0.0)
    for name, value, top in (("subsample running square", subsample_running_sq, width * width),
                             ("centred second moment running square", centred_sq_running_sq, width ** 4)):
        require(value is None or (n is not None and math.isfinite(value) and -tol <= value <= top * (1 + 1e-9)),
                f"{name} {value!r} is impossible here (needs n and a value in [0, {top:.6g}])")
    running = subsample_running_sq is not None and method in ("best", "freedman")
    if method == "bernstein":
        require(subsample_variance is not None,
                "method 'bernstein' needs the sample variance of the per-unit losses (--subsample-variance)")
    if method == "freedman":
        require(granularity == "token", "method 'freedman' is a martingale (token-level) bound; use --level token")
        require(centred_sq_mean is not None, "method 'freedman' needs the centred second moment of the losses")
        require(math.isfinite(centred_sq_mean) and -tol <= centred_sq_mean <= width * width * (1 + 1e-9),
                f"centred second moment {centred_sq_mean!r} is impossible for a range of width {width:.6g}")
        centred_sq_mean = max(float(centred_sq_mean), 0.0)
    if method == "betting":
        require(granularity == "token", "method 'betting' is a martingale (token-level) bound; use --level token")
        require(n is None, "method 'betting' needs every token's loss and centre (n = all), not a subsample")
        require(centre_mean is not None and log_wealth_mean is not None,
                "method 'betting' needs the mean centre and the mean log-wealth over the betting lambda grid")
        require(math.isfinite(centre_mean) and lo - tol <= centre_mean <= hi + tol,
                f"the mean centre {centre_mean!r} lies outside the loss range [{lo:.6g}, {hi:.6g}]")

    if n is None:
        r = 1.0
    elif delta_split is None:
        r = n / (n + m)
    else:
        require(0.0 < delta_split < 1.0, f"delta_split must lie in (0, 1), got {delta_split!r}")
        r = float(delta_split)
    delta_c = r * delta
    delta_v = (1.0 - r) * delta / 2.0 if (method == "freedman" and n is not None) else 0.0
    delta_s = (1.0 - r) * delta - delta_v
    total_bits = float(complexity_bits) + float(grid_bits)

    # R̂_m ≤ R̂_n + subsample term (i.i.d. draws with replacement).
    union = int(subsample_union)
    sq_ucb = centred_sq_mean
    if n is None:
        sub_method, full_ucb = "none", float(empirical)
    elif running:
        # log-loss: the running-mean Freedman bound alone. A 0-1 loss can sit near 0 (top-100 errors),
        # where the binomial kl bound wins at small n, so both are compared and the δ split 2 ways.
        sub_candidates = ["freedman-running-mean"] + (["kl"] if metric == "error" else [])
        union *= len(sub_candidates)
        log_s = math.log(union / delta_s)
        values = {"freedman-running-mean": ucb_freedman_martingale(empirical, max(subsample_running_sq, 0.0), lo, hi,
                                                                   n, log_s)[0]}
        if metric == "error":
            values["kl"] = ucb_kl(empirical, lo, hi, n, log_s)
        sub_method = min(values, key=values.get)
        full_ucb = min(values[sub_method], hi)
        if method == "freedman":
            if centred_sq_running_sq is not None:
                sq_ucb, _ = ucb_freedman_martingale(centred_sq_mean, max(centred_sq_running_sq, 0.0), 0.0, width * width,
                                                    n, math.log(union / delta_v))
            else:
                sq_methods = ["kl"] + (["bernstein"] if centred_sq_variance is not None else [])
                _, sq_ucb = _ucb_best(centred_sq_mean, centred_sq_variance, 0.0, width * width, n,
                                      math.log(union * len(sq_methods) / delta_v), sq_methods)
            sq_ucb = min(sq_ucb, width * width)
    else:
        with_bernstein = ["kl"] + (["bernstein"] if subsample_variance is not None else [])
        candidates = {"hoeffding": ["hoeffding"], "kl": ["kl"], "bernstein": ["bernstein"],
                      "freedman": with_bernstein, "best": with_bernstein}[method]
        union *= len(candidates)
        sub_method, full_ucb = _ucb_best(empirical, subsample_variance, lo, hi, n, math.log(union / delta_s),
                                         candidates)
        if method != "hoeffding":
            full_ucb = min(full_ucb, hi)  # R̂_m ≤ hi always; the reference formula is kept unclipped
        if method == "freedman":
            # (1/m)Σ(ℓ_t − c_t)² from n i.i.d. unit draws with values in [0, Δ²].
            sq_methods = ["kl"] + (["bernstein"] if centred_sq_variance is not None else [])
            sq_union = int(subsample_union) * len(sq_methods)
            _, sq_ucb = _ucb_best(centred_sq_mean, centred_sq_variance, 0.0, width * width, n,
                                  math.log(sq_union / delta_v), sq_methods)

    # R ≤ R̂_m + complexity term, for every h at once (prior weight 2^(−K)).
    log_c = total_bits * LN2 + math.log(1.0 / delta_c)
    lam = kl_lam = bet_lam = wealth = None
    if method == "betting":
        comp_method = "betting"
        bound, bet_lam = ucb_betting_martingale(full_ucb, float(centre_mean), log_wealth_mean, lo, hi, m, log_c)
        wealth = float(np.asarray(log_wealth_mean, dtype=np.float64)[betting_lambda_grid() == bet_lam][0])
    elif method == "freedman":
        comp_method = "freedman"
        bound, lam = ucb_freedman_martingale(full_ucb, sq_ucb, lo, hi, m, log_c)
    elif method != "hoeffding" and granularity == "token" and metric == "error":
        # fixed for 0-1 losses before any data is seen, so no union with Azuma is paid
        comp_method = "martingale-kl"
        bound, kl_lam = ucb_bernoulli_martingale(full_ucb, m, log_c)
    elif method == "hoeffding" or granularity == "token":
        comp_method = "azuma-hoeffding" if granularity == "token" else "hoeffding"
        bound = ucb_hoeffding(full_ucb, lo, hi, m, log_c)
    else:
        comp_method = "kl"
        bound = ucb_kl(full_ucb, lo, hi, m, log_c)
    if method != "hoeffding":
        bound = min(bound, hi)

    return BoundResult(
        bound=bound, granularity=granularity, metric=metric, method=method,
        complexity_method=comp_method, subsample_method=sub_method,
        empirical=float(empirical), full_empirical_ucb=full_ucb,
        subsample_term=full_ucb - float(empirical), complexity_term=bound - full_ucb,
        complexity_bits=float(complexity_bits), grid_bits=float(grid_bits), total_bits=total_bits,
        delta=float(delta), delta_complexity=delta_c, delta_subsample=delta_s, subsample_union=union,
        method_union=1, delta_variance=delta_v,
        centred_sq_mean=None if centred_sq_mean is None else float(centred_sq_mean),
        centred_sq_ucb=None if sq_ucb is None else float(sq_ucb), freedman_lambda=lam, kl_martingale_lambda=kl_lam,
        loss_lo=lo, loss_hi=hi, loss_range=width, m=m, n=n,
        alpha=None if metric == "error" else float(alpha), vocab_size=None if vocab_size is None else int(vocab_size),
        centre_mean=None if bet_lam is None else float(centre_mean), log_wealth=wealth, betting_lambda=bet_lam,
    )
