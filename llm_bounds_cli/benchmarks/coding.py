"""`python scripts/benchmark.py coding`: message sizes against the ideal entropy, and coding speed.

Codes Gaussian z (seeded) with L = 11 and 17 for d ∈ {10^3, 10^4, 5·10^4, 10^6}, prints real bits,
ideal bits d·H(p̂), the overhead, and what each entropy model's message would take; then times
encode + decode at d = 10^6 on CPU (median of ``--repeats``) and ends with
``coding_seconds_1e6=<seconds>``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from llm_bounds.message.accounting import message_report
from llm_bounds.message.format import decode_message, encode_message
from llm_bounds.message.quantize import quantize

SIZES = (1_000, 10_000, 50_000, 1_000_000)
LEVELS = (11, 17)


def _row(d: int, L: int, method: str, seed: int) -> dict:
    """Report for one Gaussian z of size d quantized to L levels (all sizes in bits)."""
    z = np.random.default_rng(seed).standard_normal(d).astype(np.float32)
    q = quantize(z, L, method=method, seed=seed)
    data = encode_message(q)
    if decode_message(data).values().tobytes() != q.values().tobytes():
        raise RuntimeError(f"round trip failed at d={d}, L={L}")
    return message_report(q, data)


def time_coding(d: int, L: int, method: str, seed: int, repeats: int) -> float:
    """Median wall seconds of encode_message + decode_message for a Gaussian z of size d."""
    z = np.random.default_rng(seed).standard_normal(d).astype(np.float32)
    q = quantize(z, L, method=method, seed=seed)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        back = decode_message(encode_message(q))
        times.append(time.perf_counter() - t0)
        assert back.values().tobytes() == q.values().tobytes()
    return float(np.median(times))


def main(argv=None) -> int:
    """Print the size table and the timing line; returns 0."""
    ap = argparse.ArgumentParser(prog="benchmark.py coding", description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=("uniform", "kmeans"), default="uniform")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    print(f"Gaussian z, {args.method} codebook, seed {args.seed}; all sizes in bits")
    head = f"{'d':>9} {'L':>3} {'real':>9} {'ideal':>11} {'overhead':>9} {'bound':>7} {'static':>9} {'kt':>9} {'param':>9}  chosen"
    print(head)
    for d in SIZES:
        for L in LEVELS:
            r = _row(d, L, args.method, args.seed)
            c = r["candidate_bits"]
            param = min(c["gaussian"], c["laplace"])
            print(f"{d:>9} {L:>3} {r['real_bits']:>9} {r['ideal_bits']:>11.1f} {r['overhead_bits']:>9.1f} "
                  f"{r['overhead_bound_bits']:>7.0f} {c['static']:>9} {c['kt']:>9} {param:>9}  {r['model']}")
    print("(real = the chosen, trimmed message; static/kt/param = each model's untrimmed message; "
          "param = the better of gaussian/laplace; overhead = real - ideal)")
    seconds = time_coding(1_000_000, 17, args.method, args.seed, args.repeats)
    print(f"encode+decode, d=10^6, L=17, median of {args.repeats}: {seconds:.3f} s")
    print(f"coding_seconds_1e6={seconds:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
