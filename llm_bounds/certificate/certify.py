"""Certification: every certified number from the message bytes, the config and the data alone.

The run (:mod:`llm_bounds.certificate.run`) and the verifier (:mod:`llm_bounds.certificate.verify`)
call the same :func:`certify`. Units: bits per token (the JSON keys `*_bpd`, a name kept because the
format is public), bits per byte, error rates in [0, 1].
"""
from __future__ import annotations

import math
import re

from llm_bounds.bound.smoothing import random_guess_bits
from llm_bounds.certificate.checkpoints import checkpoint_statement
from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.claims import TOPK_REPORTED, claims_statement
from llm_bounds.certificate.context import RunContext, bounds_for, complexity_for
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.core.files import sha256_hex
from llm_bounds.message.accounting import message_report
from llm_bounds.subspace.registry import weights_source


# 2: certificate samples drawn from their own seed purposes, martingale kl top-k bounds, running-mean
# Freedman subsample terms with methods fixed per metric, ties counted against the target (#13)
# 3: with every token scored (n = all), the token-level complexity term is the betting bound (#15)
# 4: the betting bound in its ratio form; joint claims and the tuning charge stated (#23)
CERTIFICATE_VERSION = 4

# The keys whose value is an upper bound (read "at most"), as paths of the certificate: the headline
# bounds (token and document level, bits per token and per byte, top-k errors, the Hoeffding comparison),
# every bound and upper confidence bound under ``terms``, the decomposition's rows after the empirical one,
# and the message's proven coding overhead. The verifier refuses a claimed value below its own by more than
# float noise and lets a larger (weaker) one pass; tests/test_verify_tamper.py checks that every key named
# like a bound in a real certificate is listed here.
UPPER_BOUND_PATH = re.compile(
    r"(doc_)?bound_bpd|bound_bits_per_byte|bound_bpd_hoeffding|(doc_)?top\d+_error_bound"
    r"|terms\.\w+\.(nll|top\d+)\.(bound|full_empirical_ucb|centred_sq_ucb)"
    r"|terms\.\w+\.nll_per_alpha\[\d+\]\.bound"
    r"|decomposition\[[12]\]\.(bpd|bits_per_byte)"
    r"|message_report\.overhead_bound_bits")


def is_upper_bound(path: str) -> bool:
    """Whether the certificate key at ``path`` (``a.b[0].c``) states an upper bound (:data:`UPPER_BOUND_PATH`)."""
    return UPPER_BOUND_PATH.fullmatch(path) is not None


def certify(ctx: RunContext, message: bytes, progress: bool = True, folder: RunFolder | None = None) -> dict:
    """Every certified number, from the message bytes, the config and the data alone.

    ``folder`` (the run's folder) may hold evaluations of this message's model from an earlier,
    interrupted run (:meth:`RunFolder.evaluation`); the verifier passes none and evaluates everything
    (:meth:`RunContext.evaluation_of`).
    """
    cfg, tokenizer, corpus, model = ctx.cfg, ctx.tokenizer, ctx.corpus, ctx.model
    q = ctx.decoded(message)
    token_units, doc_units = ctx.units["token"], ctx.units["document"]
    V = tokenizer.vocab_size
    K = complexity_for(cfg, message)

    tok_res = ctx.evaluation_of(message, "token", folder, progress)
    every_unit = cfg.n_samples == "all"  # the whole training set was scored: no subsample term
    token_bounds = ctx.token_bounds(tok_res, K.total_bits)
    token_hoeffding = ctx.token_bounds(tok_res, K.total_bits, method="hoeffding")
    doc_bounds = None
    if cfg.n_documents > 0:
        doc_res = ctx.evaluation_of(message, "document", folder, progress)
        doc_bounds = bounds_for(cfg, doc_res, granularity="document", m=doc_units.m, complexity_bits=K.total_bits,
                                vocab_size=V)
    held = ctx.evaluation_of(message, "heldout", folder, progress)

    train_bytes = ctx.scored_bytes()
    per_byte = tokens_per_byte(token_units.m, train_bytes)
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
        "n": len(ctx.sample_ids["token"]),
        "every_unit_evaluated": every_unit,
        "sample_stream": cfg.sample_stream,
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
        "token_stream_sha256": corpus.stream_sha256(),
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
    cert["recipe"] = {"name": cfg.preset, "reason": cfg.recipe_reason}
    cert["claims"] = claims_statement(cfg)
    cert["claims"]["not_counted"] = hoeffding_statement(cert["claims"])
    charged = cfg.configs_compared * cfg.preset_tuning
    cert["tuning_charge"] = {"configs_compared": cfg.configs_compared, "preset_tuning": cfg.preset_tuning,
                             "bits": math.log2(charged), "subsample_delta_split": charged}
    chosen_among = checkpoint_statement(cfg, q.values())
    if chosen_among is not None:  # the reported message was chosen among checkpoints (the choice charged)
        cert["checkpoints"] = chosen_among
    cert["terms"] = {"token": token_bounds, "token_hoeffding": token_hoeffding, "document": doc_bounds,
                     "complexity": K.to_dict()}
    cert["decomposition"] = decomposition(cert)
    cert["message_report"] = {k: v for k, v in message_report(q, message).items()
                              if k != "complexity"}
    cert["data"] = corpus.summary()
    cert["weights"] = weights_info(cfg, model, ctx.weights_sha256(), ctx.object_sha256)
    cert["config"] = cfg.to_dict()
    cert["sublora_config"] = model.config.to_dict()
    return cert


def tokens_per_byte(m: int, m_bytes: int) -> float:
    """Scored tokens per scored UTF-8 byte of the training data: bits per token × this = bits per byte.

    The one conversion of the certificate: the token-level risk is an average over the m scored
    tokens, and the same targets hold ``m_bytes`` bytes, so the byte-level figure is exact, not an estimate.
    """
    return m / m_bytes


def weights_info(cfg: RunConfig, model, state_hash: str, object_sha256: str | None = None) -> dict:
    """Where the base weights come from (with their hash ``state_hash``, a model object's
    ``object_sha256``, the LoRA targets, and for pretrained weights the assumptions the bound rests
    on, in words)."""

    info = weights_source(cfg.model, cfg.init, model.lm if cfg.init == "pretrained" else None,
                          seed=cfg.seed_for("init"), state_hash=state_hash or None, object_sha256=object_sha256)
    info["lora_targets"] = [] if cfg.subspace_params == "all" else list(model.config.target_modules)
    info["output_head_tied"] = bool(model.embeddings_tied())
    if cfg.init == "pretrained":
        info["assumption"] = pretrained_assumptions(cfg)
    return info


def pretrained_assumptions(cfg: RunConfig) -> str:
    """What a bound with a pretrained prior assumes, in words (certificate and ``summary.md``)."""
    text = ("The pretrained weights are part of the prior, so the bound is valid only if they were not fitted to "
            "the data sampled here (the training split of the dataset).")
    if cfg.dataset_unseen_by_weights:
        return text + (f" The user stated (--unseen-dataset) that the weights were never trained on {cfg.dataset!r}; "
                       "the bound rests on that statement.")
    seen = "the KJV is on the web in many copies" if cfg.dataset == "kjv" else "it may be on the web"
    return text + (f" A model pretrained on web text has probably seen {cfg.dataset!r} ({seen}), so this figure "
                   "demonstrates the pipeline; it is not evidence that the model generalizes. To certify that, pass "
                   "--unseen-dataset PATH with text the weights never saw (for example written after their release).")


def hoeffding_statement(claims: dict) -> str:
    """What the Hoeffding figure is: informational, not one of the reported claims (certificate and
    ``summary.md``). Counting it would split δ one more way under ``--joint-claims`` and loosen every
    claim for a number that is only a comparison of inequalities."""
    return (f"Informational, for comparison: bound_bpd_hoeffding (terms.token_hoeffding) is the same data with "
            f"Hoeffding in every term, computed at delta {claims['delta_each']:g}. It is not one of the "
            f"{claims['count']} reported claims and their statement does not cover it: quoted beside them, it adds "
            "one more delta to the union bound.")


def decomposition(cert: dict) -> list[dict]:
    """Quantized empirical → + subsample term → + complexity term = bound (token-level nll).

    The unquantized (fp32) empirical loss that precedes these rows is not certified (the message
    does not contain it); :func:`run` reports it under ``informational``.
    """
    nll = cert["terms"]["token"]["nll"]
    per_byte = tokens_per_byte(cert["m"], cert["m_bytes"])
    rows = [("quantized empirical", nll["empirical"]),
            ("+ subsample term", nll["full_empirical_ucb"]),
            ("+ complexity term = bound", nll["bound"])]
    return [{"stage": s, "bpd": v, "bits_per_byte": v * per_byte} for s, v in rows]
