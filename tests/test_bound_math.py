"""Hand-computed values and monotonicity of the bound formulas (bounds/ is pure numpy)."""
import math

import numpy as np
import pytest

from llm_bounds.message.complexity import elias_delta_bits, grid_bits, message_complexity
from llm_bounds.bound.concentration import (bernoulli_kl, kl_upper_inverse, ucb_empirical_bernstein, ucb_hoeffding,
                                  ucb_kl)
from llm_bounds.core.errors import BoundInputError
from llm_bounds.bound.alpha_grid import bound_over_alpha_grid
from llm_bounds.bound.generalization import generalization_bound
from llm_bounds.bound.smoothing import random_guess_bits, smoothed_loss_range

PAPER = dict(granularity="document", metric="nll", empirical=10.0, complexity_bits=100373, m=8009762, n=10000,
             alpha=0.1, vocab_size=50257, delta=0.05)


def reference_sublora(emp, K, m, n, alpha, V, delta):
    """The reference SubLoRA formula, written out independently of the package."""
    r = n / (n + m)
    Delta = math.log2(1 + (1 - alpha) * V / alpha)
    return emp + Delta * (math.sqrt((K * math.log(2) + math.log(1 / (r * delta))) / (2 * m))
                          + math.sqrt(math.log(1 / ((1 - r) * delta)) / (2 * n)))


def test_smoothing_range_hand_values():
    lo, hi = smoothed_loss_range(0.5, 2)
    # p=1: -log2(0.5 + 0.25) ; p=0: -log2(0.25)
    assert lo == pytest.approx(-math.log2(0.75))
    assert hi == pytest.approx(2.0)
    lo, hi = smoothed_loss_range(0.1, 50257)
    assert hi - lo == pytest.approx(math.log2(1 + 0.9 * 50257 / 0.1))   # Δ(α, V) = log2(1 + (1−α)V/α)
    assert random_guess_bits(256) == 8.0


def test_elias_delta_hand_values_and_kraft():
    # δ(1)=1, δ(2)=δ(3)=4, δ(4..7)=5, δ(8..15)=8 (Elias 1975)
    assert [elias_delta_bits(n) for n in (1, 2, 3, 4, 7, 8, 15, 16)] == [1, 4, 4, 5, 5, 8, 8, 9]
    kraft = sum(2.0 ** -elias_delta_bits(n) for n in range(1, 200000))
    assert kraft <= 1.0
    c = message_complexity(1000, {"levels": 4, "alpha": 8})
    assert c.message_bits == 8000 and c.length_prefix_bits == elias_delta_bits(1000)
    assert c.hyperparameter_bits == pytest.approx(5.0) and c.total_bits == pytest.approx(8000 + 16 + 5)
    assert grid_bits(1) == 0.0
    with pytest.raises(BoundInputError):
        message_complexity(0)


def test_reference_example_matches_issue_value():
    res = generalization_bound(method="hoeffding", **PAPER)
    assert res.bound == pytest.approx(11.46815, abs=1e-4)
    assert res.bound == pytest.approx(reference_sublora(10.0, 100373, 8009762, 10000, 0.1, 50257, 0.05), rel=1e-12)
    assert res.bound == pytest.approx(res.empirical + res.subsample_term + res.complexity_term, rel=1e-12)
    assert res.delta_complexity + res.delta_subsample == pytest.approx(0.05)
    assert res.delta_complexity == pytest.approx(0.05 * 10000 / (10000 + 8009762))
    best = generalization_bound(method="best", **PAPER)
    assert best.bound <= res.bound


def test_hoeffding_and_kl_hand_values():
    # Hoeffding: 0.3 + 1 * sqrt(ln(1/0.1)/(2*50))
    assert ucb_hoeffding(0.3, 0.0, 1.0, 50, math.log(10)) == pytest.approx(0.3 + math.sqrt(math.log(10) / 100))
    # kl(0‖p) = -ln(1-p), so kl⁻¹(0, c) = 1 - e^{-c}
    assert kl_upper_inverse(0.0, 0.7) == pytest.approx(1 - math.exp(-0.7), abs=1e-12)
    assert bernoulli_kl(0.5, 0.5) == 0.0
    assert float(bernoulli_kl(0.2, 0.4)) == pytest.approx(0.2 * math.log(0.5) + 0.8 * math.log(0.8 / 0.6))
    p = kl_upper_inverse(0.2, 0.05)
    assert float(bernoulli_kl(0.2, p)) == pytest.approx(0.05, abs=1e-9)
    # kl never looser than Hoeffding (Pinsker), on a grid of means
    for q in np.linspace(0, 1, 11):
        assert ucb_kl(q, 0, 1, 100, 3.0) <= ucb_hoeffding(q, 0, 1, 100, 3.0) + 1e-12
    # Maurer-Pontil by hand: V=0.04, n=101, delta=0.1 -> ln(2/δ)=ln 20
    l2d = math.log(20)
    expect = 0.5 + math.sqrt(2 * 0.04 * l2d / 101) + 7 * l2d / (3 * 100)
    assert ucb_empirical_bernstein(0.5, 0.04, 0.0, 1.0, 101, math.log(10)) == pytest.approx(expect)


def test_token_level_error_bound_by_hand():
    # No subsampling: bound = R̂ + sqrt((K ln2 + ln(1/δ)) / (2m)), range 1.
    res = generalization_bound(granularity="token", metric="error", empirical=0.4, complexity_bits=1000, m=10**6,
                               delta=0.05, method="hoeffding")
    assert res.complexity_method == "azuma-hoeffding" and res.subsample_method == "none"
    assert res.bound == pytest.approx(0.4 + math.sqrt((1000 * math.log(2) + math.log(20)) / 2e6))


def test_token_level_error_martingale_kl_by_hand():
    """bound = min over the 57-point λ grid of (1 − exp(−λR̂ − L))/(1 − e^(−λ)), L = (K ln2 + ln(1/δ) + ln 57)/m;
    optimizing λ gives kl(R̂ ‖ bound) = L, so on the grid kl(R̂ ‖ bound) is at least L and close to it."""
    for q in (0.4, 0.01, 0.0):
        res = generalization_bound(granularity="token", metric="error", empirical=q, complexity_bits=1000, m=10**6,
                                   delta=0.05, method="best")
        assert res.complexity_method == "martingale-kl"
        L = (1000 * math.log(2) + math.log(20) + math.log(57)) / 1e6
        lam = 2.0 ** (np.arange(57) / 4 - 10)
        by_hand = float(np.min((1 - np.exp(-lam * q - L)) / (1 - np.exp(-lam))))
        assert res.bound == pytest.approx(by_hand, rel=1e-12)
        kl = (q * math.log(q / res.bound) if q > 0 else 0.0) + (1 - q) * math.log((1 - q) / (1 - res.bound))
        assert L * (1 - 1e-9) <= kl <= 1.02 * L
        azuma = 0.4 + math.sqrt((1000 * math.log(2) + math.log(20)) / 2e6) if q == 0.4 else None
        if azuma is not None:
            assert res.bound < azuma + 1e-4   # never much looser than Azuma, even at R̂ = 0.4


def test_alpha_grid_is_charged_in_both_terms():
    emp = {0.01: 9.0, 0.1: 9.5, 0.5: 10.0}
    kw = {k: v for k, v in PAPER.items() if k not in ("empirical", "alpha", "metric")}
    chosen, results = bound_over_alpha_grid(empirical_by_alpha=emp, method="hoeffding", **kw)
    assert all(r.grid_bits == pytest.approx(math.log2(3)) for r in results)
    assert all(r.subsample_union == 3 for r in results)
    assert chosen.bound == min(r.bound for r in results)
    single = generalization_bound(method="hoeffding", **{**PAPER, "alpha": chosen.alpha, "empirical": emp[chosen.alpha]})
    assert chosen.bound > single.bound  # the charge costs something
    # by hand: K + log2(3) bits, and ln(3/((1-r)δ)) in the subsample term
    r = 10000 / (10000 + 8009762)
    D = math.log2(1 + (1 - chosen.alpha) * 50257 / chosen.alpha)
    expect = emp[chosen.alpha] + D * (math.sqrt(((100373 + math.log2(3)) * math.log(2) + math.log(1 / (r * 0.05)))
                                                 / (2 * 8009762)) + math.sqrt(math.log(3 / ((1 - r) * 0.05)) / 20000))
    assert chosen.bound == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("method", ["hoeffding", "kl", "best"])
@pytest.mark.parametrize("granularity", ["token", "document"])
def test_monotonicity(method, granularity):
    base = dict(PAPER, granularity=granularity, method=method, complexity_bits=2000, m=100000, n=2000)

    def b(**kw):
        return generalization_bound(**{**base, **kw}).bound

    assert b(complexity_bits=1000) < b(complexity_bits=2000) < b(complexity_bits=4000)
    assert b(m=400000) < b(m=100000) < b(m=25000)
    assert b(n=8000) < b(n=2000) < b(n=500)
    assert b(delta=0.2) < b(delta=0.05) < b(delta=0.001)
    assert b(empirical=9.0) < b(empirical=10.0)


def test_bernstein_beats_range_terms_when_variance_is_small():
    kw = dict(PAPER, complexity_bits=1000, m=10**6, n=5000)
    hoeff = generalization_bound(method="hoeffding", **kw)
    bern = generalization_bound(method="best", subsample_variance=0.25, **kw)
    assert bern.subsample_method == "bernstein"
    assert bern.subsample_term < 0.5 * hoeff.subsample_term


@pytest.mark.parametrize("bad", [
    dict(delta=0.0), dict(delta=1.0), dict(delta=float("nan")), dict(alpha=1.0), dict(alpha=-0.1),
    dict(empirical=float("nan")), dict(empirical=-1.0), dict(empirical=19.5), dict(complexity_bits=-1),
    dict(complexity_bits=float("nan")), dict(n=0), dict(m=0), dict(m=2.5), dict(granularity="sentence"),
    dict(method="magic"), dict(method="bernstein"), dict(subsample_variance=-1.0), dict(subsample_variance=1e9),
])
def test_bad_inputs_raise_clear_errors(bad):
    with pytest.raises(BoundInputError) as e:
        generalization_bound(**{**PAPER, **bad})
    assert "\n" not in str(e.value) and len(str(e.value)) > 10


def test_freedman_hand_value_single_lambda():
    from llm_bounds.bound.concentration import ucb_freedman_martingale
    # one λ = 0.5: width = Δ·(L + ln 1)/(λ m) + ψ(λ)·v/(λΔ), ψ(0.5) = ln 2 − 0.5
    b, lam = ucb_freedman_martingale(0.3, 0.04, 0.0, 2.0, 1000, 5.0, lambdas=np.array([0.5]))
    assert lam == 0.5
    assert b == pytest.approx(0.3 + 2.0 * 5.0 / 500 + (math.log(2) - 0.5) * 0.04 / 1.0)


def test_freedman_bound_terms_and_best_union():
    kw = dict(granularity="token", metric="nll", empirical=2.0, complexity_bits=10000, m=4_000_000, n=2000,
              alpha=0.01, vocab_size=257, delta=0.05)
    f = generalization_bound(method="freedman", centred_sq_mean=3.6, **kw)
    assert f.delta_complexity + f.delta_subsample + f.delta_variance == pytest.approx(0.05)
    assert f.centred_sq_ucb > 3.6 and f.freedman_lambda is not None
    azuma = generalization_bound(method="hoeffding", **kw)
    best = generalization_bound(method="best", centred_sq_mean=3.6, **kw)
    assert best.method_union == 2 and best.complexity_method == "freedman"
    assert best.bound <= azuma.bound and best.bound >= f.bound  # half the δ costs a little
    assert (best.bound - best.empirical) < 0.7 * (azuma.bound - azuma.empirical)
    with pytest.raises(BoundInputError):
        generalization_bound(method="freedman", **kw)  # needs the centred second moment
    with pytest.raises(BoundInputError):
        generalization_bound(method="freedman", centred_sq_mean=1.0, **{**kw, "granularity": "document"})


# ---- the betting (capital-process) martingale bound -----------------------------------------

def test_betting_hand_value_single_lambda():
    from llm_bounds.bound.concentration import ucb_betting_martingale
    # one λ = 0.5, Δ = 2, m = 1000, L = 5 nats (+ ln 1 for the grid), c̄ = 0.35, G = 0.01:
    # bound = c̄ − Δ·(exp(G − L/m) − 1)/λ = 0.35 − 4·(e^0.005 − 1) = 0.35 − 0.0200500834 = 0.3299499166
    # (the version-3 form c̄ + Δ·(L/m − G)/λ gave 0.33: looser by Δ·(e^x − 1 − x)/λ, x = 0.005)
    b, lam = ucb_betting_martingale(0.3, 0.35, np.array([0.01]), 0.0, 2.0, 1000, 5.0, lambdas=np.array([0.5]))
    assert lam == 0.5 and b == pytest.approx(0.35 - 4 * (math.exp(0.005) - 1), rel=1e-14)
    assert b == pytest.approx(0.3299499166, abs=1e-10) and 0.33 - b == pytest.approx(4 * 0.005 ** 2 / 2, rel=0.01)
    # G = −∞ (a token at ξ = −1 with λ = 1) gives c̄ + Δ/λ ≥ hi: no bound from that λ
    b, _ = ucb_betting_martingale(0.3, 0.35, np.array([-np.inf]), 0.0, 2.0, 1000, 5.0, lambdas=np.array([1.0]))
    assert b == pytest.approx(2.35)


def test_log_wealth_terms_follow_the_formula():
    from llm_bounds.bound.concentration import betting_lambda_grid, log_wealth_terms
    gap = np.array([[-2.0, 0.5], [1.0, -0.25]])  # c − ℓ, Δ = 2: ξ = −1 gives log 0 at λ = 1
    lam = betting_lambda_grid()
    got = log_wealth_terms(gap, 2.0)
    assert got.shape == (len(lam), 2, 2) and got[0, 0, 0] == -np.inf and lam[0] == 1.0
    np.testing.assert_allclose(got[1:], np.log1p(lam[1:, None, None] * gap[None] / 2.0), rtol=1e-14)
    np.testing.assert_allclose(got[0].ravel()[1:], np.log1p(gap.ravel()[1:] / 2.0), rtol=1e-14)


def test_betting_is_never_looser_than_freedman_at_the_same_lambda():
    """ln(1 + λξ) ≥ λξ − ψ_E(λ)ξ² for ξ ≥ −1: at one λ and one ln(1/δ) the betting bound is ≤ Freedman's."""
    from llm_bounds.bound.concentration import log_wealth_terms, ucb_betting_martingale, ucb_freedman_martingale
    rng = np.random.default_rng(0)
    lo, hi, m = 0.05, 12.0, 50_000
    c = rng.uniform(1.0, 4.0, m)
    loss = np.clip(c + rng.normal(0.3, 1.8, m), lo, hi)
    for lam in (0.05, 0.3, 0.76, 0.95):
        grid = np.array([lam])
        g = log_wealth_terms(c - loss, hi - lo, grid).mean(-1)
        bet, _ = ucb_betting_martingale(loss.mean(), c.mean(), g, lo, hi, m, 900.0, lambdas=grid)
        fr, _ = ucb_freedman_martingale(loss.mean(), ((loss - c) ** 2).mean(), lo, hi, m, 900.0, lambdas=grid)
        assert bet <= fr + 1e-12
        # the range term is always paid: by Jensen G ≤ ln(1 + λξ̄), so the bound is at least
        # R̂ + (Δ/λ + c̄ − R̂)·(1 − exp(−L/m))
        assert bet > loss.mean() + ((hi - lo) / lam + c.mean() - loss.mean()) * -math.expm1(-900.0 / m) - 1e-12


def test_best_uses_betting_when_every_token_is_scored():
    from llm_bounds.bound.concentration import betting_lambda_grid, log_wealth_terms
    rng = np.random.default_rng(1)
    lo, hi = smoothed_loss_range(0.01, 257)
    c = rng.uniform(1.0, 4.0, 20_000)
    loss = np.clip(c + rng.normal(0.0, 1.7, c.size), lo, hi)
    g = log_wealth_terms(c - loss, hi - lo).mean(-1)
    kw = dict(granularity="token", metric="nll", empirical=float(loss.mean()), complexity_bits=2000, m=c.size,
              alpha=0.01, vocab_size=257, delta=0.05, centred_sq_mean=float(((loss - c) ** 2).mean()))
    best = generalization_bound(method="best", centre_mean=float(c.mean()), log_wealth_mean=g, **kw)
    fr = generalization_bound(method="freedman", **kw)
    assert best.complexity_method == "betting" and best.method_union == 1 and best.delta_complexity == 0.05
    assert best.bound < fr.bound and best.betting_lambda in betting_lambda_grid()
    assert best.log_wealth == pytest.approx(g[betting_lambda_grid() == best.betting_lambda][0])
    # the reported terms re-derive the bound by hand: c̄ − Δ·(exp(G − (K ln2 + ln(1/δ) + ln|Λ|)/m) − 1)/λ
    L = 2000 * math.log(2) + math.log(1 / 0.05) + math.log(len(betting_lambda_grid()))
    by_hand = best.centre_mean - (hi - lo) * math.expm1(best.log_wealth - L / c.size) / best.betting_lambda
    assert best.bound == pytest.approx(min(by_hand, hi), rel=1e-12)
    assert generalization_bound(method="best", **kw).complexity_method == "freedman"  # without the log-wealth
    with pytest.raises(BoundInputError, match="n = all"):
        generalization_bound(method="betting", n=100, centre_mean=float(c.mean()), log_wealth_mean=g,
                             **{**kw, "m": 10 ** 6})
    with pytest.raises(BoundInputError, match="Jensen"):  # a log-wealth these losses cannot have
        generalization_bound(method="best", centre_mean=float(c.mean()), log_wealth_mean=g + 0.1, **kw)
    with pytest.raises(BoundInputError, match="one mean log-wealth per lambda"):
        generalization_bound(method="best", centre_mean=float(c.mean()), log_wealth_mean=g[:3], **kw)
