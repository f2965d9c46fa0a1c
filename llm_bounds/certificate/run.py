"""The end-to-end run: train → quantize (+QAT) → code → decode → evaluate → bound → certificate.

Read top to bottom:

1. :meth:`llm_bounds.certificate.context.RunContext.build` loads the data and builds the
   (untrained) SubLoRA model, the units and the samples, once.
2. :func:`train_stage` trains z (resumable; cached in ``OUT/stages``), and :func:`fp32_evaluation`
   evaluates the unquantized z on a small fixed part of the sample (informational).
3. :func:`select_message` quantizes z at every level count of the grid, codes each, decodes it
   back, checks the round trip bit for bit, evaluates the decoded model on the sample and keeps
   the level count with the lowest token-level bound. The grid is charged (log2|grid| bits, and
   the subsample δ is split over it). With several checkpoints (``--track``, or the untrained θ0 of
   pretrained weights; :mod:`llm_bounds.certificate.checkpoints`), training stops at each to code
   it the same way, and :func:`llm_bounds.certificate.tracking.choose_checkpoint` keeps the
   checkpoint with the lowest bound, the choice charged as one more grid. For θ0 and the final step
   alone (pretrained weights, no ``--track``), :func:`screened_choice` codes the trained message but
   evaluates it fully only when a screen on the sample's first units says it could beat θ0
   (:mod:`llm_bounds.certificate.screen`).
4. :func:`llm_bounds.certificate.certify.certify` computes every certified number from the
   message bytes alone: the decoded z, the sample re-drawn from the seed, the evaluations and the
   bounds. The verifier (:mod:`llm_bounds.certificate.verify`) calls the same function.
5. :func:`run` adds what the message does not justify but a reader wants (classical compressors
   on the same bytes, the environment, the cost of quantization) and writes ``message.bin``,
   ``certificate.json``, ``summary.md`` (and with ``--track`` ``curve.csv``) atomically.

Every file name comes from :class:`llm_bounds.certificate.stages.RunFolder`. Units: bits per
token, bits per byte, error rates in [0, 1].
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.func import functional_call

from llm_bounds.certificate.certify import certify, tokens_per_byte
from llm_bounds.certificate.checkpoints import checkpoint_steps, screened
from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.context import RunContext, complexity_for, informational_units, log_progress
from llm_bounds.certificate.estimate import describe, estimate_run
from llm_bounds.certificate.screen import first_units_evaluation, screen_trained
from llm_bounds.certificate.stages import RunFolder, RunKey, check_destination, run_key
from llm_bounds.certificate.summary import render_summary
from llm_bounds.certificate.tracking import choose_checkpoint, curve_csv
from llm_bounds.core import distributed
from llm_bounds.core.environment import environment, process_seconds
from llm_bounds.core.errors import RunError, require
from llm_bounds.core.files import json_default, write_atomic
from llm_bounds.data.baselines import baseline_bits_per_byte
from llm_bounds.data.cache import default_cache_dir
from llm_bounds.evaluation.evaluate import EvalResult
from llm_bounds.evaluation.results import load_eval, save_eval
from llm_bounds.message.format import encode_message
from llm_bounds.message.qat import qat_finetune
from llm_bounds.message.quantize import quantize
from llm_bounds.message.untrained import untrained_message
from llm_bounds.subspace.train import (TrainConfig, TrainingDiverged, next_token_loss, resolve_device, sample_batch,
                                       train_sublora)


def train_stage(ctx: RunContext, folder: RunFolder, progress: bool = True,
                stop_after: int | None = None) -> tuple[np.ndarray, dict]:
    """Train z (or load it from the stages); returns (z float32 [d], training summary).

    ``stop_after`` (0 < step < ``max_steps``, a tracked checkpoint): train up to that step only and
    keep its z as a stage of its own; a later call resumes training from there, and the final z is
    bit for bit the one an uninterrupted run gives (:func:`llm_bounds.subspace.train.train_sublora`).
    """
    if stop_after is not None:
        if folder.z_at(stop_after).is_file():
            return np.load(folder.z_at(stop_after)), {"steps": stop_after}
        _train(ctx, folder, progress, stop_after)
        z = ctx.model.z.detach().cpu().numpy().astype(np.float32)
        write_atomic(folder.z_at(stop_after), lambda f: np.save(f, z))  # rank 0 writes; every rank holds z
        return z, {"steps": stop_after}
    if folder.z.is_file() and folder.train_summary.is_file():
        return np.load(folder.z), json.loads(folder.train_summary.read_text())
    summary = _train(ctx, folder, progress)
    z = ctx.model.z.detach().cpu().numpy().astype(np.float32)
    write_atomic(folder.z, lambda f: np.save(f, z))
    write_atomic(folder.train_summary, json.dumps(summary, indent=1, default=str))
    return z, summary


def _train(ctx: RunContext, folder: RunFolder, progress: bool, stop_after: int | None = None) -> dict:
    """Train the model's z from the stages' training checkpoint (if any) to ``stop_after`` or the
    last step; returns the training summary."""
    cfg = ctx.cfg
    tcfg = TrainConfig(steps=cfg.max_steps, batch_size=cfg.batch_size, seq_len=cfg.window, lr=cfg.lr,
                       warmup_steps=min(cfg.warmup_steps, max(cfg.max_steps // 10, 1)),
                       seed=cfg.seed_for("train"), device=cfg.device, checkpoint_every=max(cfg.max_steps // 10, 1),
                       prefix_id=ctx.prefix_id)
    if cfg.max_steps > 0:
        summary = train_sublora(ctx.model, ctx.corpus.train_tokens, tcfg, checkpoint_dir=folder.train_checkpoints,
                                resume=True, progress=progress, stop_after=stop_after)
        summary = {k: v for k, v in summary.items() if k != "losses_nats"}
    else:
        summary = {"steps": 0}
    summary["config"] = tcfg.to_dict()
    ctx.model.eval()
    ctx.holds = "trained z" if stop_after is None else f"z at step {stop_after}"
    return summary


def fp32_evaluation(ctx: RunContext, z: np.ndarray, folder: RunFolder, progress: bool = True) -> EvalResult:
    """The unquantized z on the first units of the token sample (:func:`informational_units`):
    informational, not certified (the message does not contain this z), and cheap."""
    path = folder.fp32_evaluation
    if path.is_file():
        return load_eval(path)
    ctx.load_z(z, "fp32 z")
    n = informational_units(len(ctx.sample_ids["token"]))
    log_progress(progress, f"[decompose] evaluating the unquantized z on the first {n} units of the sample")
    res = ctx.evaluate("token", progress, limit=n)
    save_eval(path, res)
    return res


def zero_shot_evaluation(ctx: RunContext, folder: RunFolder, progress: bool = True) -> dict | None:
    """A pretrained model as published (z = 0: no update) on the held-out sample, in bits per
    token and per byte: what the weights knew before training, beside the trained model's held-out
    loss. Informational (not part of any bound); None for a model from a seeded init."""
    if ctx.cfg.init != "pretrained":
        return None
    log_progress(progress, "[zero-shot] the pretrained model as published on the held-out sample")
    # the untrained message's own evaluation, which the certificate reuses when it reports θ0
    res = ctx.evaluation_of(untrained_message(), "heldout", folder, progress)
    return {"heldout_bpd": res.bits_per_token, "heldout_bits_per_byte": res.bits_per_byte, "units": res.n}


def quantization_cost(fp32: EvalResult, quantized: EvalResult, alpha: float, tokens_per_byte: float) -> dict:
    """The unquantized and the certified model on the same units (the first ``fp32.n`` of the
    sample), at the certificate's α: what quantization costs, in bits per token and per byte."""
    i = [float(a) for a in fp32.alphas].index(float(alpha))
    j = [float(a) for a in quantized.alphas].index(float(alpha))
    n = fp32.n
    require(np.array_equal(quantized.unit_ids[:n], fp32.unit_ids), "internal error: the fp32 units are not the sample's first")
    unquantized, certified = float(fp32.smoothed_bits[i].mean()), float(quantized.smoothed_bits[j][:n].mean())
    return {"units": n, "fp32_empirical_bpd": unquantized, "quantized_empirical_bpd": certified,
            "fp32_empirical_bits_per_byte": unquantized * tokens_per_byte,
            "quantized_empirical_bits_per_byte": certified * tokens_per_byte}


def code_candidate(ctx: RunContext, z: np.ndarray, levels: int, progress: bool = False) -> bytes:
    """Quantize z to ``levels`` levels (with optional QAT) and code it: the message bytes.

    QAT evaluates the model through ``functional_call`` with the quantized z, so the model's own z
    is not changed.
    """
    cfg, model = ctx.cfg, ctx.model
    q = quantize(z, levels, method=cfg.quant_method, seed=cfg.seed_for("kmeans"))
    if cfg.qat_steps > 0:
        device = resolve_device(cfg.device)
        model.to(device).train()
        tcfg = TrainConfig(batch_size=cfg.batch_size, seq_len=cfg.window, seed=cfg.seed_for("qat"))
        step = {"i": 0}

        def loss_fn(zq):
            batch = sample_batch(ctx.corpus.train_tokens, step["i"], 0, tcfg)
            step["i"] += 1
            return next_token_loss(lambda ids: functional_call(model, {"z": zq}, (ids,)), batch, device, ctx.prefix_id)

        q = qat_finetune(torch.from_numpy(z).to(device), q, loss_fn, steps=cfg.qat_steps, lr=cfg.qat_lr,
                         seed=cfg.seed_for("qat"), progress=progress)
        model.eval()
    return encode_message(q)


def coded_messages(ctx: RunContext, z: np.ndarray, folder: RunFolder, progress: bool = True,
                   step: int | None = None) -> dict[int, bytes]:
    """z coded at each level count of the grid (level count → message; read from the stages when
    coded there), each checked to decode; nothing evaluated. ``step`` as in :func:`select_message`."""
    messages = {}
    for L in ctx.cfg.levels:
        if folder.candidate(L, step).is_file():
            message = folder.candidate(L, step).read_bytes()
        else:
            message = code_candidate(ctx, z, L, progress)
            write_atomic(folder.candidate(L, step), message)
        ctx.decoded(message)  # a message that does not decode stops the run here
        messages[L] = message
    return messages


def select_message(ctx: RunContext, z: np.ndarray, folder: RunFolder, progress: bool = True,
                   step: int | None = None) -> tuple[bytes, list[dict]]:
    """Code z at each level count of the grid and keep the one with the smallest token-level bound;
    returns its message and every candidate's summary. ``step``: z is the tracked checkpoint after
    that many steps (None: the final z)."""
    cfg = ctx.cfg
    results = []
    for L, message in coded_messages(ctx, z, folder, progress, step).items():
        res = ctx.evaluation_of(message, "token", folder, progress)
        b = ctx.token_bounds(res, complexity_for(cfg, message).total_bits)  # the certificate's own bound
        results.append({"levels": L, "message_bytes": len(message), "bound_bpd": b["nll"]["bound"],
                        "empirical_bpd": b["nll"]["empirical"], "message": message})
        log_progress(progress, f"[select] L = {L}: {8 * len(message)} message bits, "
                               f"bound {b['nll']['bound']:.4f} bits/token")
    best = min(results, key=lambda r: r["bound_bpd"])
    return best["message"], [{k: v for k, v in r.items() if k != "message"} for r in results]


def screened_choice(ctx: RunContext, z: np.ndarray, folder: RunFolder, progress: bool = True):
    """θ0 or the trained message, the latter evaluated fully only when the screen passes
    (:mod:`llm_bounds.certificate.screen`): the reported message, the final message, the level
    candidates' summaries, the checkpoints' informational part, and an evaluation of the final
    message covering the sample's first units (the full one when it exists)."""
    step = checkpoint_steps(ctx.cfg)[-1]
    coded = coded_messages(ctx, z, folder, progress)
    screen = screen_trained(ctx, untrained_message(), coded, step, folder, progress)
    if screen is None or screen["passed"]:
        final, candidates = select_message(ctx, z, folder, progress)
        message, tracked = choose_checkpoint(ctx, {0: untrained_message(), step: final}, folder, progress, screen)
        return message, final, candidates, tracked, ctx.evaluation_of(final, "token")
    final = coded[screen["best_levels"]]
    candidates = [{"levels": r["levels"], "message_bytes": r["message_bits"] // 8, "screened": True,
                   "screen_units": screen["units"], "optimistic_bound_bpd": r["optimistic_bound_bpd"]}
                  for r in screen["level_counts"]]
    message, tracked = choose_checkpoint(ctx, {0: untrained_message(), step: final}, folder, progress, screen)
    return message, final, candidates, tracked, first_units_evaluation(ctx, final, folder, progress)


def run(cfg: RunConfig, out: Path, progress: bool = True, prepared=None, started: float | None = None,
        notes: bool = True) -> dict:
    """Run every stage, write ``message.bin``, ``certificate.json`` and ``summary.md``; return the certificate.

    Bad input raises :class:`BoundInputError` before ``out`` exists (or is changed); a run that
    cannot finish raises :class:`RunError`, leaving stages that a rerun resumes from, or none when
    nothing in them can be used (divergence). ``prepared``: the data and base model of ``cfg``,
    already loaded (:func:`llm_bounds.certificate.plan.prepare`). ``started``: the
    ``time.perf_counter()`` at which this run's work began (its loading included), for the
    estimate; default: when the process started (a command line's imports included). ``notes``:
    print a note on stderr when the run is estimated at over an hour (off: no output at all
    without ``progress``).
    """
    t0 = time.perf_counter()
    cfg.validate()
    folder = RunFolder(check_destination(out))
    folder.check(cfg.to_dict())
    if prepared is None:
        log_progress(progress, f"[data] {cfg.dataset} with the {cfg.tokenizer} tokenizer")
    ctx = RunContext.build(cfg, prepared, folder=folder)  # bad data, tokenizer or model settings fail here, before --out exists
    log_progress(progress, f"[model] {cfg.model} ({cfg.init}): D = {ctx.model.D} weights in the subspace "
                           f"({cfg.subspace_params}{', LoRA on ' + ','.join(ctx.cfg.target_modules) if cfg.subspace_params != 'all' else ''}), "
                           f"d = {ctx.model.d}")
    # the settings as given (resumes compare them); the certificate's config names the resolved targets
    key = key_of(cfg, ctx)
    folder.check_key(key, ctx.cfg.to_dict())  # before the estimate's timed steps; claim checks again under the lock
    estimate = estimate_run(ctx, None if started is None else time.perf_counter() - started)
    log_progress(progress, describe(estimate))
    if notes and estimate["cheaper"] and distributed.is_main():
        print(f"bound.py: note: this run is estimated at {estimate['seconds'] / 3600:.1f} hours; "
              f"{estimate['cheaper']}", file=sys.stderr, flush=True)
    created = folder.claim(key, ctx.cfg.to_dict())
    try:
        message, cert = certified_run(ctx, folder, progress)
    except TrainingDiverged as e:
        folder.discard(created)  # nothing in the stages can be resumed
        raise RunError(f"{e}; nothing was kept in {folder.out}") from None
    except BaseException:
        folder.release(created)  # leaves the stages a rerun resumes from, or no empty folder
        raise
    cert["informational"]["seconds"] = time.perf_counter() - t0 + (sum(prepared.seconds.values()) if prepared else 0.0)
    cert["informational"]["process_seconds"] = process_seconds()
    cert["informational"]["estimate"] = estimate
    try:
        write_atomic(folder.message, message)
        write_atomic(folder.certificate, json.dumps(cert, indent=1, default=json_default))
        write_atomic(folder.summary, render_summary(cert))
        if cfg.track:
            write_atomic(folder.curve, curve_csv(cert["informational"]["checkpoints"]["rows"]))
    finally:
        folder.unlock()
    return cert


def key_of(cfg: RunConfig, ctx: RunContext) -> RunKey:
    """The :class:`RunKey` of ``cfg`` (the settings as given) with the data, tokenizer and weights of
    ``ctx``, in this process's code and environment."""
    return run_key(cfg.to_dict(), str(resolve_device(cfg.device)), ctx.corpus.content_hash,
                   ctx.corpus.tokenizer_fingerprint, ctx.weights_sha256())


def certified_run(ctx: RunContext, folder: RunFolder, progress: bool) -> tuple[bytes, dict]:
    """Train, code, select, certify and describe: the message of ``ctx`` and its certificate (not yet written)."""
    cfg = ctx.cfg
    steps = checkpoint_steps(cfg)  # the final step alone, unless --track or a pretrained θ0 candidate
    earlier = {step: checkpoint_message(ctx, folder, step, progress) for step in steps[:-1]}
    z, train_summary = train_stage(ctx, folder, progress)
    fp32 = fp32_evaluation(ctx, z, folder, progress)
    zero_shot = zero_shot_evaluation(ctx, folder, progress)
    if screened(cfg):  # θ0 and the final step: the trained message evaluated fully only if it could win
        message, final, candidates, tracked, final_res = screened_choice(ctx, z, folder, progress)
    else:
        final, candidates = select_message(ctx, z, folder, progress)
        message, tracked, final_res = final, None, ctx.evaluation_of(final, "token")
        if earlier:  # the checkpoint with the smallest bound, the choice charged
            message, tracked = choose_checkpoint(ctx, {**earlier, steps[-1]: final}, folder, progress)
    cert = certify(ctx, message, progress, folder=folder)
    log_progress(progress, "[baselines] gzip -9, bzip2 -9 and xz -9e on the scored training text")
    cert["baseline_bits_per_byte"] = baseline_bits_per_byte(ctx.scored_text(), default_cache_dir())
    cert["environment"] = environment(str(resolve_device(cfg.device)), cfg.eval_dtype)
    cert["informational"] = {  # not re-derivable from the message: the verifier skips this part
        "quantization": quantization_cost(fp32, final_res, cert["alpha"],
                                          tokens_per_byte(cert["m"], cert["m_bytes"])),
        "zero_shot": zero_shot,
        "level_candidates": candidates,
        "train": train_summary,
    }
    if tracked is not None:
        cert["informational"]["checkpoints"] = tracked
    return message, cert


def checkpoint_message(ctx: RunContext, folder: RunFolder, step: int, progress: bool = True) -> bytes:
    """The message certified for the checkpoint after ``step`` training steps, a checkpoint before the
    last: at step 0 the untrained message (z = 0 exactly, :mod:`llm_bounds.message.untrained`),
    otherwise z trained to there and coded at each level count like the final z
    (:mod:`llm_bounds.certificate.checkpoints`)."""
    if step == 0:
        return untrained_message()
    z, _ = train_stage(ctx, folder, progress, stop_after=step)
    return select_message(ctx, z, folder, progress, step=step)[0]
