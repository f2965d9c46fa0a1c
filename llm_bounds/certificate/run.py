"""The end-to-end run: train → quantize (+QAT) → code → decode → evaluate → bound → certificate.

Read top to bottom:

1. :func:`prepare` loads the data and builds the (untrained) SubLoRA model from the config.
2. :func:`train_stage` trains z (resumable; cached in ``OUT/stages``).
3. :func:`select_message` quantizes z at every level count of the grid, codes each, decodes it
   back, checks the round trip bit for bit, evaluates the decoded model on the sample and keeps
   the level count with the lowest token-level bound. The grid is charged (log2|grid| bits, and
   the subsample δ is split over it).
4. :func:`certify` computes every certified number from the message bytes alone: it decodes
   them, loads the decoded z into the model, re-draws the sample from the seed, evaluates and
   applies the bounds. The verifier (:mod:`llm_bounds.certificate.verify`) calls the same function.
5. :func:`run` writes ``message.bin``, ``certificate.json`` and ``summary.md`` atomically.

Units: bits per token (``bpd``), bits per byte, error rates in [0, 1].
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from llm_bounds.core import distributed
from llm_bounds.message.complexity import message_complexity
from llm_bounds.data.corpus import build_corpus, load_documents
from llm_bounds.core.errors import BoundInputError, require
from llm_bounds.evaluation.evaluate import EvalResult, evaluate_units, sample_units
from llm_bounds.bound.generalization import bound_over_alpha_grid, generalization_bound
from llm_bounds.message.format import decode_message, encode_message, message_report
from llm_bounds.message.quantize import quantize
from llm_bounds.certificate.config import RunConfig
from llm_bounds.data.scoring import ScoringGrid, make_units
from llm_bounds.bound.smoothing import random_guess_bits
from llm_bounds.data.tokenizers import get_tokenizer
from llm_bounds.subspace.train import TrainConfig, next_token_loss, resolve_device, sample_batch, train_sublora
from llm_bounds.subspace.sublora import build_sublora
from llm_bounds.subspace.sublora import SubLoRAConfig
from llm_bounds.subspace.registry import weights_source
from llm_bounds.message.qat import qat_finetune
from llm_bounds.certificate.summary import render_summary

CERTIFICATE_VERSION = 1
TOPK_REPORTED = (1, 10, 100)


# ---- small file helpers -------------------------------------------------------------------------

def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``: never a half-written file.

    Under ``torchrun`` only rank 0 writes (every rank holds the same data).
    """
    if not distributed.is_main():
        return
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, flush=True)


# ---- 1. data and model ------------------------------------------------------------------------

def sublora_config(cfg: RunConfig, vocab_size: int):

    return SubLoRAConfig(model=cfg.model, vocab_size=int(vocab_size), init=cfg.init, seed=cfg.seed_for("init"),
                         n_positions=None, lora_rank=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                         target_modules=tuple(cfg.target_modules), intrinsic_dim=cfg.intrinsic_dim,
                         projector=cfg.projector, projection_seed=cfg.seed_for("projection"),
                         lora_seed=cfg.seed_for("lora"), subspace_params=cfg.subspace_params,
                         update_scales=cfg.update_scales)


def prepare(cfg: RunConfig):
    """(tokenizer, corpus, model): the data and the SubLoRA model with z = 0, in eval mode."""

    cfg.validate()
    tokenizer = get_tokenizer(cfg.tokenizer, cfg.tokenizer_dir)
    documents = load_documents(cfg.dataset)
    corpus = build_corpus(documents, tokenizer, heldout_fraction=cfg.heldout_fraction,
                          seed=cfg.seed_for("heldout"), cache_dir=None)
    model = build_sublora(sublora_config(cfg, tokenizer.vocab_size))
    return tokenizer, corpus, model


# ---- 2. training ------------------------------------------------------------------------------

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
    write_atomic(z_path, _npy_bytes(np.save, z))
    write_atomic(summary_path, json.dumps(summary, indent=1, default=str))
    return z, summary


# ---- units, sampling, evaluation --------------------------------------------------------------

def data_units(cfg: RunConfig, corpus):
    """Token-level units, document-level units (training stream) and held-out token-level units."""
    grid = ScoringGrid(cfg.window, cfg.stride)
    token = make_units("token", grid, corpus.num_train_tokens)
    document = make_units("document", grid, corpus.num_train_tokens, corpus.train_doc_offsets)
    heldout = make_units("token", grid, corpus.num_heldout_tokens)
    return token, document, heldout


def scored_bytes(units, tokens: np.ndarray, token_nbytes: np.ndarray) -> int:
    """UTF-8 bytes of all targets the units score (the per-byte conversion of the full risk)."""
    nb = np.asarray(token_nbytes, dtype=np.int64)[np.asarray(tokens, dtype=np.int64)]
    csum = np.concatenate([[0], np.cumsum(nb)])
    return int((csum[units.score_end] - csum[units.score_start]).sum())


def evaluate(cfg: RunConfig, model, tokens, units, unit_ids, tokenizer, progress=True) -> EvalResult:
    """Evaluate the sampled units (bf16 autocast on GPU); under ``torchrun`` each rank scores a
    contiguous shard and the per-unit results are gathered back in sample order."""
    device = resolve_device(cfg.device)
    model.to(device).eval()
    start, end = distributed.shard_bounds(len(unit_ids))
    require(end > start, f"n = {len(unit_ids)} units cannot be split over {distributed.world_size()} ranks; "
                         "sample more units or use fewer processes")
    part = evaluate_units(model, tokens, units, unit_ids[start:end], alphas=cfg.alphas,
                          batch_size=cfg.eval_batch_size, device=device,
                          autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
                          token_nbytes=tokenizer.token_nbytes, vocab_size=tokenizer.vocab_size,
                          progress=progress and distributed.is_main())
    if distributed.world_size() == 1:
        return part
    return merge_evaluations(distributed.gather_objects(part))


def merge_evaluations(parts: list[EvalResult]) -> EvalResult:
    """One :class:`EvalResult` from shards of consecutive units (per-unit arrays joined in order)."""
    first = parts[0]
    joined = {k: (None if getattr(first, k) is None else np.concatenate([getattr(p, k) for p in parts], axis=-1))
              for k in _EVAL_ARRAYS if k not in ("alphas", "ks")}
    return EvalResult(level=first.level, vocab_size=first.vocab_size, alphas=first.alphas, ks=first.ks,
                      tokens_forwarded=sum(p.tokens_forwarded for p in parts),
                      seconds=max(p.seconds for p in parts), **joined)


# ---- bounds from an evaluation ----------------------------------------------------------------

def _unit_stats(res: EvalResult):
    """Per α: mean, unbiased variance and centred second moment (bits², per token) of the unit means."""
    per_token_sq = res.smoothed_sq_dev_sum / res.num_tokens[None, :]
    alphas = [float(a) for a in res.alphas]
    return ({a: float(res.smoothed_bits[i].mean()) for i, a in enumerate(alphas)},
            {a: float(res.smoothed_bits[i].var(ddof=1)) for i, a in enumerate(alphas)},
            {a: float(per_token_sq[i].mean()) for i, a in enumerate(alphas)},
            {a: float(per_token_sq[i].var(ddof=1)) for i, a in enumerate(alphas)})


def bounds_for(cfg: RunConfig, res: EvalResult, *, level: str, m: int, complexity_bits: float, vocab_size: int,
               method: str = "best") -> dict:
    """The nll bound (best over the α grid) and the top-k error bounds for one evaluation.

    The level grid was searched on this same sample, so every subsample term is also split over it
    (``subsample_union``); its log2|grid| bits are already inside ``complexity_bits``.
    """
    emp, var, sq, sq_var = _unit_stats(res)
    union = len(cfg.levels)
    common = dict(level=level, complexity_bits=complexity_bits, m=m, n=res.n, delta=cfg.delta, method=method,
                  subsample_union=union)
    chosen, per_alpha = bound_over_alpha_grid(empirical_by_alpha=emp, variance_by_alpha=var,
                                              centred_sq_by_alpha=sq if level == "token" else None,
                                              centred_sq_variance_by_alpha=sq_var if level == "token" else None,
                                              vocab_size=vocab_size, **common)
    out = {"nll": chosen.to_dict(), "nll_per_alpha": [{"alpha": r.alpha, "bound": r.bound, "empirical": r.empirical}
                                                     for r in per_alpha]}
    for k in TOPK_REPORTED:
        idx = int(np.nonzero(res.ks == k)[0][0])
        errs = res.topk_error[idx]
        out[f"top{k}"] = generalization_bound(metric="error", empirical=float(errs.mean()),
                                              subsample_variance=float(errs.var(ddof=1)), **common).to_dict()
    return out


# ---- 3. choosing the number of levels ---------------------------------------------------------

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


def decode_into(model, message: bytes):
    """Decode ``message`` and load ẑ into ``model`` exactly; returns the decoded quantization."""
    q = decode_message(message)
    z_hat = q.values()
    model.set_z(torch.from_numpy(np.ascontiguousarray(z_hat)))
    loaded = model.z.detach().cpu().numpy()
    require(loaded.tobytes() == z_hat.tobytes(), "internal error: the model's z differs from the decoded message")
    model.eval()
    return q


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
            _log(progress, f"[select] evaluating the decoded model with L = {L} levels on {len(ids)} units")
            res = evaluate(cfg, model, corpus.train_tokens, token_units, ids, tokenizer, progress)
            save_eval(eval_path, res)
        K = complexity_for(cfg, message).total_bits
        b = bounds_for(cfg, res, level="token", m=token_units.m, complexity_bits=K, vocab_size=tokenizer.vocab_size)
        results.append({"levels": L, "message_bytes": len(message), "bound_bpd": b["nll"]["bound"],
                        "empirical_bpd": b["nll"]["empirical"], "message": message})
        _log(progress, f"[select] L = {L}: {8 * len(message)} message bits, bound {b['nll']['bound']:.4f} bits/token")
    best = min(results, key=lambda r: r["bound_bpd"])
    return best["message"], [{k: v for k, v in r.items() if k != "message"} for r in results]


def complexity_for(cfg: RunConfig, message: bytes):
    """K for the message: its bytes, the Elias-delta length prefix, and the level grid."""
    return message_complexity(len(message), {"levels": len(cfg.levels)})


# ---- 4. certification (shared with the verifier) ----------------------------------------------

def certify(cfg: RunConfig, message: bytes, model, tokenizer, corpus, progress: bool = True,
            cache: Path | None = None) -> dict:
    """Every certified number, from the message bytes, the config and the data alone.

    ``cache`` (the run's stage folder) holds evaluations of this message's model from an earlier,
    interrupted run (``eval_<name>_<sha>.npz``); the verifier passes none and evaluates everything.
    """
    evaluations = {}
    tag = sha256_hex(message)[:16]
    if cache is not None:
        for name in ("token", "document", "heldout"):
            f = cache / f"eval_{name}_{tag}.npz"
            if f.is_file():
                evaluations[name] = load_eval(f)
    q = decode_into(model, message)
    token_units, doc_units, heldout_units = data_units(cfg, corpus)
    V = tokenizer.vocab_size
    K = complexity_for(cfg, message)

    def get(name, tokens, units, n, seed_name):
        if name not in evaluations:
            ids = sample_units(units.num_units, n, cfg.seed_for(seed_name))
            _log(progress, f"[certify] evaluating {name} units: n = {n}")
            evaluations[name] = evaluate(cfg, model, tokens, units, ids, tokenizer, progress)
            if cache is not None:
                save_eval(cache / f"eval_{name}_{tag}.npz", evaluations[name])
        return evaluations[name]

    tok_res = get("token", corpus.train_tokens, token_units, cfg.n_samples, "sample")
    token_bounds = bounds_for(cfg, tok_res, level="token", m=token_units.m, complexity_bits=K.total_bits, vocab_size=V)
    token_hoeffding = bounds_for(cfg, tok_res, level="token", m=token_units.m, complexity_bits=K.total_bits,
                                 vocab_size=V, method="hoeffding")
    doc_bounds = None
    if cfg.n_documents > 0:
        doc_res = get("document", corpus.train_tokens, doc_units, cfg.n_documents, "sample-documents")
        doc_bounds = bounds_for(cfg, doc_res, level="document", m=doc_units.m, complexity_bits=K.total_bits,
                                vocab_size=V)
    held = get("heldout", corpus.heldout_tokens, heldout_units, cfg.heldout_samples, "sample-heldout")

    train_bytes = scored_bytes(token_units, corpus.train_tokens, tokenizer.token_nbytes)
    per_byte = token_units.m / train_bytes
    nll = token_bounds["nll"]
    cert = {
        "certificate_version": CERTIFICATE_VERSION,
        "level": "token",
        "model": cfg.model,
        "init": cfg.init,
        "tokenizer": tokenizer.name,
        "dataset": cfg.dataset,
        "bound_bpd": nll["bound"],
        "empirical_bpd": nll["empirical"],
        "random_guess_bpd": random_guess_bits(V),
        "bound_bits_per_byte": nll["bound"] * per_byte,
        "empirical_bits_per_byte": nll["empirical"] * per_byte,
        "random_guess_bits_per_byte": random_guess_bits(V) * per_byte,
        "subsample_term_bpd": nll["subsample_term"],
        "complexity_term_bpd": nll["complexity_term"],
        "bound_bpd_hoeffding": token_hoeffding["nll"]["bound"],
        "heldout_bpd": held.bits_per_token,
        "heldout_bits_per_byte": held.bits_per_byte,
        "alpha": nll["alpha"],
        "method": nll["method"],
        "complexity_method": nll["complexity_method"],
        "message_bits": K.message_bits,
        "complexity_bits": K.total_bits,
        "length_prefix_bits": K.length_prefix_bits,
        "hyperparameter_bits": K.hyperparameter_bits + nll["grid_bits"],
        "m": token_units.m,
        "m_bytes": train_bytes,
        "n": cfg.n_samples,
        "delta": cfg.delta,
        "vocab_size": V,
        "intrinsic_dim": int(model.d),
        "subspace_params": cfg.subspace_params,
        "update_scales": cfg.update_scales,
        "subspace_D": int(model.D),
        "params_total": int(sum(p.numel() for p in model.lm.parameters())),
        "levels": int(q.levels),
        "seed": cfg.seed,
        "message_sha256": sha256_hex(message),
        "message_bytes": len(message),
        "data_content_hash": corpus.content_hash,
        "tokenizer_fingerprint": corpus.tokenizer_fingerprint,
        "z_hat_sha256": sha256_hex(q.values().tobytes()),
    }
    for k in TOPK_REPORTED:
        cert[f"top{k}_error_bound"] = token_bounds[f"top{k}"]["bound"]
        cert[f"top{k}_error_empirical"] = token_bounds[f"top{k}"]["empirical"]
    if doc_bounds is not None:
        cert["doc_m"] = doc_units.m
        cert["doc_n"] = cfg.n_documents
        cert["doc_bound_bpd"] = doc_bounds["nll"]["bound"]
        cert["doc_empirical_bpd"] = doc_bounds["nll"]["empirical"]
        for k in TOPK_REPORTED:
            cert[f"doc_top{k}_error_bound"] = doc_bounds[f"top{k}"]["bound"]
            cert[f"doc_top{k}_error_empirical"] = doc_bounds[f"top{k}"]["empirical"]
    cert["terms"] = {"token": token_bounds, "token_hoeffding": token_hoeffding, "document": doc_bounds,
                     "complexity": K.to_dict()}
    cert["decomposition"] = decomposition(cert)
    cert["message_report"] = {k: v for k, v in message_report(q, message).items()
                              if k != "complexity"}
    cert["data"] = corpus.summary()
    cert["weights"] = weights_info(cfg, model)
    cert["config"] = cfg.to_dict()
    cert["sublora_config"] = model.config.to_dict()
    return cert


def weights_info(cfg: RunConfig, model) -> dict:
    """Where the base weights come from (with their hash and the stated assumption if pretrained)."""

    info = weights_source(cfg.model, cfg.init, model.lm if cfg.init == "pretrained" else None,
                          seed=cfg.seed_for("init"))
    if cfg.init == "pretrained":
        info["assumption"] = ("the pretrained weights were not fitted to this dataset's training split; "
                              "otherwise the bound is not valid")
    return info


# ---- cached evaluations -----------------------------------------------------------------------

_EVAL_ARRAYS = ("alphas", "ks", "unit_ids", "num_tokens", "num_bytes", "smoothed_bits", "unsmoothed_bits",
                "topk_error", "smoothed_bits_sum", "unsmoothed_bits_sum", "expected_smoothed_bits_sum",
                "smoothed_sq_dev_sum")


def _npy_bytes(save, *args, **kwargs) -> bytes:
    """What ``np.save``/``np.savez`` would write, as bytes (so that :func:`write_atomic` writes it)."""
    buf = io.BytesIO()
    save(buf, *args, **kwargs)
    return buf.getvalue()


def save_eval(path: Path, res: EvalResult) -> None:
    """Cache an evaluation, atomically (rank 0 only, through :func:`write_atomic`)."""
    write_atomic(path, _npy_bytes(np.savez, level=np.array(res.level), vocab_size=np.array(res.vocab_size),
                                  **{k: getattr(res, k) for k in _EVAL_ARRAYS if getattr(res, k) is not None}))


def load_eval(path: Path) -> EvalResult:
    with np.load(path) as f:
        arrays = {k: (f[k] if k in f.files else None) for k in _EVAL_ARRAYS}
        return EvalResult(level=str(f["level"]), vocab_size=int(f["vocab_size"]), **arrays)


# ---- 5. the whole run -------------------------------------------------------------------------

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
        _log(progress, "[decompose] evaluating the unquantized z on the same sample")
        res = evaluate(cfg, model, corpus.train_tokens, token_units, ids, tokenizer, progress)
        save_eval(path, res)
    return _unit_stats(res)[0]


def decomposition(cert: dict) -> list[dict]:
    """Quantized empirical → + subsample term → + complexity term = bound (token-level nll).

    The unquantized (fp32) empirical loss that precedes these rows is not certified (the message
    does not contain it); :func:`run` reports it under ``informational``.
    """
    nll = cert["terms"]["token"]["nll"]
    per_byte = cert["m"] / cert["m_bytes"]
    rows = [("quantized empirical", nll["empirical"]),
            ("+ subsample term", nll["full_empirical_ucb"]),
            ("+ complexity term = bound", nll["bound"])]
    return [{"stage": s, "bpd": v, "bits_per_byte": v * per_byte} for s, v in rows]


def run(cfg: RunConfig, out: Path, progress: bool = True) -> dict:
    """Run every stage, write ``message.bin``, ``certificate.json`` and ``summary.md``; return the certificate."""

    t0 = time.perf_counter()
    cfg.validate()
    out = Path(out)
    stages = _check_out_dir(out, cfg)
    _log(progress, f"[data] {cfg.dataset} with the {cfg.tokenizer} tokenizer")
    tokenizer, corpus, model = prepare(cfg)
    _log(progress, f"[model] {cfg.model} ({cfg.init}): D = {model.D} weights in the subspace "
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
    write_atomic(out / "certificate.json", json.dumps(cert, indent=1, default=_json_default))
    write_atomic(out / "summary.md", render_summary(cert))
    return cert


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")

