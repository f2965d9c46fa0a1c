"""Compare bounds across model sizes: the same data, budget and seeds for every model.

``python scripts/compare.py --models A,B,C --preset smoke --out C`` runs :func:`llm_bounds.certificate.run.run`
once per model into ``C/<model>/`` (each a full, verifiable certificate) and writes
``C/comparison.md``, ``C/comparison.csv`` and (drawn by ``llm_bounds_cli.compare``) ``C/comparison.png``.

Without a :class:`Budget` every model trains the preset's number of steps. With one, each model's
steps are set so that every model gets the same training compute: the same steps, the same tokens,
or the same FLOPs (the compute-optimal framing of Finzi et al., ICLR 2025).
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.plan import prepare, settings_check
from llm_bounds.certificate.run import run
from llm_bounds.certificate.stages import RunFolder, check_destination
from llm_bounds.core.files import write_atomic
from llm_bounds.core.errors import require, require_one_of
from llm_bounds.data.corpus import load_documents
from llm_bounds.data.tokenizers import get_tokenizer
from llm_bounds.subspace.registry import count_parameters

BUDGET_KINDS = ("steps", "tokens", "flops")
FLOPS_PER_PARAM_TOKEN = 6  # forward 2N + backward 4N per token (Kaplan et al. 2020)


@dataclass(frozen=True)
class Budget:
    """Training compute given to every model: ``kind`` steps | tokens | flops, and its ``value``.

    A step trains on ``batch_size × window`` tokens; its FLOPs are counted as
    6 × N × tokens with N the base model's total parameters (forward and backward, the usual
    approximation; a frozen base needs no weight gradients, so this overstates SubLoRA's cost by a
    factor that is the same for every size). The budget covers the training steps and the preset's
    QAT steps together: ``max_steps`` = budget steps − ``qat_steps``.
    """

    kind: str
    value: float

    def __post_init__(self):
        require_one_of(self.kind, BUDGET_KINDS, "budget")
        require(math.isfinite(self.value) and self.value > 0, f"the budget must be finite and positive, got {self.value!r}")

    @classmethod
    def parse(cls, kind: str, value: str) -> "Budget":
        """The budget of a command line's ``--budget KIND VALUE`` (the kind is checked first)."""
        require_one_of(kind, BUDGET_KINDS, "budget")
        try:
            amount = float(value)
        except ValueError:
            amount = math.nan
        require(math.isfinite(amount) and amount > 0,
                f"--budget {kind} needs a finite positive number, got {value!r}; e.g. --budget {kind} 1e6")
        return cls(kind, amount)

    def total_steps(self, cfg: RunConfig, params: int) -> int:
        """Training plus QAT steps that fit the budget for a model of ``params`` parameters."""
        tokens_per_step = cfg.batch_size * cfg.window
        per_step = {"steps": 1.0, "tokens": float(tokens_per_step),
                    "flops": float(FLOPS_PER_PARAM_TOKEN * params * tokens_per_step)}[self.kind]
        return int(self.value // per_step)

    def describe(self) -> str:
        return f"{self.value:.4g} training {self.kind} per model"


def base_parameters(cfg: RunConfig) -> int:
    """Total parameters of the base model of ``cfg`` (before adapters), without loading its weights."""
    vocab = get_tokenizer(cfg.tokenizer, cfg.tokenizer_dir).vocab_size
    return count_parameters(cfg.model, vocab, cfg.init)


def apply_budget(cfg: RunConfig, budget: Budget, params: int) -> RunConfig:
    """``cfg`` with ``max_steps`` set so that training + QAT fits ``budget``; refuses a budget that
    does not reach one training step."""
    steps = budget.total_steps(cfg, params) - cfg.qat_steps
    require(steps >= 1, f"the budget of {budget.describe()} leaves {cfg.model} no training step after its "
                        f"{cfg.qat_steps} QAT steps; give a larger --budget value")
    cfg = replace(cfg, max_steps=int(steps))
    cfg.validate()
    return cfg

CERTIFIED = ("model", "params_total", "vocab_size", "intrinsic_dim", "message_bits", "bound_bits_per_byte",
             "empirical_bits_per_byte", "subsample_term_bits_per_byte", "complexity_term_bits_per_byte",
             "heldout_bits_per_byte", "zero_shot_heldout_bits_per_byte", "top1_error_bound", "bound_bpd")
BASELINES = {"gzip_bits_per_byte": "gzip -9", "bzip2_bits_per_byte": "bzip2 -9", "xz_bits_per_byte": "xz -9e"}
TRAINING = ("train_steps", "train_tokens", "train_flops", "seconds")
COLUMNS = CERTIFIED + ("bytes_per_token",) + tuple(BASELINES) + TRAINING


def training_compute(cfg: RunConfig, params: int) -> dict:
    """Steps (training + QAT), tokens and FLOPs (6·N·tokens) a run of ``cfg`` trains on."""
    steps = cfg.max_steps + cfg.qat_steps
    tokens = steps * cfg.batch_size * cfg.window
    return {"train_steps": steps, "train_tokens": tokens, "train_flops": float(FLOPS_PER_PARAM_TOKEN * params * tokens)}


def row_from_certificate(cert: dict) -> dict:
    """One row, in bits per byte (comparable across tokenizers): the certified figures and their
    decomposition, the held-out loss after training and, for pretrained weights, before it
    (zero-shot), then the classical compressors on the same bytes (informational)."""
    per_byte = cert["m"] / cert["m_bytes"]
    info = cert.get("informational") or {}
    row = {c: cert.get(c) for c in CERTIFIED}
    row["subsample_term_bits_per_byte"] = cert["subsample_term_bpd"] * per_byte
    row["complexity_term_bits_per_byte"] = cert["complexity_term_bpd"] * per_byte
    row["zero_shot_heldout_bits_per_byte"] = (info.get("zero_shot") or {}).get("heldout_bits_per_byte")
    row["bytes_per_token"] = 1.0 / per_byte
    baselines = cert.get("baseline_bits_per_byte") or {}
    row.update({column: baselines.get(name) for column, name in BASELINES.items()})
    row["seconds"] = info.get("seconds")
    return row


def markdown_table(rows: list[dict]) -> str:
    def fmt(v):
        return "—" if v is None else (f"{v:.3g}" if abs(v) >= 1e6 else f"{v:.4f}") if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def compare_models(models: list[str], out: Path, preset: str | None, progress: bool = True, plot=None,
                   budget: Budget | None = None, **overrides) -> list[dict]:
    """Run every model with the same settings: the same ``preset`` (an equal recipe), or without one
    each model's own recipe (:mod:`llm_bounds.certificate.recipe`, whose budgets are equal compute),
    and with ``budget`` the same training compute; write the table and CSV (and
    ``plot(rows, path, title)`` to ``comparison.png``, given by the command line: the library draws
    nothing); return the rows."""
    require(len(models) >= 1, "give at least one model to --models")
    repeated = sorted({m for m in models if models.count(m) > 1})
    require(not repeated, f"--models lists {', '.join(repeated)} more than once; list each model once")
    out = check_destination(out)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    early = [settings_check({**overrides, "model": name}, preset) for name in models]  # every model, before any trains
    load_documents(early[0].dataset, separator=early[0].separator)  # bad data fails before any folder exists
    existed = out.exists()
    rows = []
    try:
        for name in models:
            started = time.perf_counter()
            folder = RunFolder(out / name.replace("/", "_"))
            prepared = prepare({**overrides, "model": name}, preset, progress=progress, folder=folder)
            params = int(sum(p.numel() for p in prepared.base.parameters()))
            if budget is not None:
                prepared.cfg = apply_budget(prepared.cfg, budget, params)
            cfg = prepared.cfg
            if progress:
                print(f"=== {name}: recipe {cfg.preset}, {cfg.max_steps} training steps ===", flush=True)
            cert = run(cfg, folder.out, progress=progress, prepared=prepared, started=started)
            rows.append(row_from_certificate(cert) | training_compute(cfg, params))
    except BaseException:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a sweep that failed before its first run wrote anything leaves no empty folder
        raise
    rows.sort(key=lambda r: r["params_total"])
    how = f"the {preset} preset for every model" if preset else "each model's own recipe"
    heading = (f"Budget: {budget.describe()} ({how})." if budget is not None
               else f"Budget: the training steps of {how}.")
    write_atomic(out / "comparison.md", heading + "\n\n" + markdown_table(rows))
    write_atomic(out / "comparison.csv", csv_text(rows))
    if plot is not None:
        plot(rows, out / "comparison.png", heading)
    return rows
