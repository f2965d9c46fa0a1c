"""The plot of ``curve.csv`` (``bound.py --track K``): the certified bound along training."""
from __future__ import annotations

import csv
from pathlib import Path

from llm_bounds.core.files import write_atomic

INTEGER_COLUMNS = ("step", "training_tokens", "levels", "message_bits", "reported")


def read_curve(path: Path) -> list[dict]:
    """The rows of a ``curve.csv`` (:data:`llm_bounds.certificate.tracking.CURVE_COLUMNS`), numbers parsed."""
    with open(path, newline="") as f:
        return [{k: (int(v) if k in INTEGER_COLUMNS else float(v)) for k, v in row.items()} for row in csv.DictReader(f)]


def _panel(ax, rows: list[dict], complexity: bool) -> None:
    x = [r["training_tokens"] for r in rows]
    ax.plot(x, [r["bound_bits_per_byte"] for r in rows], "o-", label="certified bound")
    ax.plot(x, [r["quantized_empirical_bits_per_byte"] for r in rows], "s-", label="empirical (quantized)")
    if complexity:
        ax.plot(x, [r["complexity_term_bits_per_byte"] for r in rows], "^-", label="complexity term")
    for r in rows:
        if r["reported"]:
            ax.plot([r["training_tokens"]], [r["bound_bits_per_byte"]], "o", ms=14, mfc="none", mec="tab:red",
                    label=f"reported (step {r['step']:,})")
    ax.set_xlabel("training tokens")
    ax.xaxis.set_major_formatter(lambda v, _: f"{v / 1e6:g}M" if v >= 1e6 else f"{v:,.0f}")


def plot_curve(csv_path: Path, png_path: Path, title: str = "") -> None:
    """Bound, quantized empirical loss and complexity term (bits per byte) against training tokens, one
    point per certified checkpoint, the reported one circled; beside it the trained checkpoints alone
    (step 0 is often far above them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_curve(csv_path)
    zoom = len(rows) >= 3
    fig, axes = plt.subplots(1, 2 if zoom else 1, figsize=(10.4 if zoom else 6.4, 4.4), dpi=120, squeeze=False)
    _panel(axes[0][0], rows, complexity=True)
    axes[0][0].set_ylabel("bits per byte")
    axes[0][0].set_title("every checkpoint", fontsize=9)
    axes[0][0].legend(fontsize=7)
    if zoom:
        _panel(axes[0][1], rows[1:], complexity=False)
        axes[0][1].set_title("after step 0: bound and empirical", fontsize=9)
    fig.suptitle("The certified bound through training" + (f": {title}" if title else ""), fontsize=10)
    fig.tight_layout()
    write_atomic(png_path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
