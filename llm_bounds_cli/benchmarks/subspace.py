"""`python scripts/benchmark.py subspace`: what SubLoRA costs per training step.

Prints, from one run:
1. projector time (forward, forward+backward, in ms) at the reference's GPT-2 size
   D = 351,744, d = 50,000 for the structured projectors, and at a small size for all four;
2. for the CPU ladder and ``gpt2`` (scratch init, V = 50,257): D, d and the median step time
   (forward + backward + AdamW, one batch) of SubLoRA, plain peft LoRA and full fine-tuning, with
   the ratios. Modes are timed round-robin so that load from other processes hits all alike.
It ends with ``sublora_over_lora_step_ratio=<x>`` for ``gpt2`` at d = 50,000.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from llm_bounds.subspace.projectors import PROJECTORS, make_projector
from llm_bounds.subspace.registry import LADDER, build_base_model
from llm_bounds.subspace.sublora import SubLoRAConfig, SubLoRAModel, build_lora_lm
from llm_bounds.subspace.train import next_token_loss, resolve_device

REF_D, REF_d = 351_744, 50_000


def sync_device(device: torch.device) -> None:
    """Wait for queued CUDA work, so that a timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_ms(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync_device(device)
        t = time.perf_counter()
        fn()
        sync_device(device)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def time_projector(name: str, D: int, d: int, repeats: int, device: torch.device) -> tuple[float, float]:
    """(forward ms, forward+backward ms) of projector ``name`` at (D, d)."""
    P = make_projector(name, D, d, seed=0).to(device)
    z = torch.randn(d, device=device, requires_grad=True)
    g = torch.randn(D, device=device)

    def fwd():
        with torch.no_grad():
            P(z)

    def fwd_bwd():
        (P(z) * g).sum().backward()

    return _median_ms(fwd, repeats, device), _median_ms(fwd_bwd, repeats, device)


class _LogitsOnly(nn.Module):
    """Wrap an HF causal LM so that ``forward(input_ids)`` returns logits, as SubLoRAModel does."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids):
        return self.lm(input_ids=input_ids, use_cache=False).logits


def _step_fn(model: nn.Module, params, batch: torch.Tensor, device: torch.device):
    opt = torch.optim.AdamW(params, lr=1e-6)
    model.train()

    def step():
        loss = next_token_loss(model, batch, device)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return step


def time_steps(name: str, vocab: int, d: int, batch: int, seq: int, repeats: int,
               device: torch.device) -> dict:
    """Median step times (ms) of full fine-tuning, peft LoRA and SubLoRA for model ``name``."""
    cfg = SubLoRAConfig(model=name, vocab_size=vocab, n_positions=None if seq <= 256 else seq, intrinsic_dim=1)
    data = torch.randint(0, vocab, (batch, seq + 1), generator=torch.Generator().manual_seed(0))

    full = build_base_model(name, vocab, n_positions=cfg.n_positions).to(device)
    for p in full.parameters():
        p.requires_grad_(True)
    lora_lm = build_lora_lm(cfg)[0].to(device)
    D = sum(p.numel() for p in lora_lm.parameters() if p.requires_grad)
    d = min(d, D)
    cfg.intrinsic_dim = d
    lm, cfg = build_lora_lm(cfg)
    sub = SubLoRAModel(cfg, lm).to(device)
    steps = {
        "full": _step_fn(_LogitsOnly(full), list(full.parameters()), data, device),
        "lora": _step_fn(_LogitsOnly(lora_lm), [p for p in lora_lm.parameters() if p.requires_grad], data, device),
        "sublora": _step_fn(sub, [sub.z], data, device),
    }
    times = {k: [] for k in steps}
    for fn in steps.values():
        fn()                                   # warm-up
    order = list(steps)
    for r in range(repeats):                   # round-robin, so background load hits all modes
        for k in (order if r % 2 == 0 else order[::-1]):
            sync_device(device)
            t = time.perf_counter()
            steps[k]()
            sync_device(device)
            times[k].append((time.perf_counter() - t) * 1e3)
    out = {k: statistics.median(v) for k, v in times.items()}
    # ratio of SubLoRA to LoRA from steps timed side by side in the same round: robust to
    # slow changes in the load from other processes on a shared machine
    out["sub_over_lora"] = statistics.median(a / b for a, b in zip(times["sublora"], times["lora"]))
    out.update(D=D, d=d, params=sum(p.numel() for p in full.parameters()))
    return out


def main(argv=None) -> int:
    """Run the benchmark; ``--quick`` uses fewer repeats. Returns 0."""
    ap = argparse.ArgumentParser(prog="benchmark.py subspace", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--ladder-batch", type=int, default=4, help="sequences per step for ladder models")
    ap.add_argument("--gpt2-batch", type=int, default=1, help="sequences per step for gpt2")
    ap.add_argument("--seq", type=int, default=256, help="tokens per sequence")
    ap.add_argument("--skip-ladder", action="store_true")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    reps = args.repeats or (3 if args.quick else 7)
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"# subspace benchmark on {dev}, torch {torch.__version__}, median of {reps}")

    print("\n## projectors: forward / forward+backward, ms")
    print(f"{'projector':<10} {'D':>9} {'d':>7} {'fwd_ms':>8} {'fwd_bwd_ms':>10}")
    fastfood_ms = None
    for name in PROJECTORS:
        sizes = [(20_000, 1_000)] + ([(REF_D, REF_d)] if name in ("kron", "fastfood") else [])
        for D, d in sizes:
            f, fb = time_projector(name, D, d, max(reps, 5), device)
            if name == "fastfood" and D == REF_D:
                fastfood_ms = fb
            print(f"{name:<10} {D:>9,} {d:>7,} {f:>8.2f} {fb:>10.2f}")
    print("(dense and sparse are O(D d) and O(d sqrt D): at the reference size they are not for use;"
          " the reference's fastfood took 2.5 s and its sparse 0.9 s there, its Kronecker about 5 + 6 ms)")

    print(f"\n## step time (forward + backward + AdamW), ms; seq {args.seq}")
    print(f"{'model':<14} {'batch':>5} {'params':>12} {'D':>9} {'d':>7} {'full_ms':>9} {'lora_ms':>9} "
          f"{'sublora_ms':>10} {'sub/lora':>8} {'lora/full':>9} {'sub/full':>8}")
    print("(sub/lora: median over rounds of the two steps timed side by side; other ratios: of medians)")
    rows = [] if args.skip_ladder else [(n, 257, args.ladder_batch) for n in LADDER]
    rows.append(("gpt2", 50257, args.gpt2_batch))
    ratio = None
    for name, vocab, batch in rows:
        r = time_steps(name, vocab, REF_d, batch, args.seq, reps, device)
        sub_lora = r["sub_over_lora"]
        print(f"{name:<14} {batch:>5} {r['params']:>12,} {r['D']:>9,} {r['d']:>7,} {r['full']:>9.1f} "
              f"{r['lora']:>9.1f} {r['sublora']:>10.1f} {sub_lora:>8.3f} {r['lora'] / r['full']:>9.3f} "
              f"{r['sublora'] / r['full']:>8.3f}", flush=True)
        if name == "gpt2":
            ratio = sub_lora
    print(f"\nfastfood_fwd_bwd_ms_at_D{REF_D}_d{REF_d}={fastfood_ms:.2f}")
    print(f"sublora_over_lora_step_ratio={ratio:.4f}")
    return 0
