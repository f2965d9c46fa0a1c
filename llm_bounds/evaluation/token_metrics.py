"""Per-token metrics from one batch of logits: every pass over the vocabulary the evaluation makes.

From fp32 logits [P, V] and targets [P]: ln p of the target, its rank among the V ids (ties counted
against the target), and for each α the smoothed loss −log2((1−α)p + α/V), the model's own expected
smoothed loss (the entropy of the smoothed prediction), the squared deviation and the betting
log-wealth terms. Losses in **bits**, log-wealth in nats; every value of a row depends on that row
alone. :func:`llm_bounds.evaluation.evaluate.evaluate_units` calls :func:`token_metrics` per chunk.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from llm_bounds.bound.concentration import log_wealth_terms

LN2 = math.log(2.0)


def target_rank(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank of each target among the V ids: #(z > z_y) + #(z = z_y with id < y).

    A tie counts against the target, by token id, so the top-k set always holds exactly k ids and
    "the target is in the top k" means rank < k. Counting only strictly larger logits would let a
    tie (common under bf16) put the target in a set of more than k ids. Two passes over the
    vocabulary; the id comparison runs only on the rows that have a tie.
    """
    z_y = logits.gather(1, targets[:, None])
    rank = (logits > z_y).sum(dim=-1)
    tied = torch.nonzero((logits == z_y).sum(dim=-1) > 1).squeeze(1)  # z_y itself is always equal
    if len(tied):
        ids = torch.arange(logits.shape[-1], device=logits.device)
        rows, y = logits[tied], targets[tied]
        rank[tied] += ((rows == z_y[tied]) & (ids[None, :] < y[:, None])).sum(dim=-1)
    return rank


def token_metrics(logits: torch.Tensor, targets: torch.Tensor, alphas: torch.Tensor, ks: torch.Tensor,
                   vocab_size: int, widths: Sequence[float]) -> tuple[torch.Tensor, ...]:
    """All per-token metrics from fp32 logits [P, V] and targets [P], in bits; ``widths`` holds
    each α's loss range Δ (bits), which scales the log-wealth terms.

    Returns (smoothed [A,P] f64, unsmoothed [P] f64, top-k errors [K,P] bool, expected smoothed
    loss [A,P] f64, squared deviation [A,P] f64, log-wealth terms [A,|Λ|,P] f64 in nats, on the CPU).
    Every value of a row depends on that row alone (the same numbers in any batch). On the CPU the
    passes over the vocabulary run in NumPy (:func:`vocabulary_passes_cpu`), whose vectorised exp
    and log are several times faster there than torch's; on a GPU in torch.
    """
    passes = vocabulary_passes_cpu if logits.device.type == "cpu" else vocabulary_passes_torch
    logp_y, rank, expected = passes(logits, targets, [float(a) for a in alphas.tolist()], vocab_size)
    unsmoothed = -logp_y / LN2
    topk_err = rank[None, :] >= ks.to(rank.device)[:, None]
    a64 = alphas.double().to(logp_y.device)[:, None]
    # log((1−α)p + α/V) without forming p, stable for tiny p
    smoothed = -torch.logaddexp(torch.log1p(-a64) + logp_y[None, :], torch.log(a64 / vocab_size)) / LN2
    sq_dev = (smoothed - expected) ** 2
    gap = (expected - smoothed).cpu().numpy()  # c_t − ℓ_t; the bound's own function takes the logs
    log_wealth = torch.from_numpy(np.stack([log_wealth_terms(gap[i], w) for i, w in enumerate(widths)]))
    return smoothed, unsmoothed, topk_err, expected, sq_dev, log_wealth


def vocabulary_passes_cpu(logits: torch.Tensor, targets: torch.Tensor, alphas: list[float],
                           vocab_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ln p_y [P] f64, target rank [P] (ties against the target, :func:`target_rank`), expected
    smoothed loss [A,P] f64 in bits) from fp32 logits on the CPU, in NumPy.

    With m the row's largest logit, e = exp(z − m) and s = Σe: ln p_y = z_y − m − ln s, and for each
    α, q = (1−α)·e/s + α/V and the expected smoothed loss is −Σ q·log2 q. Passes over the
    vocabulary: max, exp, sum, two comparisons for the rank, and three per α (q, log2, dot)."""
    z = np.ascontiguousarray(logits.detach().numpy())
    rows = np.arange(z.shape[0])
    y = targets.numpy().astype(np.int64)
    z_y = z[rows, y][:, None]
    m = z.max(axis=1, keepdims=True)
    e = np.subtract(z, m)
    np.exp(e, out=e)
    s = e.sum(axis=1, keepdims=True)
    logp_y = (z_y - m).astype(np.float64)[:, 0] - np.log(s.astype(np.float64))[:, 0]
    rank = np.count_nonzero(z > z_y, axis=1)
    tied = np.nonzero(np.count_nonzero(z == z_y, axis=1) > 1)[0]  # z_y itself is always equal
    for r in tied:
        rank[r] += np.count_nonzero(z[r, :y[r]] == z_y[r, 0])
    q, log_q = np.empty_like(e), np.empty_like(e)
    expected = np.empty((len(alphas), z.shape[0]), dtype=np.float64)
    for i, a in enumerate(alphas):
        np.multiply(e, (1.0 - a) / s, out=q)
        np.add(q, np.float32(a / vocab_size), out=q)
        np.log2(q, out=log_q)
        expected[i] = -np.einsum("ij,ij->i", q, log_q)
    return torch.from_numpy(logp_y), torch.from_numpy(rank), torch.from_numpy(expected)


def vocabulary_passes_torch(logits: torch.Tensor, targets: torch.Tensor, alphas: list[float],
                             vocab_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The same as :func:`vocabulary_passes_cpu`, in torch on the logits' device (a GPU)."""
    logp = torch.log_softmax(logits, dim=-1)
    logp_y = logp.gather(1, targets[:, None]).squeeze(1).double()
    rank = target_rank(logits, targets)
    p = logp.exp_()  # logp is not needed any more: reuse its memory
    q, log_q = torch.empty_like(p), torch.empty_like(p)
    expected = torch.empty((len(alphas), logits.shape[0]), dtype=torch.float64, device=logits.device)
    for i, a in enumerate(alphas):
        torch.mul(p, 1.0 - a, out=q).add_(a / vocab_size)
        torch.log2(q, out=log_q)
        expected[i] = -torch.linalg.vecdot(q, log_q).double()
    return logp_y, rank, expected
