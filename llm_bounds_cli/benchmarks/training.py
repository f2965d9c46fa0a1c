"""Training throughput and model FLOPs utilization (MFU) of SubLoRA: `python scripts/benchmark.py train`.

MFU follows the usual convention (Chowdhery et al. 2022; nanoGPT): achieved model FLOP/s divided
by the device's peak, with 6·N FLOPs per trained token for the N parameters used in matrix
products (the non-embedding ones plus the V·W output head, tied to the embedding) plus the
attention term 12·L·T·W. SubLoRA skips the weight gradients of the frozen base (about 4·N per
token of real work), so the same convention slightly overstates its work; both are printed.
The peak is *measured* here as the best fp32 (CPU) or bf16 (GPU) matmul throughput, not taken
from a data sheet. Ends with ``train_tokens_per_s=<x>`` and ``train_mfu=<x>``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from llm_bounds_cli.benchmarks.subspace import sync_device
from llm_bounds.subspace.registry import GPT2_FAMILY, non_embedding_params, parse_ladder_name
from llm_bounds.subspace.sublora import SubLoRAConfig, build_sublora
from llm_bounds.subspace.train import next_token_loss


def measured_peak_flops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Best observed FLOP/s of an n×n matmul (fp32 on CPU, bf16 on GPU)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        sync_device(device)
        t = time.perf_counter()
        (a @ b).sum().item()
        sync_device(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def flops_per_token(name: str, seq: int, vocab: int = 50257) -> tuple[float, float]:
    """(6N + 12·L·T·W, 4N + 12·L·T·W) FLOPs per trained token for a GPT-2-shaped model, where N
    counts the non-embedding parameters and the output head (V·W)."""
    shape = GPT2_FAMILY.get(name) or parse_ladder_name(name)
    layers, width = shape[0], shape[1]
    n = non_embedding_params(layers, width) + vocab * width
    attn = 12 * layers * seq * width
    return 6 * n + attn, 4 * n + attn


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="benchmark.py train")
    p.add_argument("--model", default="gpt2")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--d", type=int, default=50_000)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    model = build_sublora(SubLoRAConfig(model=args.model, vocab_size=50257, intrinsic_dim=args.d,
                                        n_positions=max(args.seq, 256) if args.seq > 1024 else None)).to(device)
    model.train()
    opt = torch.optim.AdamW([model.z], lr=1e-6)
    batch = torch.randint(0, 50257, (args.batch, args.seq + 1), generator=torch.Generator().manual_seed(0))
    times = []
    for i in range(args.steps + 1):
        sync_device(device)
        t = time.perf_counter()
        next_token_loss(model, batch, device).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync_device(device)
        if i:  # the first step is a warm-up
            times.append(time.perf_counter() - t)
    step = statistics.median(times)
    tok_s = args.batch * args.seq / step
    peak = measured_peak_flops(device)
    f6, f4 = flops_per_token(args.model, args.seq)
    print(f"device={device} model={args.model} batch={args.batch}x{args.seq} d={args.d} threads={torch.get_num_threads()}")
    print(f"step_s={step:.3f} tokens_per_s={tok_s:,.0f} measured_peak_gflops={peak / 1e9:,.1f}")
    print(f"mfu_6N={f6 * tok_s / peak:.3f} (convention) mfu_4N={f4 * tok_s / peak:.3f} (SubLoRA's real work)")
    print(f"train_tokens_per_s={tok_s:.1f}")
    print(f"train_mfu={f6 * tok_s / peak:.4f}")
    return 0
