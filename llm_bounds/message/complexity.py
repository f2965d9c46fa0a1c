"""The complexity term: how many bits it takes to name the hypothesis, prefix-free.

Occam bound / countable union bound (e.g. Shalev-Shwartz & Ben-David 2014, Thm 7.7; Lotfi et al.
ICML 2024, Eq. 2): give hypothesis h the prior weight P(h) = 2^(−K(h)), where K(h) is the length in
bits of a *prefix-free* code for h. Kraft's inequality gives Σ_h 2^(−K(h)) ≤ 1, so a per-hypothesis
failure probability δ·2^(−K(h)) sums to at most δ over all hypotheses, and each bound pays
K(h)·ln 2 + ln(1/δ) nats.

Our hypothesis code is three concatenated parts, each prefix-free, so the whole is prefix-free:

1. the **hyperparameter choices** made after looking at data (α from a grid, the number of
   quantization levels, a searched d, ...): a uniform code over each grid costs log2|grid| bits
   (non-integer is fine: a uniform prior weight 1/|grid| is all Kraft needs);
2. the **length** of the message in bytes, in the Elias-delta code (a prefix-free code of the
   positive integers, Elias 1975) so that the decoder knows where the message ends;
3. the **message** itself: 8 bits per byte, the exact length of the arithmetic-coded bytes.

Everything else (architecture, seeds, projection, θ0, the grids themselves) is fixed before the
data is seen and costs nothing. All quantities here are in **bits**.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from llm_bounds.core.errors import require


def elias_delta_bits(n: int) -> int:
    """Length in bits of the Elias-delta codeword for the positive integer ``n``.

    |δ(n)| = ⌊log2 n⌋ + 2·⌊log2(⌊log2 n⌋ + 1)⌋ + 1. Prefix-free over n ≥ 1, and asymptotically
    log2 n + 2·log2 log2 n, which is shorter than the reference's 2·log2 n for all n ≥ 32.
    """
    require(float(n) == int(n) and int(n) >= 1, f"Elias-delta codes positive integers, got {n!r}")
    n = int(n)
    N = n.bit_length() - 1            # ⌊log2 n⌋, exact for big integers
    L = (N + 1).bit_length() - 1      # ⌊log2(N + 1)⌋
    return N + 2 * L + 1


def grid_bits(size: int) -> float:
    """log2(size): the cost in bits of choosing one element of a grid of ``size`` candidates."""
    require(float(size) == int(size) and int(size) >= 1, f"a grid has at least one candidate, got {size!r}")
    return math.log2(int(size))


@dataclass(frozen=True)
class Complexity:
    """The description length K(h) of a hypothesis in bits, with every part reported.

    ``total_bits = message_bits + length_prefix_bits + hyperparameter_bits``.
    ``hyperparameters`` maps each data-dependent choice to the grid size it was chosen from.
    """

    message_bits: int
    length_prefix_bits: int
    hyperparameter_bits: float
    hyperparameters: dict = field(default_factory=dict)

    @property
    def total_bits(self) -> float:
        return self.message_bits + self.length_prefix_bits + self.hyperparameter_bits

    def to_dict(self) -> dict:
        d = asdict(self)
        d["total_bits"] = self.total_bits
        return d


def message_complexity(message_nbytes: int, hyperparameter_grids: dict | None = None) -> Complexity:
    """K(h) for a message of ``message_nbytes`` bytes plus the named hyperparameter grids.

    ``hyperparameter_grids`` maps a name (e.g. ``"levels"``) to the number of candidates that choice
    was made from; each costs log2(size) bits. A grid of size 1 is a fixed choice and costs 0.
    """
    require(float(message_nbytes) == int(message_nbytes) and int(message_nbytes) >= 1,
            f"a message has at least one byte, got {message_nbytes!r}")
    grids = dict(hyperparameter_grids or {})
    hyper = sum(grid_bits(s) for s in grids.values())
    return Complexity(
        message_bits=8 * int(message_nbytes),
        length_prefix_bits=elias_delta_bits(int(message_nbytes)),
        hyperparameter_bits=hyper,
        hyperparameters=grids,
    )
