"""Evaluations as data: merging the shards of several ranks, and the on-disk cache (``.npz``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from llm_bounds.core.files import write_atomic
from llm_bounds.evaluation.evaluate import EvalResult


def merge_evaluations(parts: list[EvalResult]) -> EvalResult:
    """One :class:`EvalResult` from shards of consecutive units (per-unit arrays joined in order)."""
    first = parts[0]
    joined = {k: (None if getattr(first, k) is None else np.concatenate([getattr(p, k) for p in parts], axis=-1))
              for k in _EVAL_ARRAYS if k not in ("alphas", "ks")}
    return EvalResult(granularity=first.granularity, vocab_size=first.vocab_size, alphas=first.alphas, ks=first.ks,
                      tokens_forwarded=sum(p.tokens_forwarded for p in parts),
                      seconds=max(p.seconds for p in parts), **joined)


_EVAL_ARRAYS = ("alphas", "ks", "unit_ids", "num_tokens", "num_bytes", "smoothed_bits", "unsmoothed_bits",
                "topk_error", "smoothed_bits_sum", "unsmoothed_bits_sum", "expected_smoothed_bits_sum",
                "smoothed_sq_dev_sum", "log_wealth_sum")


def save_eval(path: Path, res: EvalResult) -> None:
    """Cache an evaluation, atomically (rank 0 only, through :func:`write_atomic`)."""
    arrays = {k: getattr(res, k) for k in _EVAL_ARRAYS if getattr(res, k) is not None}
    write_atomic(path, lambda f: np.savez(f, level=np.array(res.granularity),  # the cache's key
                                                 vocab_size=np.array(res.vocab_size), **arrays))


def load_eval(path: Path) -> EvalResult:
    with np.load(path) as f:
        arrays = {k: (f[k] if k in f.files else None) for k in _EVAL_ARRAYS}
        return EvalResult(granularity=str(f["level"]), vocab_size=int(f["vocab_size"]), **arrays)
