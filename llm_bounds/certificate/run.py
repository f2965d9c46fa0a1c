"""The end-to-end run: train → quantize (+QAT) → code → decode → evaluate → bound → certificate.

Read top to bottom:

1. :func:`llm_bounds.certificate.context.prepare` loads the data and builds the (untrained) SubLoRA model from the config.
2. :func:`train_stage` trains z (resumable; cached in ``OUT/stages``).
3. :func:`select_message` quantizes z at every level count of the grid, codes each, decodes it
   back, checks the round trip bit for bit, evaluates the decoded model on the sample and keeps
   the level count with the lowest token-level bound. The grid is charged (log2|grid| bits, and
   the subsample δ is split over it).
4. :func:`llm_bounds.certificate.certify.certify` computes every certified number from the message bytes alone: it decodes
   them, loads the decoded z into the model, re-draws the sample from the seed, evaluates and
   applies the bounds. The verifier (:mod:`llm_bounds.certificate.verify`) calls the same function.
5. :func:`run` writes ``message.bin``, ``certificate.json`` and ``summary.md`` atomically.

Units: bits per token (``bpd``), bits per byte, error rates in [0, 1].
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from llm_bounds.certificate.certify import certify
from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.context import (bounds_for, complexity_for, data_units, decode_into, evaluate,
                                            log_progress, prepare, unit_stats)
from llm_bounds.certificate.summary import render_summary
from llm_bounds.core.errors import BoundInputError
from llm_bounds.core.files import json_default, npy_bytes, sha256_hex, write_atomic
from llm_bounds.evaluation.evaluate import sample_units
from llm_bounds.evaluation.results import load_eval, save_eval
from llm_bounds.message.format import encode_message
from llm_bounds.message.qat import qat_finetune
from llm_bounds.message.quantize import quantize
from llm_bounds.subspace.train import TrainConfig, next_token_loss, resolve_device, sample_batch, train_sublora


def train_stage(cfg: RunConfig, model, corpus, stages: Path, progress: bool = True) -> tuple[np.ndarray, dict]:
    """Train z (or load it from ``stages/z.npy``); returns (z float32 [d], training summary)."""

    z_path, summary_path = stages / "z.npy", stages / "train.json"
    if z_path.is_file() and summary_path.is_file():
        return np.load(z_path), json.loads(summary_path.read_text())
    tcfg = TrainConfig(steps=cfg.max_steps, batch_size=cfg.batch_size, seq_len=cfg.window, lr=cfg.lr,
                       warmup_steps=min(cfg.warmup_steps, max(cfg.max_steps // 10, 1)),
                       seed=cfg.seed_for("train"), device=cfg.device, checkpoint_every=max(cfg.max_steps // 10, 1))
    if cfg.max_steps > 0:
        summary = train_sublora(model, corpus.train_tokens, tcfg, checkpoint_dir=stages / "train", resume=True,
                                progress=progress)
        summary = {k: v for k, v in summary.items() if k != "losses_nats"}
    else:
        summary = {"steps": 0}
    summary["config"] = tcfg.to_dict()
    model.eval()
    z = model.z.detach().cpu().numpy().astype(np.float32)
    write_atomic(z_path, npy_bytes(np.save, z))
    write_atomic(summary_path, json.dumps(summary, indent=1, default=str))
    return z, summary


def _candidate(cfg: RunConfig, z: np.ndarray, levels: int, model, corpus) -> bytes:
    """Quantize z to ``levels`` levels (with optional QAT) and code it: the message bytes."""
    q = quantize(z, levels, method=cfg.quant_method, seed=cfg.seed_for("kmeans"))
    if cfg.qat_steps > 0:
        from torch.func import functional_call


        device = resolve_device(cfg.device)
        model.to(device).train()
        tcfg = TrainConfig(batch_size=cfg.batch_size, seq_len=cfg.window, seed=cfg.seed_for("qat"))
        step = {"i": 0}

        def loss_fn(zq):
            batch = sample_batch(corpus.train_tokens, step["i"], 0, tcfg)
            step["i"] += 1
            return next_token_loss(lambda ids: functional_call(model, {"z": zq}, (ids,)), batch, device)

        q = qat_finetune(torch.from_numpy(z).to(device), q, loss_fn, steps=cfg.qat_steps, lr=cfg.qat_lr,
                         seed=cfg.seed_for("qat"))
        model.eval()
    return encode_message(q)


def select_message(cfg: RunConfig, z: np.ndarray, model, tokenizer, corpus, stages: Path,
                   progress: bool = True) -> tuple[bytes, list[dict]]:
    """Code z at each level count of the grid and keep the one with the smallest token-level bound."""
    token_units, _, _ = data_units(cfg, corpus)
    ids = sample_units(token_units.num_units, cfg.n_samples, cfg.seed_for("sample"))
    results = []
    for L in cfg.levels:
        msg_path = stages / f"message_L{L}.bin"
        if msg_path.is_file():
            message = msg_path.read_bytes()
        else:
            message = _candidate(cfg, z, L, model, corpus)
            write_atomic(msg_path, message)
        decode_into(model, message)
        eval_path = stages / f"eval_token_{sha256_hex(message)[:16]}.npz"
        if eval_path.is_file():
            res = load_eval(eval_path)
        else:
            log_progress(progress, f"[select] evaluating the decoded model with L = {L} levels on {len(ids)} units")
            res = evaluate(cfg, model, corpus.train_tokens, token_units, ids, tokenizer, progress)
            save_eval(eval_path, res)
        K = complexity_for(cfg, message).total_bits
        b = bounds_for(cfg, res, level="token", m=token_units.m, complexity_bits=K, vocab_size=tokenizer.vocab_size)
        results.append({"levels": L, "message_bytes": len(message), "bound_bpd": b["nll"]["bound"],
                        "empirical_bpd": b["nll"]["empirical"], "message": message})
        log_progress(progress, f"[select] L = {L}: {8 * len(message)} message bits, bound {b['nll']['bound']:.4f} bits/token")
    best = min(results, key=lambda r: r["bound_bpd"])
    return best["message"], [{k: v for k, v in r.items() if k != "message"} for r in results]


def _check_out_dir(out: Path, cfg: RunConfig) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stages = out / "stages"
    stages.mkdir(exist_ok=True)
    saved = stages / "config.json"
    mine = json.dumps(cfg.to_dict(), sort_keys=True)
    if saved.is_file():
        if json.dumps(json.loads(saved.read_text()), sort_keys=True) != mine:
            raise BoundInputError(f"{out} holds a run with different settings; choose a new --out or delete {out}")
    else:
        write_atomic(saved, mine)
    return stages


def fp32_empirical(cfg: RunConfig, z: np.ndarray, model, tokenizer, corpus, stages: Path, progress=True) -> dict:
    """Smoothed empirical loss of the unquantized z on the same sample (informational, not certified)."""
    path = stages / "eval_fp32.npz"
    token_units, _, _ = data_units(cfg, corpus)
    if path.is_file():
        res = load_eval(path)
    else:
        model.set_z(torch.from_numpy(z))
        ids = sample_units(token_units.num_units, cfg.n_samples, cfg.seed_for("sample"))
        log_progress(progress, "[decompose] evaluating the unquantized z on the same sample")
        res = evaluate(cfg, model, corpus.train_tokens, token_units, ids, tokenizer, progress)
        save_eval(path, res)
    return unit_stats(res)[0]


def run(cfg: RunConfig, out: Path, progress: bool = True) -> dict:
    """Run every stage, write ``message.bin``, ``certificate.json`` and ``summary.md``; return the certificate."""

    t0 = time.perf_counter()
    cfg.validate()
    out = Path(out)
    stages = _check_out_dir(out, cfg)
    log_progress(progress, f"[data] {cfg.dataset} with the {cfg.tokenizer} tokenizer")
    tokenizer, corpus, model = prepare(cfg)
    log_progress(progress, f"[model] {cfg.model} ({cfg.init}): D = {model.D} weights in the subspace "
                   f"({cfg.subspace_params}), d = {model.d}")
    z, train_summary = train_stage(cfg, model, corpus, stages, progress)
    message, candidates = select_message(cfg, z, model, tokenizer, corpus, stages, progress)
    cert = certify(cfg, message, model, tokenizer, corpus, progress, cache=stages)
    fp32 = fp32_empirical(cfg, z, model, tokenizer, corpus, stages, progress)
    decode_into(model, message)  # leave the model at the certified z
    cert["informational"] = {  # not re-derivable from the message: the verifier skips this part
        "fp32_empirical_bpd": fp32.get(float(cert["alpha"])),
        "fp32_empirical_bits_per_byte": fp32.get(float(cert["alpha"])) * cert["m"] / cert["m_bytes"],
        "level_candidates": candidates,
        "train": train_summary,
        "seconds": time.perf_counter() - t0,
    }
    write_atomic(out / "message.bin", message)
    write_atomic(out / "certificate.json", json.dumps(cert, indent=1, default=json_default))
    write_atomic(out / "summary.md", render_summary(cert))
    return cert


