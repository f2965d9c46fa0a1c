"""The cost of a run before it starts, from real passes of its own model on its own device.

:func:`estimate_run` times training steps and evaluation batches of the built model (never a table
of past figures), counts the steps and the windows the run will forward, and adds what loading
already took. The timing passes leave no trace: z, the model's mode and every random state are as
before, so a run that was estimated gives the same message as one that was not.

Units: seconds, tokens. ``eval_tokens`` counts forwarded window tokens (a window of T tokens scores
up to T targets).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from llm_bounds.certificate.checkpoints import checkpoint_steps, screened
from llm_bounds.certificate.context import RunContext, informational_units
from llm_bounds.core.environment import process_seconds
from llm_bounds.data.baselines import baselines_cached
from llm_bounds.data.cache import default_cache_dir
from llm_bounds.evaluation.evaluate import evaluate_units, plan_windows
from llm_bounds.subspace.train import TrainConfig, next_token_loss, resolve_device, sample_batch

HOUR_S = 3600.0
MIN_TIMED_S = 0.3          # time passes until at least this long (at most MAX_PASSES of them)
MAX_PASSES = 8
COMPRESSOR_S_PER_MB = 1.0  # gzip -9 + bzip2 -9 + xz -9e (Python's standard library): 3.9 s for the KJV's 4 MB


def _timed(fn) -> tuple[float, float]:
    """(seconds per call of ``fn``, what its first call costs on top): the median of the calls after
    a warm-up call, repeated until MIN_TIMED_S have passed or MAX_PASSES calls were made."""
    t = time.perf_counter()
    fn()
    first = time.perf_counter() - t
    t0, times = time.perf_counter(), []
    while len(times) < MAX_PASSES and (not times or time.perf_counter() - t0 < MIN_TIMED_S):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    per_call = float(np.median(times))
    return per_call, max(0.0, first - per_call)


def train_step_seconds(ctx: RunContext) -> tuple[float, float]:
    """One training step (forward and backward of ``batch_size`` windows), without an update, and
    the first step's extra cost (:func:`_timed`)."""
    cfg, model = ctx.cfg, ctx.model
    device = resolve_device(cfg.device)
    tcfg = TrainConfig(batch_size=cfg.batch_size, seq_len=cfg.window, seed=cfg.seed_for("estimate"))
    model.to(device).train()

    def step():
        loss = next_token_loss(model, sample_batch(ctx.corpus.train_tokens, 0, 0, tcfg), device, ctx.prefix_id)
        loss.backward()
        model.z.grad = None

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        seconds = _timed(step)
    model.eval()
    return seconds


def eval_window_seconds(ctx: RunContext) -> tuple[float, float]:
    """One evaluated window (a full batch of ``eval_batch_size`` windows, every metric), per window,
    and the extra cost of an evaluation's first batch."""
    cfg = ctx.cfg
    units = ctx.units["token"]
    ids = np.arange(min(cfg.eval_batch_size, units.num_units), dtype=np.int64)
    device = resolve_device(cfg.device)
    ctx.model.to(device).eval()

    def batch():
        evaluate_units(ctx.model, ctx.corpus.train_tokens, units, ids, alphas=cfg.alphas,
                       batch_size=cfg.eval_batch_size, device=device,
                       autocast_dtype=torch.bfloat16 if cfg.eval_dtype == "bfloat16" else None,
                       token_nbytes=ctx.tokenizer.token_nbytes, vocab_size=ctx.tokenizer.vocab_size, progress=False,
                       prefix_id=ctx.prefix_id)

    per_batch, first = _timed(batch)
    return per_batch / cfg.eval_batch_size, first  # every forward pass has the full batch shape (padded)


def windows_of(ctx: RunContext, sample: str, limit: int | None = None) -> int:
    """Distinct windows the evaluation of ``sample`` (its first ``limit`` units) forwards."""
    if sample not in ctx.sample_ids:
        return 0
    ids = np.unique(ctx.sample_ids[sample][:limit])
    return len(plan_windows(ctx.units[sample], ids).window_starts)


def estimate_run(ctx: RunContext, loading_seconds: float | None = None) -> dict:
    """The run's training and evaluation tokens and its seconds, from timed passes (see the module).
    ``loading_seconds``: what the run spent before this call (default: the process's age, which
    counts the imports and the loading)."""
    t0 = time.perf_counter()
    if loading_seconds is None:
        loading_seconds = process_seconds() or 0.0
    cfg = ctx.cfg
    steps = checkpoint_steps(cfg)
    coded = len([s for s in steps if s > 0]) if len(steps) > 1 else 1  # checkpoints coded at every level count
    n_info = informational_units(len(ctx.sample_ids["token"]))
    # θ0 and the final step: the trained message is screened on the first units (screen.py) and
    # evaluated fully only if it could beat θ0; counted here as screened, the likelier outcome
    screen = screened(cfg) and n_info < len(ctx.sample_ids["token"])
    full = windows_of(ctx, "token") * len(cfg.levels) * coded
    windows = {**({"token sample's first units, each level count (the screen)":
                   windows_of(ctx, "token", n_info) * len(cfg.levels)} if screen else
                  {"token sample, each level count": full}),
               **({"token sample, the untrained checkpoint": windows_of(ctx, "token")} if len(steps) > 1 else {}),
               "unquantized z (informational)": windows_of(ctx, "token", n_info),
               "document sample": windows_of(ctx, "document"),
               "held-out sample": windows_of(ctx, "heldout") * (2 if cfg.init == "pretrained" or len(steps) > 1 else 1)}
    train_steps = cfg.max_steps + cfg.qat_steps * len(cfg.levels) * coded
    step_s, step_first = train_step_seconds(ctx) if train_steps else (0.0, 0.0)
    window_s, window_first = eval_window_seconds(ctx)
    total_windows = sum(windows.values())
    stages = (1 if cfg.max_steps else 0) + (len(cfg.levels) * coded if cfg.qat_steps else 0)
    parts = {"loading": loading_seconds, "training": train_steps * step_s, "evaluation": total_windows * window_s,
             "compressors": 0.0 if baselines_cached(ctx.scored_text(), default_cache_dir())
             else COMPRESSOR_S_PER_MB * ctx.scored_bytes() / 1e6}
    # each training stage and each evaluation pays its first pass's extra once; this estimate itself
    parts["overheads"] = (stages * step_first + sum(w > 0 for w in windows.values()) * window_first
                          + time.perf_counter() - t0)
    seconds = sum(parts.values())
    return {"train_tokens": train_steps * cfg.batch_size * cfg.window, "eval_tokens": total_windows * cfg.window,
            "seconds": seconds, "parts": parts, "windows": windows,
            "if_screen_passes": {"windows": full, "seconds": full * window_s} if screen else None,
            "measured": {"train_step_s": step_s, "eval_window_s": window_s, "device": str(resolve_device(cfg.device))},
            "cheaper": cheaper_choice(ctx, parts, step_s, window_s) if seconds > HOUR_S else None}


def cheaper_choice(ctx: RunContext, parts: dict, step_s: float, window_s: float) -> str:
    """One line naming what would bring the run under an hour."""
    cfg = ctx.cfg
    if resolve_device(cfg.device).type == "cpu" and torch.cuda.is_available():
        return "--device cuda (a GPU is available)"
    options = []
    budget = HOUR_S / 2
    if parts["training"] > budget and step_s > 0:
        options.append(f"--max-steps {max(1, int(budget / step_s) - cfg.qat_steps * len(cfg.levels))}")
    if parts["evaluation"] > budget and window_s > 0:
        windows_per_unit = max(1, ctx.cfg.window // ctx.cfg.stride)
        n = max(64, int(budget / window_s / max(1, len(cfg.levels)) / windows_per_unit))
        options.append(f"--n-samples {n}")
    options.append("--preset pretrained-smoke" if cfg.init == "pretrained" else "--preset smoke")
    return "cheaper: " + ", or ".join(options) + (", or --device cuda on a machine with a GPU")


def describe(estimate: dict) -> str:
    """The estimate in one line, in minutes."""
    p = estimate["parts"]
    return (f"[estimate] about {estimate['seconds'] / 60:.1f} min on {estimate['measured']['device']}: loading "
            f"{p['loading'] / 60:.1f}, training {p['training'] / 60:.1f} ({estimate['train_tokens']:,} tokens), "
            f"evaluation {p['evaluation'] / 60:.1f} ({estimate['eval_tokens']:,} tokens), compressors "
            f"{p['compressors'] / 60:.1f}"
            + (f"; {estimate['if_screen_passes']['seconds'] / 60:.1f} more if the trained message passes the screen"
               if estimate.get("if_screen_passes") else ""))
