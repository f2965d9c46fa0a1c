"""Benchmark: throughput of the one-pass evaluation against a bare forward pass on the same batches.

``python scripts/benchmark.py eval`` samples token-level units of the embedded KJV corpus (byte
tokenizer, V = 257), forwards their windows with a small randomly initialised GPT-2-shaped model,
and times (a) the bare forward passes and (b) :func:`bounds.evaluate.evaluate_units` over the same
windows in the same batch shapes, interleaved, best of ``--repeats``. A second case uses V = 50,257
on a synthetic stream (``--no-large-vocab`` skips it). The last line is
``eval_over_forward_throughput=<x>``: evaluation tokens/s ÷ bare-forward tokens/s (goal ≥ 0.8).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.context import sublora_config
from llm_bounds.data.corpus import build_corpus, load_documents
from llm_bounds.evaluation.evaluate import evaluate_units, forward_logits, plan_windows, sample_units
from llm_bounds.data.scoring import ScoringGrid, make_units
from llm_bounds.data.tokenizers import get_tokenizer
from llm_bounds.subspace.sublora import build_sublora

ALPHAS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


def tiny_gpt2(vocab_size: int, window: int, *, n_layer: int, n_embd: int, seed: int):
    """A randomly initialised GPT-2-shaped model (seeded), in eval mode."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=window, n_embd=n_embd, n_layer=n_layer,
                     n_head=max(1, n_embd // 32), bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1)
    return GPT2LMHeadModel(cfg).eval()


def bare_forward_seconds(model, tokens: np.ndarray, window_starts: np.ndarray, window: int, batch_size: int,
                         autocast_dtype=None) -> float:
    """Seconds for forward passes alone over the windows, in the batches evaluate_units uses."""
    pos = window_starts[:, None] + np.arange(window)[None, :]
    inside = pos < len(tokens)
    x = torch.from_numpy(np.where(inside, np.asarray(tokens[np.minimum(pos, len(tokens) - 1)]), 0).astype(np.int64))
    batches = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
    t0 = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", dtype=autocast_dtype or torch.float32,
                                                enabled=autocast_dtype is not None):
        for b in batches:
            forward_logits(model, b)
    return time.perf_counter() - t0


def measure(name: str, model, tokens: np.ndarray, units, n: int, batch_size: int, repeats: int,
            token_nbytes: np.ndarray | None, autocast_dtype=None, alphas=ALPHAS) -> float:
    """Print one table row and return the throughput ratio eval / bare forward (tokens per second)."""
    ids = sample_units(units.num_units, n, seed=0)
    plan = plan_windows(units, np.unique(ids))
    forwarded = len(plan.window_starts) * units.grid.window
    bare, ev = [], []
    result = None
    for _ in range(repeats):  # interleaved, so that load from other processes hits both alike
        bare.append(bare_forward_seconds(model, tokens, plan.window_starts, units.grid.window, batch_size,
                                         autocast_dtype))
        t0 = time.perf_counter()
        result = evaluate_units(model, tokens, units, ids, alphas=alphas, batch_size=batch_size,
                                token_nbytes=token_nbytes, progress=False, autocast_dtype=autocast_dtype)
        ev.append(time.perf_counter() - t0)
    assert result is not None and result.tokens_forwarded == forwarded
    bare_tps, eval_tps = forwarded / min(bare), forwarded / min(ev)
    ratio = eval_tps / bare_tps
    print(f"{name:<28} {len(plan.window_starts):>8} {forwarded:>10} {bare_tps:>12,.0f} {eval_tps:>12,.0f} {ratio:>7.3f}"
          f"   ({result.bits_per_token:.3f} bits/token)")
    return ratio


def autocast_of(args):
    return torch.bfloat16 if args.dtype == "bfloat16" else None


def measure_model(args, grid: ScoringGrid) -> int:
    """The ``--model`` case: one real model and its tokenizer, the last line the throughput ratio."""
    cfg = RunConfig(model=args.model)
    tok = get_tokenizer(cfg.tokenizer, cfg.tokenizer_dir)
    corpus = build_corpus(load_documents("kjv"), tok, heldout_fraction=0.05, seed=0, cache_dir=False)
    model = build_sublora(sublora_config(cfg, tok.vocab_size))
    print(f"model: {args.model} ({cfg.init}), V={tok.vocab_size}, T={args.window}, S={args.stride}, batch "
          f"{args.batch_size} windows, {args.alphas} alphas, {torch.get_num_threads()} thread(s), {args.dtype}, "
          f"best of {args.repeats}")
    print(f"{'case':<28} {'windows':>8} {'tokens':>10} {'bare tok/s':>12} {'eval tok/s':>12} {'ratio':>7}")
    ratio = measure(f"KJV, {args.model}", model, corpus.train_tokens, make_units("token", grid, corpus.num_train_tokens),
                    args.n, args.batch_size, args.repeats, tok.token_nbytes, autocast_of(args), ALPHAS[:args.alphas])
    print(f"eval_over_forward_throughput={ratio:.3f}")
    return 0


def main(argv=None) -> int:
    """Run the benchmark; the last printed line is ``eval_over_forward_throughput=<x>``."""
    ap = argparse.ArgumentParser(prog="benchmark.py eval", description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--stride", type=int, default=128)
    ap.add_argument("--n", type=int, default=192, help="sampled units (V = 257 case)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is steadiest on a shared CPU)")
    ap.add_argument("--no-large-vocab", action="store_true", help="skip the V = 50,257 case")
    ap.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                    help="the forward pass in float32, or under bfloat16 autocast (both sides alike)")
    ap.add_argument("--alphas", type=int, default=len(ALPHAS), help="how many of the six α to score (the presets use 2 to 4)")
    ap.add_argument("--model", help="instead: a real model (e.g. smollm2-135m-instruct) with its own tokenizer on KJV, "
                                    "as the run builds it (SubLoRA at z = 0)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid = ScoringGrid(args.window, args.stride)
    if args.model:
        return measure_model(args, grid)

    tok = get_tokenizer("bytes")
    corpus = build_corpus(load_documents("kjv"), tok, heldout_fraction=0.05, seed=0, cache_dir=False)
    units = make_units("token", grid, corpus.num_train_tokens)
    print(f"model: GPT-2 shape, {args.layers} layers x {args.width}, T={args.window}, S={args.stride}, "
          f"batch {args.batch_size} windows, {len(ALPHAS)} alphas, {torch.get_num_threads()} thread(s), best of {args.repeats}")
    print(f"{'case':<28} {'windows':>8} {'tokens':>10} {'bare tok/s':>12} {'eval tok/s':>12} {'ratio':>7}")
    model = tiny_gpt2(tok.vocab_size, args.window, n_layer=args.layers, n_embd=args.width, seed=0)
    ratio = measure(f"KJV bytes, V={tok.vocab_size}", model, corpus.train_tokens, units, args.n, args.batch_size,
                    args.repeats, tok.token_nbytes)

    if not args.no_large_vocab:
        V = 50257
        rng = np.random.Generator(np.random.PCG64(1))
        stream = rng.integers(0, V, size=200_000).astype(np.uint16)
        big = tiny_gpt2(V, args.window, n_layer=args.layers, n_embd=args.width, seed=0)
        big_ratio = measure(f"synthetic, V={V}", big, stream, make_units("token", grid, len(stream)),
                            max(1, args.n // 4), args.batch_size, args.repeats, None)
        print(f"eval_over_forward_throughput_v{V}={big_ratio:.3f}")
    print(f"eval_over_forward_throughput={ratio:.3f}")
    return 0
