"""``scripts/compare.py``: the size sweep of :mod:`llm_bounds.certificate.sweep`, and its plot."""
from __future__ import annotations

import sys
from pathlib import Path

from llm_bounds.certificate.sweep import BASELINES, Budget, compare_models, markdown_table
from llm_bounds.core.errors import BoundInputError, RunError
from llm_bounds.core.files import write_atomic
from llm_bounds.subspace.registry import LADDER
from llm_bounds_cli.interrupt import interruptible
from llm_bounds_cli.parsing import OneLineParser, count_or_all


def plot_png(rows: list[dict], path: Path, title: str = "") -> None:
    """Bound, empirical loss, complexity term and held-out losses (bits per byte, comparable across
    tokenizers) against total parameters, with the classical compressors on the same bytes."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = [r["params_total"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.plot(params, [r["bound_bits_per_byte"] for r in rows], "o-", label="certified bound")
    ax.plot(params, [r["empirical_bits_per_byte"] for r in rows], "s-", label="empirical (quantized)")
    ax.plot(params, [r["complexity_term_bits_per_byte"] for r in rows], "^-", label="complexity term")
    ax.plot(params, [r["subsample_term_bits_per_byte"] for r in rows], "v:", label="subsample term")
    ax.plot(params, [r["heldout_bits_per_byte"] for r in rows], "d--", label="held-out (trained; not a bound)")
    if all(r.get("zero_shot_heldout_bits_per_byte") is not None for r in rows):
        ax.plot(params, [r["zero_shot_heldout_bits_per_byte"] for r in rows], "x--",
                label="held-out, zero-shot (not a bound)")
    # classical compressors on the same bytes (the rows share the data, so the first row's figure)
    for (column, name), style in zip(BASELINES.items(), ("-.", (0, (1, 1)), (0, (5, 2)))):
        if rows and rows[0].get(column) is not None:
            ax.axhline(rows[0][column], color="tab:brown", ls=style, lw=0.9, label=f"{name} (same bytes; not a bound)")
    for p, r in zip(params, rows):
        ax.annotate(r["model"], (p, r["bound_bits_per_byte"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("parameters (total)")
    ax.set_ylabel("bits per byte")
    ax.set_title("Bounds across model sizes" + (f"\n{title}" if title else ""), fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


@interruptible("compare.py")
def main(argv=None, prog: str = "compare.py") -> int:
    p = OneLineParser(prog=prog, description="Compare bounds across model sizes: the same data, budget and seeds for every model.")
    p.add_argument("--models", default=",".join(LADDER),
                   help="comma list (default: the CPU ladder); published checkpoints such as gpt2,gpt2-medium,gpt2-large "
                        "and local folders are pretrained unless --init scratch")
    p.add_argument("--preset", default=None,
                   help="one preset for every model (an equal recipe); default: each model's own recipe, as "
                        "bound.py chooses it (equal compute budgets)")
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--seed", type=int)
    p.add_argument("--init", help="pretrained | scratch (default: each model's own, as in bound.py)")
    p.add_argument("--dataset", help="as in bound.py (default: kjv)")
    p.add_argument("--unseen-dataset", dest="unseen_dataset",
                   help="as in bound.py: a corpus the pretrained weights never saw, certified instead of --dataset")
    p.add_argument("--intrinsic-dim", dest="intrinsic_dim", type=int)
    p.add_argument("--max-steps", dest="max_steps", type=int)
    p.add_argument("--n-samples", dest="n_samples", type=count_or_all, help="a count, or all")
    p.add_argument("--budget", nargs=2, metavar=("KIND", "VALUE"),
                   help="equal training compute for every model: steps|tokens|flops and a value, e.g. --budget flops 1e15 "
                        "(FLOPs = 6 x parameters x tokens; the budget covers training and QAT steps)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        budget = None
        if args.budget is not None:
            if args.max_steps is not None:
                raise BoundInputError("--budget sets each model's --max-steps; pass one of them")
            budget = Budget.parse(*args.budget)
        data = dict(dataset=args.dataset)
        if args.unseen_dataset is not None:
            if args.dataset is not None:
                raise BoundInputError("--unseen-dataset replaces --dataset; pass one of them")
            data = dict(dataset=args.unseen_dataset, dataset_unseen_by_weights=True)
        rows = compare_models([m for m in args.models.split(",") if m], args.out, args.preset,
                              progress=not args.quiet, plot=plot_png, budget=budget, seed=args.seed, init=args.init,
                              intrinsic_dim=args.intrinsic_dim, max_steps=args.max_steps, n_samples=args.n_samples,
                              **data)
    except BoundInputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        print(f"{prog}: failed: {e}", file=sys.stderr)
        return 1
    print(markdown_table(rows))
    print(f"wrote {args.out}/comparison.md, comparison.csv, comparison.png")
    return 0
