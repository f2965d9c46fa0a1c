"""What every stage of a run shares: the data and model built from a config, the scoring units,
the evaluation of a sample, the bounds of an evaluation, and loading a decoded message into the model.

Units: bits per token (``bpd``), bits per byte, error rates in [0, 1].
"""
from __future__ import annotations

import numpy as np
import torch

from llm_bounds.bound.generalization import bound_over_alpha_grid, generalization_bound
from llm_bounds.certificate.config import RunConfig
from llm_bounds.core import distributed
from llm_bounds.core.errors import require
from llm_bounds.data.corpus import build_corpus, load_documents
from llm_bounds.data.scoring import ScoringGrid, make_units
from llm_bounds.data.tokenizers import get_tokenizer
from llm_bounds.evaluation.evaluate import EvalResult, evaluate_units
from llm_bounds.evaluation.results import merge_evaluations
from llm_bounds.message.complexity import message_complexity
from llm_bounds.message.format import decode_message
from llm_bounds.subspace.sublora import SubLoRAConfig, build_sublora
from llm_bounds.subspace.train import resolve_device


TOPK_REPORTED = (1, 10, 100)


def log_progress(progress: bool, msg: str) -> None:
    if progress:
        print(msg, flush=True)


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


def unit_stats(res: EvalResult):
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
    emp, var, sq, sq_var = unit_stats(res)
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


def decode_into(model, message: bytes):
    """Decode ``message`` and load ẑ into ``model`` exactly; returns the decoded quantization."""
    q = decode_message(message)
    z_hat = q.values()
    model.set_z(torch.from_numpy(np.ascontiguousarray(z_hat)))
    loaded = model.z.detach().cpu().numpy()
    require(loaded.tobytes() == z_hat.tobytes(), "internal error: the model's z differs from the decoded message")
    model.eval()
    return q


def complexity_for(cfg: RunConfig, message: bytes):
    """K for the message: its bytes, the Elias-delta length prefix, and the level grid."""
    return message_complexity(len(message), {"levels": len(cfg.levels)})
