"""Prediction smoothing: mixing the model's prediction with the uniform distribution bounds the loss.

Lotfi et al., *Non-Vacuous Generalization Bounds for Large Language Models* (ICML 2024), Sec. 4:
the smoothed predictor p_α(x) = (1−α)·p(x) + α/V assigns every token probability at least α/V,
so its log-loss is bounded, which Hoeffding/Azuma-type inequalities need.

Units: all losses here are in **bits** (log base 2) **per token**.
"""
from __future__ import annotations

import math

from llm_bounds.core.errors import require


def check_alpha_vocab(alpha: float, vocab_size: int) -> None:
    """Validate a smoothing weight α ∈ (0,1) and a vocabulary size V ≥ 2."""
    require(isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0.0 < alpha < 1.0,
            f"alpha must lie strictly between 0 and 1, got {alpha!r}; pass e.g. --alpha 0.1")
    require(float(vocab_size) == int(vocab_size) and int(vocab_size) >= 2,
            f"vocab size must be an integer >= 2, got {vocab_size!r}; pass the tokenizer's vocabulary size")


def smoothed_loss_range(alpha: float, vocab_size: int) -> tuple[float, float]:
    """The interval ``[lo, hi]`` (bits per token) that contains every smoothed loss.

    With p ∈ [0,1]:  lo = −log2((1−α) + α/V) = log2(V / ((1−α)V + α))  (at p = 1),
                     hi = −log2(α/V)          = log2(V/α)               (at p = 0).
    """
    check_alpha_vocab(alpha, vocab_size)
    V = float(vocab_size)
    lo = math.log2(V / ((1.0 - alpha) * V + alpha))
    hi = math.log2(V / alpha)
    return lo, hi


def random_guess_bits(vocab_size: int) -> float:
    """log2 V: the loss of the uniform predictor, in bits per token. A bound above it is vacuous."""
    require(int(vocab_size) >= 2, f"vocab size must be >= 2, got {vocab_size!r}")
    return math.log2(vocab_size)
