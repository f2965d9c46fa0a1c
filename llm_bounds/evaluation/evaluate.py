"""Subsampled evaluation: sample units uniformly, then score them with batched forward passes.

One forward pass per batch of windows yields, for every scored token, all metrics at once:
the smoothed log-loss ``−log2((1−α)p + α/V)`` for each α, the unsmoothed loss ``−log2 p``, the
top-k error for each k (rank counted by comparison, not sorting, with ties broken against the
target: see :func:`llm_bounds.evaluation.token_metrics.target_rank`), and for each α the model's own
expected smoothed loss at that context (the entropy of the smoothed prediction) with the squared
deviation of the realised loss from it and, for each λ of the betting grid, ln(1 + λ·ξ) with
ξ = (expected − realised)/Δ (in nats, by :func:`llm_bounds.bound.concentration.log_wealth_terms`). Losses are in **bits**; arithmetic is fp32 over the
vocabulary and fp64 for per-token values, even when the forward pass runs in bf16.

Windows are shared: every distinct window start is forwarded once, however many sampled units
(or repeated samples of one unit) read from it. Windows are always ``T`` tokens long, padded on
the right at the end of the stream; a causal model's predictions at a position do not depend on
later inputs, so the padding and any tokens beyond a unit's targets change nothing.
"""
from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from llm_bounds.core.errors import BoundInputError, require
from llm_bounds.core.progress import progress_bar
from llm_bounds.data.scoring import UnitSet, unit_windows
from llm_bounds.bound.concentration import betting_lambda_grid
from llm_bounds.bound.smoothing import check_alpha_vocab, smoothed_loss_range
from llm_bounds.evaluation.token_metrics import token_metrics

DEFAULT_KS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 50, 100)


def sample_units(num_units: int, n: int, seed: int) -> np.ndarray:
    """``n`` unit indices drawn uniformly with replacement from ``[0, num_units)`` by ``Generator(PCG64(seed))``."""
    require(int(num_units) >= 1, f"there are no units to sample from (num_units={num_units}); use more text or a smaller window")
    require(int(n) >= 1, f"the sample size n must be >= 1, got {n!r}; pass e.g. --n-samples 10000")
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    return rng.integers(0, int(num_units), size=int(n), dtype=np.int64)


def evaluation_memory_bytes(n: int, distinct_units: int, stride: int, num_alphas: int,
                            num_ks: int = len(DEFAULT_KS)) -> int:
    """An estimate (bytes) of what :func:`evaluate_units` holds for ``n`` sampled units of which
    ``distinct_units`` differ, each scoring ``stride`` tokens: the per-unit results (float64: the
    metrics, and the log-wealth sums over the betting grid, per α), twice for the intermediate
    copies, and the plan's five int64 arrays per scored target. Not the model's own memory."""
    per_unit = 8 * (6 + num_ks + num_alphas * (4 + len(betting_lambda_grid())))
    return int(2 * per_unit * (n + distinct_units) + 2 * 5 * 8 * stride * distinct_units)


@dataclass
class EvalResult:
    """Per-sampled-unit metrics (arrays over the n sampled units, in sample order) and totals.

    Means are per token within a unit, in bits; sums are over the unit's scored tokens, in bits.
    Shapes: ``[n]``, ``[n_alpha, n]`` or ``[n_k, n]``. ``log_wealth_sum`` ([n_alpha, |Λ|, n], nats)
    sums ln(1 + λξ_t) over the unit's tokens for each λ of
    :func:`llm_bounds.bound.concentration.betting_lambda_grid` (None in caches written before it existed).
    """

    granularity: str
    vocab_size: int
    alphas: np.ndarray
    ks: np.ndarray
    unit_ids: np.ndarray
    num_tokens: np.ndarray
    num_bytes: np.ndarray | None
    smoothed_bits: np.ndarray
    unsmoothed_bits: np.ndarray
    topk_error: np.ndarray
    smoothed_bits_sum: np.ndarray
    unsmoothed_bits_sum: np.ndarray
    expected_smoothed_bits_sum: np.ndarray
    smoothed_sq_dev_sum: np.ndarray
    log_wealth_sum: np.ndarray | None = None
    tokens_forwarded: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(len(self.unit_ids))

    @property
    def bits_per_token(self) -> float:
        """Unsmoothed total bits / total scored tokens over the sample."""
        return float(self.unsmoothed_bits_sum.sum() / self.num_tokens.sum())

    @property
    def bits_per_byte(self) -> float | None:
        """Unsmoothed total bits / UTF-8 bytes of the scored text (None without ``token_nbytes``)."""
        if self.num_bytes is None or self.num_bytes.sum() == 0:
            return None
        return float(self.unsmoothed_bits_sum.sum() / self.num_bytes.sum())


@contextlib.contextmanager
def deterministic_kernels():
    """Evaluate with deterministic kernels and full-precision reductions, then restore the settings.

    With one batch shape for every forward pass (:func:`evaluate_units` pads the last batch), a
    window's logits then do not depend on which other windows share its batch, so the evaluated
    function is the same whatever the sample. On the CPU these switches change nothing.
    """
    cuda, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, cuda.allow_tf32,
             cuda.allow_fp16_reduced_precision_reduction, cuda.allow_bf16_reduced_precision_reduction)
    cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, cuda.allow_tf32 = True, False, False, False
    cuda.allow_fp16_reduced_precision_reduction = cuda.allow_bf16_reduced_precision_reduction = False
    try:
        yield
    finally:
        (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, cuda.allow_tf32,
         cuda.allow_fp16_reduced_precision_reduction, cuda.allow_bf16_reduced_precision_reduction) = saved


def forward_logits(model, input_ids: torch.Tensor) -> torch.Tensor:
    """Logits [B, T, V] of ``model`` on ``input_ids`` [B, T]; accepts plain modules and HF models
    (``.logits``), and turns off the key/value cache of HF models since nothing is generated."""
    config = getattr(model, "config", None)
    if getattr(config, "use_cache", None) is not None:
        out = model(input_ids, use_cache=False)
    else:
        out = model(input_ids)
    if hasattr(out, "logits"):
        return out.logits
    if isinstance(out, (tuple, list)):
        return out[0]
    return out


def model_context_length(model) -> int | None:
    """The longest input the model accepts, from an HF config (None when unknown)."""
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


@dataclass
class WindowPlan:
    """Which windows to forward and where each scored target's logits come from."""

    window_starts: np.ndarray   # [W] distinct window starts, sorted
    entry_window: np.ndarray    # [E] window index of each scored target, sorted ascending
    entry_column: np.ndarray    # [E] position inside the window whose logits predict the target
    entry_target: np.ndarray    # [E] stream position of the target
    entry_unit: np.ndarray      # [E] index into the distinct sampled units
    window_entry_bounds: np.ndarray  # [W+1] entries of window w are [bounds[w], bounds[w+1])


def plan_windows(units: UnitSet, unique_ids: np.ndarray) -> WindowPlan:
    """Expand the distinct units ``unique_ids`` (sorted, no repeats) into scored targets and the
    distinct windows that score them."""
    starts, targets, owners = [], [], []
    for j, u in enumerate(unique_ids):
        for ws, a, b in unit_windows(units.context_start[u], units.score_start[u], units.score_end[u], units.grid):
            starts.append(np.full(b - a, ws, dtype=np.int64))
            targets.append(np.arange(a, b, dtype=np.int64))
            owners.append(np.full(b - a, j, dtype=np.int64))
    entry_start = np.concatenate(starts)
    entry_target = np.concatenate(targets)
    entry_unit = np.concatenate(owners)
    window_starts, entry_window = np.unique(entry_start, return_inverse=True)
    order = np.argsort(entry_window, kind="stable")
    entry_window, entry_target, entry_unit = entry_window[order], entry_target[order], entry_unit[order]
    entry_column = entry_target - window_starts[entry_window] - 1
    bounds = np.searchsorted(entry_window, np.arange(len(window_starts) + 1))
    return WindowPlan(window_starts, entry_window, entry_column, entry_target, entry_unit, bounds)


def evaluate_units(model, tokens: np.ndarray, units: UnitSet, unit_ids: np.ndarray, *,
                   alphas: Sequence[float], ks: Sequence[int] = DEFAULT_KS, batch_size: int = 16,
                   device: str | torch.device = "cpu", autocast_dtype: torch.dtype | None = None,
                   token_nbytes: np.ndarray | None = None, vocab_size: int | None = None,
                   progress: bool = True, prefix_id: int | None = None) -> EvalResult:
    """Score the sampled units ``unit_ids`` of ``units`` (over the stream ``tokens``) with ``model``.

    ``model`` (already on ``device``) maps input ids [B, T] to logits [B, T, V] or an object with
    ``.logits``. ``batch_size`` counts windows per forward pass. ``autocast_dtype`` (e.g.
    ``torch.bfloat16``) runs the forward pass under autocast; the loss arithmetic stays fp32/fp64.
    V is ``vocab_size``, else ``len(token_nbytes)``, else the model's; it must equal the model's.
    ``prefix_id``: a token put before every window (context only: a window then has T + 1 inputs
    and scores the same targets). Returns per-unit metrics in bits (see :class:`EvalResult`).
    """
    t0 = time.perf_counter()
    unit_ids = np.asarray(unit_ids, dtype=np.int64)
    require(unit_ids.ndim == 1 and len(unit_ids) >= 1, "unit_ids must be a non-empty 1-D array; draw them with sample_units")
    require(int(unit_ids.min()) >= 0 and int(unit_ids.max()) < units.num_units,
            f"unit ids must lie in [0, {units.num_units}); draw them with sample_units(units.num_units, n, seed)")
    require(len(tokens) == units.stream_length, f"the token stream has {len(tokens)} tokens but the units were built for "
                                                f"{units.stream_length}; build the units from the same stream")
    require(int(batch_size) >= 1, f"batch_size must be >= 1, got {batch_size!r}")
    ks_arr = np.asarray(list(ks), dtype=np.int64)
    require(ks_arr.ndim == 1 and len(ks_arr) >= 1 and bool(np.all(ks_arr >= 1)), f"ks must be positive integers, got {ks!r}")
    alphas_arr = np.asarray(list(alphas), dtype=np.float64)
    require(len(alphas_arr) >= 1, "alphas must hold at least one smoothing weight; pass e.g. --alpha 0.01,0.1")
    if vocab_size is None and token_nbytes is not None:
        vocab_size = len(token_nbytes)
    if token_nbytes is not None:
        require(len(token_nbytes) == vocab_size, f"token_nbytes has {len(token_nbytes)} entries but V = {vocab_size}; "
                                                 "pass the tokenizer's token_nbytes")
    T = units.grid.window
    shift = 0 if prefix_id is None else 1  # the prefix takes the first input position
    ctx = model_context_length(model)
    if ctx is not None:
        require(T + shift <= ctx, f"the window T={T} (plus {shift} prefix token) is longer than the model's "
                                  f"context of {ctx} tokens; pass --window {ctx - shift} or less")

    model_vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(model_vocab, int) and vocab_size is not None and model_vocab != vocab_size:
        raise BoundInputError(f"the model has a vocabulary of {model_vocab} but the tokenizer has V = {vocab_size}; "
                              "use the tokenizer the model was built for (or resize the model's vocabulary)")

    unique_ids, inverse = np.unique(unit_ids, return_inverse=True)
    plan = plan_windows(units, unique_ids)
    stream_len = len(tokens)
    target_ids = np.asarray(tokens[plan.entry_target]).astype(np.int64)
    U, A, K = len(unique_ids), len(alphas_arr), len(ks_arr)
    sums = {"smoothed": torch.zeros(A, U, dtype=torch.float64), "unsmoothed": torch.zeros(U, dtype=torch.float64),
            "topk": torch.zeros(K, U, dtype=torch.float64), "expected": torch.zeros(A, U, dtype=torch.float64),
            "sq_dev": torch.zeros(A, U, dtype=torch.float64),
            "log_wealth": torch.zeros(A, len(betting_lambda_grid()), U, dtype=torch.float64)}
    alphas_t = torch.tensor(alphas_arr, dtype=torch.float32)
    ks_t = torch.tensor(ks_arr)
    checked_vocab = False
    offsets = np.arange(T, dtype=np.int64)
    num_windows = len(plan.window_starts)
    batches = range(0, num_windows, int(batch_size))
    autocast = (torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype)
                if autocast_dtype is not None else contextlib.nullcontext())
    bar = None
    if progress:
        bar = progress_bar(total=num_windows, desc=f"evaluating {len(unit_ids)} {units.granularity} units", unit="window")

    model.eval()
    threads = torch.get_num_threads() if torch.device(device).type == "cpu" else 1
    workers = ThreadPoolExecutor(max_workers=threads) if threads > 1 else contextlib.nullcontext()
    with torch.inference_mode(), deterministic_kernels(), workers as pool:
        for w0 in batches:
            w1 = min(w0 + int(batch_size), num_windows)
            pos = plan.window_starts[w0:w1, None] + offsets[None, :]
            inside = pos < stream_len
            window_tokens = np.where(inside, np.asarray(tokens[np.minimum(pos, stream_len - 1)]), 0).astype(np.int64)
            if w1 - w0 < int(batch_size):  # one batch shape for every forward pass: repeat the last window
                fill = np.repeat(window_tokens[-1:], int(batch_size) - (w1 - w0), axis=0)
                window_tokens = np.concatenate([window_tokens, fill])
            if prefix_id is not None:
                window_tokens = np.concatenate([np.full((len(window_tokens), 1), int(prefix_id)), window_tokens], 1)
            limit = vocab_size if vocab_size is not None else model_vocab
            top = int(window_tokens.max())
            require(not isinstance(limit, int) or top < limit,
                    f"token id {top} is outside the vocabulary of {limit}; tokenize the corpus with the model's tokenizer")
            with autocast:
                logits = forward_logits(model, torch.from_numpy(window_tokens).to(device))
            if not checked_vocab:
                V_model = int(logits.shape[-1])
                if vocab_size is None:
                    vocab_size = V_model
                if V_model != vocab_size:
                    raise BoundInputError(f"the model predicts {V_model} token ids but the tokenizer has V = {vocab_size}; "
                                          "use the tokenizer the model was built for (or resize the model's vocabulary)")
                for a in alphas_arr:
                    check_alpha_vocab(float(a), vocab_size)
                widths = [hi - lo for lo, hi in (smoothed_loss_range(float(a), vocab_size) for a in alphas_arr)]
                checked_vocab = True
            require(top < vocab_size, f"token id {top} is outside the model's vocabulary of {vocab_size}; "
                                      "tokenize the corpus with the model's tokenizer")
            e0, e1 = plan.window_entry_bounds[w0], plan.window_entry_bounds[w1]
            rows = torch.from_numpy(plan.entry_window[e0:e1] - w0).to(logits.device)
            cols = torch.from_numpy(plan.entry_column[e0:e1] + shift).to(logits.device)
            tgt = torch.from_numpy(target_ids[e0:e1])
            owner = torch.from_numpy(plan.entry_unit[e0:e1])
            chunk = max(1, (1 << 19) // vocab_size)  # rows per metric chunk: cache-sized blocks for large V
            flat = logits.reshape(-1, logits.shape[-1])
            index = (rows * logits.shape[1] + cols).cpu().numpy()

            def metrics(sl: slice):
                with torch.inference_mode():  # thread-local: a worker thread starts outside it
                    return chunk_metrics(sl)

            def chunk_metrics(sl: slice):
                i = index[sl]
                if len(i) and i[-1] - i[0] == len(i) - 1 and bool(np.all(np.diff(i) == 1)):
                    z = flat[int(i[0]):int(i[-1]) + 1].float()  # consecutive positions: a view, no copy
                else:
                    z = logits[rows[sl], cols[sl]].float()
                return token_metrics(z, tgt[sl].to(z.device), alphas_t.to(z.device), ks_t.to(z.device),
                                      vocab_size, widths)

            # the chunks are independent (every value of a row depends on that row): on the CPU they
            # run on torch's threads, since NumPy's passes use one core each; sums are taken in order
            chunks = [slice(c0, c0 + chunk) for c0 in range(0, e1 - e0, chunk)]
            results = pool.map(metrics, chunks) if pool is not None else map(metrics, chunks)
            for sl, (sm, un, err, ex, sq, lw) in zip(chunks, results):
                o = owner[sl]
                sums["smoothed"].index_add_(1, o, sm.cpu())
                sums["unsmoothed"].index_add_(0, o, un.cpu())
                sums["topk"].index_add_(1, o, err.double().cpu())
                sums["expected"].index_add_(1, o, ex.cpu())
                sums["sq_dev"].index_add_(1, o, sq.cpu())
                sums["log_wealth"].index_add_(2, o, lw.cpu())
            if bar is not None:
                bar.update(w1 - w0)
    if bar is not None:
        bar.close()

    counts_u = (units.score_end[unique_ids] - units.score_start[unique_ids]).astype(np.int64)
    bytes_u = None
    if token_nbytes is not None:
        nb = np.asarray(token_nbytes, dtype=np.int64)[target_ids]
        bytes_u = np.bincount(plan.entry_unit, weights=nb, minlength=U).round().astype(np.int64)
    s = {k: v.numpy() for k, v in sums.items()}
    per_token = counts_u.astype(np.float64)
    num_tokens = counts_u[inverse]
    return EvalResult(
        granularity=units.granularity, vocab_size=int(vocab_size), alphas=alphas_arr, ks=ks_arr, unit_ids=unit_ids,
        num_tokens=num_tokens, num_bytes=None if bytes_u is None else bytes_u[inverse],
        smoothed_bits=(s["smoothed"] / per_token)[:, inverse], unsmoothed_bits=(s["unsmoothed"] / per_token)[inverse],
        topk_error=(s["topk"] / per_token)[:, inverse], smoothed_bits_sum=s["smoothed"][:, inverse],
        unsmoothed_bits_sum=s["unsmoothed"][inverse], expected_smoothed_bits_sum=s["expected"][:, inverse],
        smoothed_sq_dev_sum=s["sq_dev"][:, inverse], log_wealth_sum=s["log_wealth"][:, :, inverse],
        tokens_forwarded=num_windows * T,
        seconds=time.perf_counter() - t0)
