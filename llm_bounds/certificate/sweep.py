"""Compare bounds across model sizes: the same data, budget and seeds for every model.

``python scripts/compare.py --models A,B,C --preset smoke --out C`` runs :func:`llm_bounds.certificate.run.run`
once per model into ``C/<model>/`` (each a full, verifiable certificate) and writes
``C/comparison.md``, ``C/comparison.csv`` and (drawn by ``llm_bounds_cli.compare``) ``C/comparison.png``.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from llm_bounds.certificate.config import preset_config
from llm_bounds.certificate.run import run
from llm_bounds.core.files import write_atomic
from llm_bounds.core.errors import require
from llm_bounds.subspace.registry import check_model_name

CERTIFIED = ("model", "params_total", "intrinsic_dim", "message_bits", "empirical_bpd", "complexity_term_bpd",
             "subsample_term_bpd", "bound_bpd", "bound_bits_per_byte", "heldout_bpd", "top1_error_bound")
BASELINES = {"gzip_bits_per_byte": "gzip -9", "bzip2_bits_per_byte": "bzip2 -9", "xz_bits_per_byte": "xz -9e"}
COLUMNS = CERTIFIED + ("bytes_per_token",) + tuple(BASELINES)


def row_from_certificate(cert: dict) -> dict:
    """One row: the certified figures, then the classical compressors on the same bytes (informational)."""
    row = {c: cert[c] for c in CERTIFIED}
    row["bytes_per_token"] = cert["m_bytes"] / cert["m"]
    baselines = cert.get("baseline_bits_per_byte") or {}
    row.update({column: baselines.get(name) for column, name in BASELINES.items()})
    return row


def markdown_table(rows: list[dict]) -> str:
    def fmt(v):
        return "—" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def compare_models(models: list[str], out: Path, preset: str, progress: bool = True, plot=None,
                   **overrides) -> list[dict]:
    """Run every model with the same settings; write the table and CSV (and ``plot(rows, path,
    random_guess)`` to ``comparison.png``, given by the command line: the library draws nothing);
    return the rows."""

    require(len(models) >= 1, "give at least one model to --models")
    configs = [preset_config(preset, model=name, **overrides) for name in models]
    for cfg in configs:  # every model must be buildable before the first one trains
        check_model_name(cfg.model, cfg.init)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows, random_guess = [], None
    for name, cfg in zip(models, configs):
        if progress:
            print(f"=== {name} ===", flush=True)
        cert = run(cfg, out / name.replace("/", "_"), progress=progress)
        rows.append(row_from_certificate(cert))
        random_guess = cert["random_guess_bpd"]
    rows.sort(key=lambda r: r["params_total"])
    write_atomic(out / "comparison.md", markdown_table(rows))
    write_atomic(out / "comparison.csv", csv_text(rows))
    if plot is not None:
        plot(rows, out / "comparison.png", random_guess)
    return rows
