"""The screen: whether the trained candidate could beat θ0, from the sample's first units only.

For pretrained weights a run chooses between θ0 (the untrained message) and the trained message
(:mod:`llm_bounds.certificate.checkpoints`, which also says why the screen needs no further charge).
With every unit scored, the two full evaluations cost two passes over the sample; the screen saves
the second when training bought too little to pay for its message:

1. θ0 is evaluated fully and bounded: B0, its certified token-level bound.
2. Each coded trained message is evaluated on the first n units of the sample only
   (n = :func:`~llm_bounds.certificate.context.informational_units`, a tenth of the sample, at least
   64, the units of the informational fp32 evaluation), cached in the stages.
3. Its bound is estimated optimistically, per α of the grid: θ0's certified bound at the trained
   message's K (θ0's full evaluation, :meth:`RunContext.token_bounds`: θ0's empirical plus the
   complexity term at the trained K) minus the paired gain d̄ + 3·s/√n, where d_u = θ0's loss − the
   trained loss on unit u (bits per token, unit means) over the n units and s their standard
   deviation; the estimate is the smallest over α.
4. Only when some level count's estimate is below B0 is the trained candidate evaluated fully, and
   the smaller certified bound of the two is reported; otherwise θ0 is reported.

The estimate is a heuristic for the decision, never a claim: it is recorded as informational and
marked ``optimistic``. Units: bits per token (``*_bpd``) and bits per byte.
"""
from __future__ import annotations

import math

import numpy as np

from llm_bounds.certificate.certify import tokens_per_byte
from llm_bounds.certificate.checkpoints import training_tokens
from llm_bounds.certificate.context import RunContext, complexity_for, informational_units, log_progress
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.core.errors import require
from llm_bounds.evaluation.evaluate import EvalResult

STANDARD_ERRORS = 3.0  # the paired gain is credited this many standard errors above its mean


def screen_units(ctx: RunContext) -> int:
    """n, the sample's first units the screen evaluates."""
    return informational_units(len(ctx.sample_ids["token"]))


def first_units_evaluation(ctx: RunContext, message: bytes, folder: RunFolder | None = None,
                           progress: bool = True) -> EvalResult:
    """``message``'s decoded model on the first :func:`screen_units` units of the token sample, read
    from the stages when a run already evaluated it there."""
    return ctx.evaluation_of(message, "token", folder, progress, limit=screen_units(ctx))


def optimistic_bound(ctx: RunContext, untrained: EvalResult, message: bytes, first: EvalResult) -> dict:
    """The screen's optimistic estimate of ``message``'s certified bound (the module docstring, step 3)
    from θ0's full evaluation ``untrained`` and ``message``'s evaluation ``first`` on the first units."""
    n = first.n
    require(np.array_equal(untrained.unit_ids[:n], first.unit_ids), "internal error: the screened units are not "
                                                                      "the sample's first")
    K = complexity_for(ctx.cfg, message).total_bits
    at_k = ctx.token_bounds(untrained, K)["nll_per_alpha"]
    alphas = [float(a) for a in first.alphas]
    best = None
    for i, a in enumerate(float(x) for x in untrained.alphas):
        d = untrained.smoothed_bits[i][:n] - first.smoothed_bits[alphas.index(a)]
        gain, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
        row = next(r for r in at_k if float(r["alpha"]) == a)
        est = {"alpha": a, "gain_bpd": gain, "gain_standard_error_bpd": se,
               "optimistic_bound_bpd": float(row["bound"]) - (gain + STANDARD_ERRORS * se)}
        if best is None or est["optimistic_bound_bpd"] < best["optimistic_bound_bpd"]:
            best = est
    return {**best, "complexity_bits": K}


def screen_trained(ctx: RunContext, untrained_message: bytes, coded: dict[int, bytes], step: int,
                   folder: RunFolder | None = None, progress: bool = True) -> dict | None:
    """Screen the trained messages ``coded`` (level count → message, the checkpoint after ``step``
    steps) against θ0: every level count's optimistic estimate, the best, and whether it ``passed``
    (is below θ0's certified bound). None when the sample has no more units than the screen (then
    the full evaluation costs no more than the screen would)."""
    n, total = screen_units(ctx), len(ctx.sample_ids["token"])
    if n >= total:
        return None
    untrained = ctx.evaluation_of(untrained_message, "token", folder, progress)
    b0 = ctx.token_bounds(untrained, complexity_for(ctx.cfg, untrained_message).total_bits)["nll"]["bound"]
    per_byte = tokens_per_byte(ctx.units["token"].m, ctx.scored_bytes())
    levels = []
    for L, message in sorted(coded.items()):
        est = optimistic_bound(ctx, untrained, message, first_units_evaluation(ctx, message, folder, progress))
        levels.append({"levels": L, "message_bits": 8 * len(message), **est,
                       "optimistic_bound_bits_per_byte": est["optimistic_bound_bpd"] * per_byte})
    best = min(levels, key=lambda r: r["optimistic_bound_bpd"])
    passed = best["optimistic_bound_bpd"] < b0
    log_progress(progress, f"[screen] the trained message's optimistic bound {best['optimistic_bound_bpd']:.4f} "
                           f"against θ0's certified {b0:.4f} bits/token: "
                           f"{'evaluating it fully' if passed else 'reporting θ0, the trained message not evaluated fully'}")
    return {"units": n, "sample_units": total, "standard_errors": STANDARD_ERRORS, "untrained_bound_bpd": b0,
            "untrained_bound_bits_per_byte": b0 * per_byte, "level_counts": levels, "best_levels": best["levels"],
            "passed": passed, "fully_evaluated": passed,
            "row": {"step": int(step), "training_tokens": training_tokens(ctx.cfg, step), "levels": best["levels"],
                    "message_bits": best["message_bits"], "complexity_bits": best["complexity_bits"],
                    "screened": True, "fully_evaluated": False, "screen_units": n,
                    "optimistic_bound_bpd": best["optimistic_bound_bpd"],
                    "optimistic_bound_bits_per_byte": best["optimistic_bound_bits_per_byte"],
                    "gain_bpd": best["gain_bpd"], "gain_standard_error_bpd": best["gain_standard_error_bpd"]},
            "rule": (f"the trained message was evaluated on the sample's first {n} of {total} units; its bound was "
                     f"estimated optimistically as theta0's certified bound at the trained K minus the paired gain "
                     f"+ {STANDARD_ERRORS:g} standard errors, and evaluated fully only if that is below theta0's "
                     f"certified bound (not certified; both candidates are charged, so any such rule holds)")}
