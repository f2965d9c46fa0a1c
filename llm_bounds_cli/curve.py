"""The plot of ``curve.csv`` (``bound.py --track K``): the certified bound along training."""
from __future__ import annotations

import csv
from pathlib import Path

from llm_bounds.core.files import write_atomic


def read_curve(path: Path) -> list[dict]:
    """The rows of a ``curve.csv`` (:data:`llm_bounds.certificate.tracking.CURVE_COLUMNS`), numbers parsed."""
    with open(path, newline="") as f:
        return [{k: (int(v) if k in ("step", "training_tokens", "levels", "message_bits", "reported") else float(v))
                 for k, v in row.items()} for row in csv.DictReader(f)]


def plot_curve(csv_path: Path, png_path: Path, title: str = "") -> None:
    """Bound, quantized empirical loss and complexity term (bits per byte) against training tokens, one
    point per certified checkpoint, the reported one circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_curve(csv_path)
    x = [r["training_tokens"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.plot(x, [r["bound_bits_per_byte"] for r in rows], "o-", label="certified bound")
    ax.plot(x, [r["quantized_empirical_bits_per_byte"] for r in rows], "s-", label="empirical (quantized)")
    ax.plot(x, [r["complexity_term_bits_per_byte"] for r in rows], "^-", label="complexity term")
    for r in rows:
        if r["reported"]:
            ax.plot([r["training_tokens"]], [r["bound_bits_per_byte"]], "o", ms=14, mfc="none", mec="tab:red",
                    label=f"reported (step {r['step']})")
    ax.set_xlabel("training tokens")
    ax.set_ylabel("bits per byte")
    ax.set_title("The certified bound through training" + (f"\n{title}" if title else ""), fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    write_atomic(png_path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)
