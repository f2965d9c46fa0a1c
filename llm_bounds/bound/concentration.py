"""Concentration inequalities: one-sided upper confidence bounds on a mean.

Each function bounds an unknown mean μ from above, given an empirical mean of ``count`` bounded
observations in ``[lo, hi]``, and a failure budget given as ``log_inv_delta = ln(1/δ')`` in
**nats** (so that a union-bound weight 2^(−K) with K ≈ 10⁵ bits never underflows: pass
``K·ln 2 + ln(1/δ)``). Every function returns a value in the loss's own units; the callers in
:mod:`llm_bounds.bound.generalization` work in bits per token (or per document, or 0–1 error rates).

Which inequality holds under which dependence:

============================  =============================  ========================================
function                      i.i.d. observations            martingale (bounded differences)
============================  =============================  ========================================
``ucb_hoeffding``             Hoeffding (1963), Thm 2        Azuma–Hoeffding (Azuma 1967)
``ucb_kl``                    Chernoff / Hoeffding (1963)    not used (see its docstring)
                              Thm 1 (binomial tail)
``ucb_empirical_bernstein``   Maurer & Pontil (2009), Thm 4  not valid
``ucb_freedman_martingale``   (valid)                        Freedman-type, predictable centre
``ucb_betting_martingale``    (valid)                        betting (ratio form), every token scored
``ucb_bernoulli_martingale``  (valid)                        kl form for [0, 1] losses
============================  =============================  ========================================
"""
from __future__ import annotations

import math

import numpy as np

from llm_bounds.core.errors import require


def _check(count: float, log_inv_delta: float, lo: float, hi: float) -> None:
    require(count >= 1, f"need at least one observation, got count={count!r}")
    require(math.isfinite(log_inv_delta) and log_inv_delta >= 0,
            f"log(1/delta) must be a finite non-negative number of nats, got {log_inv_delta!r}")
    require(math.isfinite(lo) and math.isfinite(hi) and hi > lo, f"need a finite range lo < hi, got [{lo}, {hi}]")


def ucb_hoeffding(mean: float, lo: float, hi: float, count: float, log_inv_delta: float) -> float:
    """Hoeffding / Azuma–Hoeffding upper bound: μ ≤ mean + (hi − lo)·sqrt(ln(1/δ) / (2·count)).

    Holds with probability ≥ 1 − δ when
    * (i.i.d.) the observations are independent with values in [lo, hi] and common mean μ
      (Hoeffding 1963, Thm 2), or
    * (martingale) X_1..X_count are adapted to a filtration F_t, each X_t lies in an interval of
      width hi − lo that is known given F_{t−1}, and μ = (1/count)·Σ_t E[X_t | F_{t−1}]
      (Azuma–Hoeffding; e.g. Lotfi et al., *Unlocking Tokens as Data Points*, NeurIPS 2024, Thm 1).
    """
    _check(count, log_inv_delta, lo, hi)
    return float(mean + (hi - lo) * math.sqrt(log_inv_delta / (2.0 * count)))


def bernoulli_kl(q, p):
    """kl(q‖p) = q·ln(q/p) + (1−q)·ln((1−q)/(1−p)) in **nats**, elementwise, with 0·ln 0 = 0.

    Returns +inf where p ∈ {0, 1} and q ≠ p.
    """
    q = np.asarray(q, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(q > 0, q * np.log(q / p), 0.0)
        b = np.where(q < 1, (1 - q) * np.log((1 - q) / (1 - p)), 0.0)
    out = a + b
    out = np.where((p <= 0) & (q > 0), np.inf, out)
    out = np.where((p >= 1) & (q < 1), np.inf, out)
    return out


def kl_upper_inverse(q, c, iters: int = 80):
    """kl⁻¹₊(q, c) = sup{ p ∈ [q, 1] : kl(q‖p) ≤ c }, elementwise, for q ∈ [0,1] and c ≥ 0 (nats).

    Computed by bisection in float64 (kl(q‖·) is increasing on [q, 1]); the returned value is the
    upper end of the final bracket, so rounding can only make the bound looser, never tighter.
    """
    q = np.clip(np.asarray(q, dtype=np.float64), 0.0, 1.0)
    c = np.asarray(c, dtype=np.float64)
    lo = q.copy()
    hi = np.ones_like(q + c)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        too_far = bernoulli_kl(q, mid) > c
        hi = np.where(too_far, mid, hi)
        lo = np.where(too_far, lo, mid)
    return hi if hi.ndim else float(hi)


def ucb_kl(mean: float, lo: float, hi: float, count: float, log_inv_delta: float) -> float:
    """Chernoff (binomial-tail) upper bound: μ ≤ lo + (hi−lo)·kl⁻¹₊((mean−lo)/(hi−lo), ln(1/δ)/count).

    Holds with probability ≥ 1 − δ for **independent** observations in [lo, hi] with common mean μ.
    Proof: for X ∈ [0,1] with mean p, convexity gives E e^{λX} ≤ 1 − p + p·e^λ (the Bernoulli
    moment generating function), so the binomial Chernoff bound P(X̄ ≤ q) ≤ exp(−count·kl(q‖p))
    for q ≤ p holds for any [0,1]-valued i.i.d. variables (Hoeffding 1963, Thm 1). Setting the
    right side to δ and inverting gives the claim. By Pinsker, kl(q‖p) ≥ 2(p−q)², so this bound is
    never looser than :func:`ucb_hoeffding` at the same δ.

    Not used for martingale (token-level) complexity terms: there the optimal Chernoff parameter
    depends on the random conditional means, and a fixed-λ supermartingale form would need a
    charged λ grid; we use Azuma–Hoeffding there instead.
    """
    _check(count, log_inv_delta, lo, hi)
    width = hi - lo
    q = min(max((mean - lo) / width, 0.0), 1.0)
    return float(lo + width * kl_upper_inverse(q, log_inv_delta / count))


def ucb_empirical_bernstein(mean: float, sample_variance: float, lo: float, hi: float, count: int,
                            log_inv_delta: float) -> float:
    """Empirical Bernstein bound (Maurer & Pontil 2009, Thm 4), for **i.i.d.** observations in [lo, hi]:

        μ ≤ mean + sqrt(2·V·ln(2/δ) / n) + 7·(hi−lo)·ln(2/δ) / (3·(n−1))

    with probability ≥ 1 − δ, where n = count ≥ 2 and V is the *unbiased* sample variance
    (1/(n−1)·Σ(X_i − mean)²) of the observations, in squared loss units. (The theorem is stated
    for [0,1]; scaling by hi − lo gives this form.) Its width scales with the observed spread
    rather than with the range, so it wins when the per-unit losses vary little.
    """
    _check(count, log_inv_delta, lo, hi)
    require(count >= 2, f"the empirical Bernstein bound needs n >= 2 observations, got n={count}")
    require(math.isfinite(sample_variance) and sample_variance >= 0,
            f"sample variance must be finite and >= 0, got {sample_variance!r}")
    log2d = math.log(2.0) + log_inv_delta
    return float(mean + math.sqrt(2.0 * sample_variance * log2d / count)
                 + 7.0 * (hi - lo) * log2d / (3.0 * (count - 1)))


def psi_exp(lam):
    """ψ_E(λ) = −ln(1 − λ) − λ, for λ ∈ [0, 1) (Fan, Grama & Liu 2012; Howard et al. 2021)."""
    lam = np.asarray(lam, dtype=np.float64)
    return -np.log1p(-lam) - lam


def freedman_lambda_grid(size: int = 64, smallest: float = 1e-6, largest: float = 0.95) -> np.ndarray:
    """The fixed grid of λ values the variance-aware martingale bound is optimised over (geometric).

    Fixed before any data is seen; the union bound over it costs ln(size) nats.
    """
    return np.geomspace(largest, smallest, size)


def ucb_freedman_martingale(mean: float, centred_sq_mean: float, lo: float, hi: float, count: float,
                            log_inv_delta: float, lambdas: np.ndarray | None = None) -> tuple[float, float]:
    """Variance-aware (empirical Freedman/Bernstein) martingale upper bound, with a predictable centre.

    Setting: losses ℓ_1..ℓ_m ∈ [lo, hi] adapted to F_t, with conditional means μ_t = E[ℓ_t | F_{t−1}],
    and a **predictable** centre c_t ∈ [lo, hi] (known given F_{t−1}, e.g. the model's own expected
    smoothed loss at that context). Write Δ = hi − lo, R = (1/m)Σμ_t, R̂ = (1/m)Σℓ_t and
    V = Σ(ℓ_t − c_t)². Then for a fixed λ ∈ (0, 1), with probability ≥ 1 − δ,

        R ≤ R̂ + Δ·ln(1/δ)/(λ·m) + ψ_E(λ)·V/(λ·m·Δ),      ψ_E(λ) = −ln(1−λ) − λ.

    Proof sketch. Put η_t = (c_t − ℓ_t)/Δ ≥ −1. For ξ ≥ −1 and λ ∈ [0,1),
    exp(λξ − ψ_E(λ)ξ²) ≤ 1 + λξ (Fan, Grama & Liu 2012, Lemma 4.1). Hence
    E[exp(λη_t − ψ_E(λ)η_t²) | F_{t−1}] ≤ 1 + λ(c_t − μ_t)/Δ ≤ exp(λ(c_t − μ_t)/Δ), and since
    η_t − (c_t − μ_t)/Δ = (μ_t − ℓ_t)/Δ, the process exp(λΣ(μ_t − ℓ_t)/Δ − ψ_E(λ)Σ η_t²) is a
    nonnegative supermartingale with initial value 1. Ville's/Markov's inequality gives
    P(λ·m(R − R̂)/Δ − ψ_E(λ)·V/Δ² ≥ ln(1/δ)) ≤ δ; rearrange. (The empirical-variance form follows
    Howard et al. 2021, *Time-uniform, nonparametric, nonasymptotic confidence sequences*, and the
    LLM setting Finzi et al., ICLR 2025.) The centre only has to be predictable: a poor centre makes
    V larger (a looser bound), never an invalid one.

    Here ``centred_sq_mean`` = V/m (squared units, per token) and ``log_inv_delta`` should already
    include the hypothesis prior K·ln 2; this function adds ln|Λ| for the union over the fixed λ
    grid Λ (:func:`freedman_lambda_grid`) and returns (bound, the λ that attained it). Width scales
    like sqrt(2·ln(1/δ)·V/m / m) instead of Azuma's Δ·sqrt(ln(1/δ)/(2m)).
    """
    _check(count, log_inv_delta, lo, hi)
    require(math.isfinite(centred_sq_mean) and centred_sq_mean >= 0,
            f"the centred second moment must be finite and >= 0, got {centred_sq_mean!r}")
    lam = freedman_lambda_grid() if lambdas is None else np.asarray(lambdas, dtype=np.float64)
    require(lam.ndim == 1 and lam.size >= 1 and np.all((lam > 0) & (lam < 1)), "lambda grid must lie in (0, 1)")
    width = hi - lo
    L = log_inv_delta + math.log(lam.size)
    widths = width * L / (lam * count) + psi_exp(lam) * centred_sq_mean / (lam * width)
    j = int(np.argmin(widths))
    return float(mean + widths[j]), float(lam[j])


def betting_lambda_grid(size: int = 32, smallest: float = 1e-3, largest: float = 1.0) -> np.ndarray:
    """The fixed λ grid of :func:`ucb_betting_martingale`: ``size`` values, geometric in
    [smallest, largest] (about 1.25 apart by default), from the largest down. λ = 1 is allowed
    there (every factor 1 + λξ_t stays ≥ 0). Fixed before any data is seen; its union costs ln|Λ| nats."""
    return np.geomspace(largest, smallest, size)


def log_wealth_terms(centred_gap, width: float, lambdas=None) -> np.ndarray:
    """ln(1 + λ·ξ_t) for each λ of the grid and each token, with ξ_t = (c_t − ℓ_t)/Δ (dimensionless).

    ``centred_gap`` holds c_t − ℓ_t (loss units; any shape S) and ``width`` is Δ = hi − lo; the
    result has shape [|Λ|, *S], in nats. For ℓ_t ≤ hi and c_t ≥ lo, ξ_t ≥ −1, so every factor is
    ≥ 1 − λ ≥ 0; a factor that rounding puts below 0 is taken as 0 (log −∞: that λ then gives no
    bound, which is conservative). The evaluation calls it for every scored token
    (:func:`llm_bounds.evaluation.evaluate.evaluate_units`).
    """
    xi = np.asarray(centred_gap, dtype=np.float64) / width
    lam = (betting_lambda_grid() if lambdas is None else np.asarray(lambdas, dtype=np.float64))
    with np.errstate(divide="ignore"):
        return np.log1p(np.maximum(lam.reshape((-1,) + (1,) * xi.ndim) * xi[None], -1.0))


def ucb_betting_martingale(mean: float, centre_mean: float, mean_log_wealth, lo: float, hi: float, count: float,
                           log_inv_delta: float, lambdas: np.ndarray | None = None) -> tuple[float, float]:
    """Betting (capital-process) martingale upper bound with a predictable centre, in its ratio form;
    never looser than :func:`ucb_freedman_martingale` at the same λ.

    Setting: as :func:`ucb_freedman_martingale`: losses ℓ_1..ℓ_m ∈ [lo, hi] adapted to F_t, conditional
    means μ_t = E[ℓ_t | F_{t−1}], a predictable centre c_t ∈ [lo, hi], Δ = hi − lo, R = (1/m)Σμ_t,
    R̂ = (1/m)Σℓ_t, c̄ = (1/m)Σc_t. Put ξ_t = (c_t − ℓ_t)/Δ ≥ −1, its conditional mean
    η_t = (c_t − μ_t)/Δ ≥ −1, and for a fixed λ ∈ (0, 1], G(λ) = (1/m)Σ ln(1 + λξ_t) (nats per
    token), L = ln(1/δ). Then with probability ≥ 1 − δ,

        R ≤ c̄ − Δ·(exp(G(λ) − L/m) − 1)/λ.

    Proof. M_t = Π_{s≤t} (1 + λξ_s)/(1 + λη_s) is a nonnegative martingale with M_0 = 1: each factor is
    ≥ 0, and E[1 + λξ_s | F_{s−1}] = 1 + λη_s. (A factor with 1 + λη_s = 0, possible only at λ = 1
    with c_s = lo and μ_s = hi, is taken as 1; then ℓ_s = hi almost surely, so 1 + λξ_s = 0 and
    G(λ) = −∞, where the bound below is ≥ hi and holds trivially.) Markov's inequality gives, with
    probability ≥ 1 − δ, m·G(λ) − Σ ln(1 + λη_t) < L. By Jensen (ln is concave),
    Σ ln(1 + λη_t) ≤ m·ln(1 + λ·(c̄ − R)/Δ); so exp(G(λ) − L/m) < 1 + λ(c̄ − R)/Δ; rearrange. This is
    the wealth of a bettor who stakes the fraction λ against the centre (Waudby-Smith & Ramdas,
    *Estimating means of bounded random variables by betting*, JRSSB 2024), for an average of
    conditional means.

    Relations. With e^x − 1 ≥ x it implies R ≤ c̄ + Δ·(L/m − G(λ))/λ (the supermartingale
    Π(1 + λξ_t)·exp(−λη_t), certificate version 3), and is tighter than that by
    Δ·(e^x − 1 − x)/λ ≈ λ·(bound − c̄)²/(2Δ), x = G(λ) − L/m. Since ln(1 + λξ) ≥ λξ − ψ_E(λ)ξ² for
    ξ ≥ −1 and λ < 1 (Fan, Grama & Liu 2012, behind :func:`ucb_freedman_martingale`), it is never
    looser than the Freedman form at the same λ and L, and λ may reach 1. A stake that varies with
    t (λ_t predictable) keeps M_t a martingale but bounds the λ_t-weighted average of μ_t, not R, so
    the stake is one λ per bound. It needs G at every λ of the grid, i.e. every token's ℓ_t and
    c_t: it is used when the whole training set is evaluated (n = all), not from a subsample.

    ``mean`` is R̂, ``centre_mean`` c̄ (loss units per token), ``mean_log_wealth`` the array of
    G(λ) over the grid (:func:`log_wealth_terms`, averaged over the m tokens), ``log_inv_delta``
    should already include the hypothesis prior K·ln 2; this function adds ln|Λ| for the union over
    the fixed grid Λ (:func:`betting_lambda_grid`) and returns (bound, the λ that attained it).
    """
    _check(count, log_inv_delta, lo, hi)
    lam = betting_lambda_grid() if lambdas is None else np.asarray(lambdas, dtype=np.float64)
    require(lam.ndim == 1 and lam.size >= 1 and np.all((lam > 0) & (lam <= 1)), "lambda grid must lie in (0, 1]")
    g = np.asarray(mean_log_wealth, dtype=np.float64)
    require(g.shape == lam.shape, f"need one mean log-wealth per lambda of the grid ({lam.size}), got shape {g.shape}")
    require(bool(np.all(~np.isnan(g) & (g < np.inf))), "the mean log-wealth must be a number or -inf for every lambda")
    require(math.isfinite(mean) and math.isfinite(centre_mean), "the empirical mean and the centre mean must be finite")
    # G(λ) ≤ ln(1 + λ·max ξ) and the mean log of 1 + λξ is at most ln(1 + λξ̄) (Jensen): a G above
    # that cannot come from these losses and centres
    width = hi - lo
    xi_bar = (centre_mean - mean) / width
    require(bool(np.all(g <= np.log1p(np.maximum(lam * xi_bar, -1.0)) + 1e-9)),
            "the mean log-wealth exceeds ln(1 + λ·ξ̄) (Jensen's bound); it does not belong to these losses and centres")
    L = log_inv_delta + math.log(lam.size)
    bounds = centre_mean - width * np.expm1(g - L / count) / lam  # G = −∞ gives c̄ + Δ/λ ≥ hi
    j = int(np.argmin(bounds))
    return float(bounds[j]), float(lam[j])


def running_centred_square(values, lo: float, hi: float) -> float:
    """(1/n)·Σ_i (x_i − c_i)² with the predictable running-mean centre c_i = mean(x_1..x_{i−1})
    (c_1 = (lo + hi)/2), in squared units: the V/n that :func:`ucb_freedman_martingale` needs to
    bound the mean of n **i.i.d.** draws (taken in their drawn order) with a variance-aware width.

    The centre uses only earlier draws, so it is predictable and the bound stays valid; with i.i.d.
    draws it converges to the mean, so V/n approaches the variance of one draw.
    """
    x = np.asarray(values, dtype=np.float64)
    require(x.ndim == 1 and x.size >= 1, "need a non-empty 1-D array of draws")
    centres = np.empty_like(x)
    centres[0] = 0.5 * (lo + hi)
    centres[1:] = np.cumsum(x)[:-1] / np.arange(1, x.size)
    return float(np.mean((x - np.clip(centres, lo, hi)) ** 2))


def bernoulli_lambda_grid(size: int = 57, smallest: float = 2.0 ** -10, largest: float = 16.0) -> np.ndarray:
    """The fixed λ grid of :func:`ucb_bernoulli_martingale`: ``size`` values, geometric in
    [smallest, largest] (2^(1/4) apart by default). Fixed before any data is seen; its union costs ln|Λ| nats."""
    return np.geomspace(smallest, largest, size)


def ucb_bernoulli_martingale(mean: float, count: float, log_inv_delta: float,
                             lambdas: np.ndarray | None = None) -> tuple[float, float]:
    """Martingale kl upper bound for losses in [0, 1] (top-k errors): a Bernoulli-MGF supermartingale.

    Setting: losses e_1..e_m ∈ [0, 1] adapted to F_t, with conditional means p_t = E[e_t | F_{t−1}];
    no independence. Write R = (1/m)Σp_t and R̂ = (1/m)Σe_t. For a fixed λ > 0, with probability ≥ 1 − δ,

        R ≤ (1 − exp(−λ·R̂ − ln(1/δ)/m)) / (1 − e^(−λ)).

    Proof. By convexity of x ↦ e^(−λx) on [0, 1], e^(−λe) ≤ 1 − e·(1 − e^(−λ)), so
    E[e^(−λe_t) | F_{t−1}] ≤ 1 − p_t·c with c = 1 − e^(−λ). Hence
    M_m = Π_t e^(−λe_t) / (1 − p_t·c) is a nonnegative supermartingale with M_0 = 1, and Ville's
    inequality gives, w.p. ≥ 1 − δ, −λ·m·R̂ − Σ_t ln(1 − p_t·c) ≤ ln(1/δ). The map p ↦ −ln(1 − p·c) is
    convex, so Σ_t −ln(1 − p_t·c) ≥ −m·ln(1 − R·c) (Jensen); rearrange. Maximizing over λ recovers
    kl(R̂ ‖ R) ≤ ln(1/δ)/m, the binomial (Chernoff) form, now without independence: against Azuma's
    R ≤ R̂ + sqrt(ln(1/δ)/(2m)) it gains most when R̂ is near 0 (top-100 errors).

    ``log_inv_delta`` should already include the hypothesis prior K·ln 2; this function adds
    ln|Λ| for the union over the fixed grid Λ (:func:`bernoulli_lambda_grid`) and returns
    (bound, the λ that attained it). ``mean`` may be any upper bound on R̂ (the bound increases with it).
    """
    _check(count, log_inv_delta, 0.0, 1.0)
    require(math.isfinite(mean) and -1e-12 <= mean <= 1 + 1e-12, f"a [0, 1] loss has a mean in [0, 1], got {mean!r}")
    lam = bernoulli_lambda_grid() if lambdas is None else np.asarray(lambdas, dtype=np.float64)
    require(lam.ndim == 1 and lam.size >= 1 and np.all(lam > 0), "lambda grid must be positive")
    L = (log_inv_delta + math.log(lam.size)) / count
    bounds = -np.expm1(-lam * min(max(mean, 0.0), 1.0) - L) / -np.expm1(-lam)
    j = int(np.argmin(bounds))
    return float(min(bounds[j], 1.0)), float(lam[j])
