"""Which training checkpoints a run certifies and chooses among, and what the choice costs.

**Candidates.** A run certifies the decoded model at C checkpoints, training steps
0 = s_0 < s_1 < … < s_{C−1} = ``max_steps`` (:func:`checkpoint_steps`):

* ``--track C`` (``RunConfig.track``, C ≥ 2): s_i = ⌊i·S/(C − 1)⌋ for S = ``max_steps``, evenly
  spaced, step 0 and the last step included;
* otherwise, pretrained weights (``RunConfig.untrained_candidate``, on by default): C = 2, the
  untrained checkpoint θ0 and the final step, so that the certificate is never looser than the one
  θ0 itself gets at the same charge;
* otherwise (a seeded init, the default preset): C = 1, the final step alone, as before.

Step 0 is z = 0 exactly, the untrained message (:mod:`llm_bounds.message.untrained`, one byte);
every other checkpoint is quantized, QAT-tuned and coded at each level count of ``--levels`` like
the final z. Every candidate is a function of the training data and the seeds alone (training and
QAT batches, quantization), never of the certificate's samples, which are drawn from seed purposes
of their own. The certificate reports the candidate with the smallest certified token-level bound
(the earliest step on a tie).

**The charge.** The choice of checkpoint is one more searched grid, of size C, charged exactly as
the level count is (``checkpoints`` in :func:`llm_bounds.certificate.context.searched_grids`):

1. K gets log2 C bits. The hypothesis code is: the checkpoint index (log2 C bits), the level index
   (log2 |G_L| bits), the Elias-delta length and the message. Kraft: Σ_h 2^−K(h) ≤
   Σ_{c, L} (1/C)(1/|G_L|) Σ_n 2^−δ(n) ≤ 1. Step 0 has no level count to choose, so its level index is
   wasted: a valid code, longer than the shortest one over the 1 + (C − 1)|G_L| candidates by
   log2(C|G_L|/(1 + (C − 1)|G_L|)) bits (nothing when |G_L| = 1, as in every recipe).
2. Every subsample δ is split C ways (``subsample_union``, :func:`~llm_bounds.certificate.context.grid_union`).
   The subsample inequality R̂_m(h) ≤ R̂_n(h) + ε(δ_s) holds with probability ≥ 1 − δ_s over the n
   drawn units for a hypothesis h fixed before the draw; the reported h is chosen by looking at
   those units, so each of the C·|G_L| candidates gets δ_s/(C·|G_L|), and by the union bound all
   their inequalities hold together with probability ≥ 1 − δ_s, whichever is chosen. This is the
   charge that a selection on the sample breaks without (``tests/test_tracking.py`` simulates it:
   the best of C candidates by its bound fails more often than δ without the split, at most δ with it).
3. The complexity term needs no more: R(h) ≤ R̂_m(h) + (term at K(h)) holds for every prefix-free
   codeword h at once (each gets δ_c·2^−K(h)), however h was chosen. The log2 C bits of (1) are paid
   all the same, to do exactly what the level grid does (3 bits for ``--track 8``); with every unit
   scored (n = all, the default preset) there is no subsample term and (1) is the whole charge.

**The screen** (θ0 and the final step only, not ``--track``: :func:`screened`). With every unit
scored, evaluating both candidates fully costs a second pass over the sample, so the run evaluates θ0
fully and the trained candidate first on the sample's first units only
(:mod:`llm_bounds.certificate.screen`); only when an optimistic estimate of the trained candidate's
bound from those units is below θ0's certified bound is it evaluated fully, and the smaller certified
bound of the two is reported; otherwise θ0 is reported. This needs no further charge: the union bound
of (2) and the Kraft sum of (1) hold for both candidates at once, before anything is looked at, so
they cover any rule that picks one of the two, a rule that never fully evaluates one of them included
(a rule that looks at the sample only decides which of the C already-charged inequalities is quoted).
The reported bound is always computed in full from the reported message, and the verifier re-derives
exactly that, so the screen's estimate (informational, never certified) affects which candidate is
reported, never what is claimed for it; a screen that errs costs tightness, not validity.

**What holds.** At this charge the bounds of all C checkpoints hold together with probability
≥ 1 − δ: every row of ``curve.csv`` is a certified bound on its checkpoint's risk at once, so reading
the minimum off the curve, which the certificate reports, costs nothing further.
"""
from __future__ import annotations

import math

import numpy as np


def checkpoint_steps(cfg) -> list[int]:
    """The training steps whose decoded model the run certifies and chooses among, ascending; the
    last is ``cfg.max_steps`` (the module docstring)."""
    S = int(cfg.max_steps)
    if cfg.track:
        C = int(cfg.track)
        return [i * S // (C - 1) for i in range(C)]
    if cfg.init == "pretrained" and cfg.untrained_candidate and S > 0:
        return [0, S]
    return [S]


def screened(cfg) -> bool:
    """Whether the trained candidate is screened before its full evaluation (the module docstring):
    exactly the two candidates θ0 and the final step of pretrained weights, not ``--track``."""
    return not cfg.track and len(checkpoint_steps(cfg)) == 2


def checkpoint_count(cfg) -> int:
    """C, the number of checkpoints chosen among (1: no choice, no charge)."""
    return len(checkpoint_steps(cfg))


def training_tokens(cfg, step: int) -> int:
    """Tokens seen by training after ``step`` steps (``batch_size`` windows of ``window`` tokens a step)."""
    return int(step) * int(cfg.batch_size) * int(cfg.window)


def checkpoint_statement(cfg, z_hat: np.ndarray) -> dict | None:
    """The certified part of the choice among checkpoints (None with a single checkpoint): the steps,
    the charge, and whether the reported message is the untrained model (z = 0), which the decoded
    message alone shows."""
    steps = checkpoint_steps(cfg)
    if len(steps) == 1:
        return None
    return {"steps": steps, "count": len(steps), "bits": math.log2(len(steps)), "subsample_delta_split": len(steps),
            "reported_untrained": not bool(np.any(z_hat)),
            "rule": SCREENED_RULE if screened(cfg) else "the checkpoint with the smallest certified token-level bound, "
                                                         "every checkpoint charged"}


SCREENED_RULE = ("the untrained checkpoint unless a screen of the trained one on the sample's first units says it could "
                 "be tighter, then the smaller certified token-level bound of the two; both charged, so any such rule "
                 "holds")
