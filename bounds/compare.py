"""Compare bounds across model sizes: the same data, budget and seeds for every model.

``python scripts/compare.py --models A,B,C --preset smoke --out C`` runs :func:`bounds.pipeline.run`
once per model into ``C/<model>/`` (each a full, verifiable certificate) and writes
``C/comparison.md``, ``C/comparison.csv`` and ``C/comparison.png``.
"""
from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from .cli import OneLineParser
from .errors import BoundInputError, require

COLUMNS = ("model", "params_total", "intrinsic_dim", "message_bits", "empirical_bpd", "complexity_term_bpd",
           "subsample_term_bpd", "bound_bpd", "bound_bits_per_byte", "heldout_bpd", "top1_error_bound")


def row_from_certificate(cert: dict) -> dict:
    return {c: cert[c] for c in COLUMNS}


def markdown_table(rows: list[dict]) -> str:
    def fmt(v):
        return f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def plot_png(rows: list[dict], path: Path, random_guess: float) -> None:
    """Bound, empirical loss and complexity term (bits per token) against total parameters."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = [r["params_total"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    ax.plot(params, [r["bound_bpd"] for r in rows], "o-", label="certified bound")
    ax.plot(params, [r["empirical_bpd"] for r in rows], "s-", label="empirical (quantized)")
    ax.plot(params, [r["complexity_term_bpd"] for r in rows], "^-", label="complexity term")
    ax.plot(params, [r["subsample_term_bpd"] for r in rows], "v:", label="subsample term")
    ax.axhline(random_guess, color="grey", ls="--", label="random guess log2 V")
    for p, r in zip(params, rows):
        ax.annotate(r["model"], (p, r["bound_bpd"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("parameters (total)")
    ax.set_ylabel("bits per token")
    ax.set_title("Token-level bounds across model sizes")
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name("." + path.name + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def compare_models(models: list[str], out: Path, preset: str, progress: bool = True, **overrides) -> list[dict]:
    """Run every model with the same settings; write the table, CSV and plot; return the rows."""
    from .pipeline import run, write_atomic
    from .run_config import preset_config

    require(len(models) >= 1, "give at least one model to --models")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, random_guess = [], None
    for name in models:
        cfg = preset_config(preset, model=name, **overrides)
        if progress:
            print(f"=== {name} ===", flush=True)
        cert = run(cfg, out / name.replace("/", "_"), progress=progress)
        rows.append(row_from_certificate(cert))
        random_guess = cert["random_guess_bpd"]
    rows.sort(key=lambda r: r["params_total"])
    write_atomic(out / "comparison.md", markdown_table(rows))
    write_atomic(out / "comparison.csv", csv_text(rows))
    plot_png(rows, out / "comparison.png", random_guess)
    return rows


def main(argv=None) -> int:
    from subspace.registry import LADDER

    p = OneLineParser(prog="compare.py", description=__doc__.split("\n")[0])
    p.add_argument("--models", default=",".join(LADDER), help="comma list, smallest first (default: the CPU ladder)")
    p.add_argument("--preset", default="default")
    p.add_argument("--out", type=Path, default=Path("runs/compare"))
    p.add_argument("--seed", type=int)
    p.add_argument("--intrinsic-dim", dest="intrinsic_dim", type=int)
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.add_argument("--n-samples", dest="n_samples", type=int)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        rows = compare_models([m for m in args.models.split(",") if m], args.out, args.preset,
                              progress=not args.quiet, seed=args.seed, intrinsic_dim=args.intrinsic_dim,
                              max_steps=args.max_steps, n_samples=args.n_samples)
    except BoundInputError as e:
        print(f"compare.py: error: {e}", file=sys.stderr)
        return 2
    print(markdown_table(rows))
    print(f"wrote {args.out}/comparison.md, comparison.csv, comparison.png")
    return 0

