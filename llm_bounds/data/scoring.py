"""The scoring grid: which tokens are scored, and with what context, fixed before the data is seen.

Terms. A *target* is a stream position j ≥ 1 whose token is predicted from earlier tokens. A
*window* forwards ``T`` input tokens ``x[c : c+T]`` and yields predictions for the targets
``c+1 .. c+T``. Windows start at multiples of the stride ``S``: the window at c = 0 scores all of
its targets, every later window scores only its last ``S`` targets, so each of those has between
T−S+1 and T tokens of context.

Units (what the bound samples):

* **token level**: unit u scores the S targets ``1+uS .. (u+1)S``. Units u < T/S lie in the first
  window and get all tokens before them as context; unit u ≥ T/S is the last S targets of the
  window starting at ``(u+1)S − T``. Every unit scores exactly S tokens, so a uniform sample of
  units estimates the per-token empirical risk with equal weights. Trailing targets that do not
  fill a unit are never scored. ``m`` = number of scored tokens = units · S.
* **document level**: one unit per document, its targets being the document's tokens and closing
  EOD, its context starting at the EOD before it, scored with the same windows inside the
  document. The unit's value is its mean loss per token; ``m`` = number of documents.

Either way the full empirical risk is the equally weighted mean over units.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llm_bounds.core.errors import require


@dataclass(frozen=True)
class ScoringGrid:
    """Windows of ``window`` (T) input tokens advanced by ``stride`` (S); S must divide T."""

    window: int = 256
    stride: int = 128

    def __post_init__(self) -> None:
        T, S = self.window, self.stride
        require(isinstance(T, (int, np.integer)) and T >= 1, f"window must be a positive integer, got {T!r}; pass e.g. --window 256")
        require(isinstance(S, (int, np.integer)) and 1 <= S <= T,
                f"stride must be an integer in [1, window={T}], got {S!r}; pass e.g. --stride {max(1, T // 2)}")
        require(T % S == 0, f"stride {S} must divide window {T}; pass e.g. --stride {max(1, T // 2)}")


@dataclass(frozen=True)
class UnitSet:
    """The units of one token stream under a grid.

    Per unit: ``context_start`` (first context token), ``score_start`` and ``score_end`` (the targets
    are stream positions ``[score_start, score_end)``), all int64 stream indices.
    """

    granularity: str
    grid: ScoringGrid
    context_start: np.ndarray
    score_start: np.ndarray
    score_end: np.ndarray
    stream_length: int

    @property
    def num_units(self) -> int:
        return int(len(self.score_start))

    @property
    def num_scored_tokens(self) -> int:
        """Targets scored by all units together."""
        return int((self.score_end - self.score_start).sum())

    @property
    def m(self) -> int:
        """The sample size of the bound: scored tokens (token level) or documents (document level)."""
        return self.num_scored_tokens if self.granularity == "token" else self.num_units

    @property
    def weights(self) -> np.ndarray:
        """Weight of each unit in the full empirical risk (equal: 1/num_units at both levels)."""
        return np.full(self.num_units, 1.0 / self.num_units)


def token_units(num_tokens: int, grid: ScoringGrid) -> UnitSet:
    """Token-level units of a stream of ``num_tokens`` tokens (see the module docstring)."""
    T, S = grid.window, grid.stride
    require(num_tokens >= T + 1, f"the corpus has {num_tokens} tokens, shorter than one window of {T} tokens plus "
                                 f"its first target; use a smaller --window or more text")
    n = (num_tokens - 1) // S
    u = np.arange(n, dtype=np.int64)
    score_start = 1 + u * S
    score_end = score_start + S
    context_start = np.maximum(0, (u + 1) * S - T)
    return UnitSet("token", grid, context_start, score_start, score_end, int(num_tokens))


def document_units(doc_offsets: np.ndarray, grid: ScoringGrid) -> UnitSet:
    """Document-level units from a stream's document offsets (``Corpus.train_doc_offsets``)."""
    offsets = np.asarray(doc_offsets, dtype=np.int64)
    require(offsets.ndim == 1 and len(offsets) >= 2, "the corpus has no documents; point --dataset at non-empty text")
    require(bool(np.all(np.diff(offsets) >= 1)) and offsets[0] >= 1,
            "document offsets must start at >= 1 and increase; build them with llm_bounds.data.corpus.build_corpus")
    return UnitSet("document", grid, offsets[:-1] - 1, offsets[:-1].copy(), offsets[1:].copy(), int(offsets[-1]))


def make_units(granularity: str, grid: ScoringGrid, num_tokens: int, doc_offsets: np.ndarray | None = None) -> UnitSet:
    """Units at ``level`` ("token" or "document") for a stream of ``num_tokens`` tokens."""
    require(granularity in ("token", "document"), f"granularity must be 'token' or 'document', got {granularity!r}")
    if granularity == "token":
        return token_units(num_tokens, grid)
    require(doc_offsets is not None, "document-level units need the document offsets of the stream")
    return document_units(doc_offsets, grid)


def unit_windows(context_start: int, score_start: int, score_end: int, grid: ScoringGrid) -> list[tuple[int, int, int]]:
    """The windows that score one unit: ``(window_start, first_target, end_target)`` with targets in
    stream positions ``[first_target, end_target)``.

    Windows run over the unit's own sequence ``x[context_start : score_end]``: the one at offset 0
    scores all its targets, the one at offset kS (k ≥ 1) its last S; only targets in
    ``[score_start, score_end)`` are kept.
    """
    T, S = grid.window, grid.stride
    c = int(context_start)
    last = int(score_end) - 1 - c          # last target, relative to c
    first = int(score_start) - c           # first target, relative to c
    out = []
    k = 0
    while True:
        lo = 1 if k == 0 else k * S + T - S + 1
        hi = k * S + T
        if lo > last:
            break
        lo, hi_kept = max(lo, first), min(hi, last)
        if lo <= hi_kept:
            out.append((c + k * S, c + lo, c + hi_kept + 1))
        k += 1
    return out
