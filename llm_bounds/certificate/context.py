"""What every stage of a run shares, built once: :class:`RunContext` holds the tokenizer, the
corpus, the model, the scoring units and the sampled unit ids of one config, and is the only code
that sets the model's z (so what the model holds is always known, never left behind by a stage).

Also here: the bounds of one evaluation, and the level grid's charge.
Units: bits per token, bits per byte, error rates in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from llm_bounds.bound.concentration import running_centred_square
from llm_bounds.bound.alpha_grid import bound_over_alpha_grid
from llm_bounds.bound.generalization import generalization_bound
from llm_bounds.bound.smoothing import smoothed_loss_range
from llm_bounds.certificate.checkpoints import checkpoint_count
from llm_bounds.certificate.claims import TOPK_REPORTED, claim_delta
from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.certificate.supplied import Supplied
from llm_bounds.core import distributed
from llm_bounds.core.environment import available_memory_bytes
from llm_bounds.core.errors import require
from llm_bounds.core.files import sha256_hex
from llm_bounds.data.corpus import Corpus, build_corpus, load_documents
from llm_bounds.data.scoring import ScoringGrid, UnitSet, make_units
from llm_bounds.data.text_bytes import byte_cumsum
from llm_bounds.data.tokenizers import ByteTokenizer, Tokenizer, get_tokenizer
from llm_bounds.evaluation.evaluate import (EvalResult, evaluate_units, evaluation_memory_bytes, model_context_length,
                                           sample_units)
from llm_bounds.evaluation.results import load_eval, merge_evaluations, save_eval
from llm_bounds.message.complexity import Complexity, message_complexity
from llm_bounds.message.format import decode_message
from llm_bounds.message.quantize import Quantized
from llm_bounds.subspace.registry import state_sha256
from llm_bounds.subspace.sublora import SubLoRAConfig, SubLoRAModel, build_sublora
from llm_bounds.subspace.train import resolve_device

SAMPLES = ("token", "document", "heldout")  # the three evaluated samples of a run


def check_sample_memory(cfg: RunConfig, units: dict[str, UnitSet], sizes: dict) -> None:
    """Refuse, before any work, samples whose evaluation would need more than half the memory
    available now (:func:`llm_bounds.evaluation.evaluate.evaluation_memory_bytes`)."""
    available = available_memory_bytes()
    if available is None:
        return
    need = 0
    for name, n in sizes.items():
        count = units[name].num_units if n == "all" else int(n)
        need += evaluation_memory_bytes(count, min(count, units[name].num_units), cfg.stride, len(cfg.alphas))
    require(need <= available // 2,
            f"the samples (--n-samples {cfg.n_samples}, --n-documents {cfg.n_documents}, --heldout-samples "
            f"{cfg.heldout_samples}) need about {need / 2**30:.1f} GiB to evaluate, more than half of the "
            f"{available / 2**30:.1f} GiB available; pass a smaller --n-samples, or --n-samples all "
            f"(every one of the {units['token'].num_units} units once)")


def window_prefix(cfg: RunConfig, tokenizer: Tokenizer) -> int | None:
    """The token put before every window, in training and evaluation (context only, never a target):
    the tokenizer's beginning-of-sequence token for ``bos``, none for ``none``, and for ``auto`` the
    former for pretrained weights whose tokenizer has one distinct from the end-of-document token
    (a model trained with it first can predict far worse without it: Gemma-3-270M, 7.22 against
    4.93 bits per token on the same windows), else none."""
    if cfg.window_prefix == "bos":
        require(tokenizer.bos_id is not None, f"--window-prefix bos: the tokenizer {tokenizer.name!r} has no "
                                              "beginning-of-sequence token apart from its end-of-document token; "
                                              "pass --window-prefix none")
        return tokenizer.bos_id
    if cfg.window_prefix == "auto" and cfg.init == "pretrained":
        return tokenizer.bos_id
    return None


def informational_units(n: int) -> int:
    """How many of the token sample's first units the informational fp32 evaluation scores: at most
    2,000 and a tenth of the sample (cheap for large models), at least 64 (or all n, if fewer)."""
    return min(n, max(64, min(2000, n // 10)))


def log_progress(progress: bool, msg: str) -> None:
    if progress:
        print(msg, flush=True)


def sublora_config(cfg: RunConfig, vocab_size: int) -> SubLoRAConfig:
    """The model part of ``cfg``, with the seeds of its purposes."""
    return SubLoRAConfig(model=cfg.model, vocab_size=int(vocab_size), init=cfg.init, seed=cfg.seed_for("init"),
                         n_positions=None, lora_rank=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                         target_modules=tuple(cfg.target_modules), intrinsic_dim=cfg.intrinsic_dim,
                         projector=cfg.projector, projection_seed=cfg.seed_for("projection"),
                         lora_seed=cfg.seed_for("lora"), subspace_params=cfg.subspace_params,
                         update_scales=cfg.update_scales)


def searched_grids(cfg: RunConfig) -> dict[str, int]:
    """The choices made by looking at the data, each a grid of this many values:

    * ``levels``: the quantization level counts, searched on the certificate's own sample;
    * ``preset_tuning``: configurations compared on the data to choose the preset's own values (the
      ``default`` preset's 2^10), charged whatever else the user compared;
    * ``configs_compared``: configurations the user compared by their bound (``--configs-compared``);
    * ``checkpoints``: the training checkpoints certified and compared by their bound (``--track``, or
      the untrained θ0 beside the final step for pretrained weights; :mod:`llm_bounds.certificate.checkpoints`).

    A count N treats the compared configurations as a list fixed in advance, each with prior weight
    1/N: a search that could have produced more than N candidates must charge that larger number.

    Each is charged twice, both from this one table: log2|grid| bits in K (:func:`complexity_for`)
    and a union bound that splits every subsample δ over it (``subsample_union`` in :func:`bounds_for`).
    """
    grids = {"levels": len(cfg.levels)}
    if cfg.preset_tuning > 1:
        grids["preset_tuning"] = int(cfg.preset_tuning)
    if cfg.configs_compared > 1:
        grids["configs_compared"] = int(cfg.configs_compared)
    if checkpoint_count(cfg) > 1:
        grids["checkpoints"] = checkpoint_count(cfg)
    return grids


def grid_union(cfg: RunConfig) -> int:
    """Ways every subsample δ is split: the product of the :func:`searched_grids`."""
    return int(np.prod(list(searched_grids(cfg).values())))


def complexity_for(cfg: RunConfig, message: bytes) -> Complexity:
    """K for the message: its bytes, the Elias-delta length prefix, and every searched grid."""
    return message_complexity(len(message), searched_grids(cfg))


@dataclass
class RunContext:
    """The data, model, units and samples of one config, built once and passed to every stage."""

    cfg: RunConfig
    tokenizer: Tokenizer
    corpus: Corpus
    model: SubLoRAModel
    units: dict[str, UnitSet]           # token, document (training stream), heldout (held-out stream)
    sample_ids: dict[str, np.ndarray]   # the drawn unit ids of each sample; no document sample if n_documents = 0
    prefix_id: int | None = None        # the token put before every window (RunConfig.window_prefix), or None
    holds: str = "z = 0"                # what the model's z is now: "z = 0", "trained z", "fp32 z" or a message sha256
    _decoded: dict[str, Quantized] = field(default_factory=dict, repr=False)
    _evaluations: dict[tuple[str, str], EvalResult] = field(default_factory=dict, repr=False)
    _weights_sha256: str | None = field(default=None, repr=False)
    _byte_cumsums: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    object_sha256: str | None = None    # a model object's state as the user gave it (certificate.supplied)

    @classmethod
    def build(cls, cfg: RunConfig, prepared=None, *, supplied: Supplied | None = None,
              folder: RunFolder | None = None) -> "RunContext":
        """Load the data, build the untrained model (z = 0, eval mode), the units and the samples.

        ``prepared`` (a :class:`llm_bounds.certificate.plan.Prepared` of this ``cfg``) supplies the
        tokenizer, corpus and base model already loaded; without it, ``supplied`` holds the model or
        tokenizer objects ``cfg`` names (the verifier's). The context's ``cfg`` names the LoRA
        targets the model got (``auto`` resolved), so that a certificate says what was targeted.
        ``folder``: the run's folder, whose key the data must agree with before the model is built
        (:meth:`RunFolder.check_loaded`; a prepared run was checked while it loaded).
        """
        cfg.validate()
        base, object_sha256 = None, None
        if prepared is not None:
            require(prepared.cfg is cfg, "internal error: the prepared run belongs to another config")
            tokenizer, corpus = prepared.tokenizer, prepared.corpus
            base, object_sha256 = prepared.take_base(), prepared.object_sha256
        else:
            given_tok = supplied.tokenizer if supplied is not None else None
            tokenizer = given_tok or get_tokenizer(cfg.tokenizer, cfg.tokenizer_dir)
            window_prefix(cfg, tokenizer)  # a bos prefix the tokenizer lacks fails before the corpus
            corpus = build_corpus(load_documents(cfg.dataset, separator=cfg.separator), tokenizer,
                                  heldout_fraction=cfg.heldout_fraction, seed=cfg.seed_for("heldout"))
            if folder is not None:
                folder.check_loaded(str(resolve_device(cfg.device)), corpus.content_hash, corpus.tokenizer_fingerprint)
            if supplied is not None and supplied.model is not None:
                base, object_sha256 = supplied.fresh_base(tokenizer.vocab_size), supplied.model_sha256
        grid = ScoringGrid(cfg.window, cfg.stride)
        units = {"token": make_units("token", grid, corpus.num_train_tokens),
                 "document": make_units("document", grid, corpus.num_train_tokens, corpus.train_doc_offsets),
                 "heldout": make_units("token", grid, corpus.num_heldout_tokens)}
        sizes = {"token": cfg.n_samples, "document": cfg.n_documents, "heldout": cfg.heldout_samples}
        check_sample_memory(cfg, units, sizes)
        model = build_sublora(sublora_config(cfg, tokenizer.vocab_size), base=base)
        prefix = window_prefix(cfg, tokenizer)
        shift = 0 if prefix is None else 1
        context = model_context_length(model.lm)
        require(context is None or cfg.window + shift <= context,
                f"--window {cfg.window} is longer than the context of {cfg.model} ({context} tokens"
                f"{', one of them the window prefix' if shift else ''}); pass --window {(context or 0) - shift} or less")
        if cfg.subspace_params != "all":
            cfg = replace(cfg, target_modules=model.config.target_modules)
        cfg = replace(cfg, window_prefix="none" if prefix is None else "bos")
        # each sample has its own seed purpose, so the samples are independent of each other and of
        # training, and a certificate's purposes are never used by a tuning run
        sample_ids = {}
        for name, n in sizes.items():
            if n == "all":
                sample_ids[name] = np.arange(units[name].num_units, dtype=np.int64)
            elif n > 0:
                sample_ids[name] = sample_units(units[name].num_units, n, cfg.seed_for(cfg.sample_purpose(name)))
        return cls(cfg, tokenizer, corpus, model, units, sample_ids, prefix, object_sha256=object_sha256)

    def weights_sha256(self) -> str:
        """sha256 of the pretrained base weights' state (:func:`~llm_bounds.subspace.registry.state_sha256`;
        "" for a seeded init), hashed once per run: the run key and the certificate both name it. The
        LoRA weights are applied by a functional call, so the state is the same whatever z holds."""
        if self._weights_sha256 is None:
            self._weights_sha256 = state_sha256(self.model.lm) if self.cfg.init == "pretrained" else ""
        return self._weights_sha256

    def tokens(self, sample: str) -> np.ndarray:
        """The stream a sample's units are cut from."""
        return self.corpus.heldout_tokens if sample == "heldout" else self.corpus.train_tokens

    # --- what the model holds ------------------------------------------------------------------
    def decoded(self, message: bytes) -> Quantized:
        """The quantized z of ``message`` (decoded once per message)."""
        key = sha256_hex(message)
        if key not in self._decoded:
            self._decoded[key] = decode_message(message, self.model.d)
        return self._decoded[key]

    def load_message(self, message: bytes) -> Quantized:
        """Set the model to the decoded message, exactly (checked bit for bit); eval mode."""
        key = sha256_hex(message)
        q = self.decoded(message)
        if self.holds != key:
            z_hat = q.values()
            self.model.set_z(torch.from_numpy(np.ascontiguousarray(z_hat)))
            loaded = self.model.z.detach().cpu().numpy()
            require(loaded.tobytes() == z_hat.tobytes(), "internal error: the model's z differs from the decoded message")
            self.holds = key
        self.model.eval()
        return q

    def load_z(self, z: np.ndarray, label: str) -> None:
        """Set the model to an unquantized ``z`` (``label`` says which, e.g. ``fp32 z``)."""
        self.model.set_z(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)))
        self.model.eval()
        self.holds = label

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, sample: str, progress: bool = True, limit: int | None = None) -> EvalResult:
        """Evaluate the model as it is now (:attr:`holds`) on ``sample``, in ``cfg.eval_dtype``.

        ``limit`` scores only the first ``limit`` units of the sample (for informational figures).
        Under ``torchrun`` each rank scores a contiguous shard and the per-unit results are
        gathered back in sample order.
        """
        require(sample in self.sample_ids, f"internal error: no {sample} sample in this run")
        ids, cfg = self.sample_ids[sample][:limit], self.cfg
        device = resolve_device(cfg.device)
        self.model.to(device).eval()
        start, end = distributed.shard_bounds(len(ids))
        require(end > start, f"n = {len(ids)} units cannot be split over {distributed.world_size()} ranks; "
                             "sample more units or use fewer processes")
        part = evaluate_units(self.model, self.tokens(sample), self.units[sample], ids[start:end], alphas=cfg.alphas,
                              batch_size=cfg.eval_batch_size, device=device,
                              autocast_dtype=torch.bfloat16 if cfg.eval_dtype == "bfloat16" else None,
                              token_nbytes=self.tokenizer.token_nbytes, vocab_size=self.tokenizer.vocab_size,
                              progress=progress and distributed.is_main(), prefix_id=self.prefix_id)
        part.num_bytes = self.unit_bytes(sample, part.unit_ids)  # the text's bytes, not the pieces' (text_bytes)
        if distributed.world_size() == 1:
            return part
        return merge_evaluations(distributed.gather_objects(part))

    def evaluation_of(self, message: bytes, sample: str, folder: RunFolder | None = None,
                      progress: bool = True, limit: int | None = None) -> EvalResult:
        """The decoded model of ``message`` on ``sample`` (``limit``: its first units only, as
        :meth:`evaluate`): evaluated once per run (kept in memory), or read from ``folder``'s stages
        when an interrupted run already evaluated it there."""
        key = (sha256_hex(message), sample, limit)
        if key in self._evaluations:
            return self._evaluations[key]
        path = None if folder is None else folder.evaluation(sample, message, limit)
        res = load_eval(path) if path is not None and path.is_file() else None
        if res is not None and res.log_wealth_sum is None:
            res = None  # cached before the betting terms existed: evaluate again
        if res is None:
            self.load_message(message)
            n = len(self.sample_ids[sample][:limit])
            log_progress(progress, f"[evaluate] the decoded message {key[0][:8]} on the {sample} sample: "
                                   f"n = {n} units{'' if limit is None else ' (its first)'}")
            res = self.evaluate(sample, progress, limit=limit)
            if path is not None:
                save_eval(path, res)
        self._evaluations[key] = res
        return res

    def token_bounds(self, res: EvalResult, complexity_bits: float, method: str = "best") -> dict:
        """The token-level bounds the certificate reports for ``res`` (:func:`bounds_for`): with
        every unit scored (n = all) no subsample term and the betting complexity term. The level
        grid is searched by this same function, so the chosen L minimises the certified bound."""
        return bounds_for(self.cfg, res, granularity="token", m=self.units["token"].m, complexity_bits=complexity_bits,
                          vocab_size=self.tokenizer.vocab_size, method=method, subsampled=self.cfg.n_samples != "all")

    def scored_text(self) -> bytes:
        """The UTF-8 text of the training targets the token-level units score (one contiguous
        range of the training stream; document separators carry no bytes)."""
        units = self.units["token"]
        ids = np.asarray(self.corpus.train_tokens[int(units.score_start.min()):int(units.score_end.max())])
        if isinstance(self.tokenizer, ByteTokenizer):
            return ids[ids < 256].astype(np.uint8).tobytes()
        return self.tokenizer.decode(ids.tolist()).encode("utf-8")

    def unit_bytes(self, sample: str, unit_ids: np.ndarray) -> np.ndarray:
        """UTF-8 bytes of the text each unit of ``sample`` scores (exact per document:
        :func:`~llm_bounds.data.text_bytes.position_nbytes`), int64 [len(unit_ids)]."""
        stream = "heldout" if sample == "heldout" else "train"
        if stream not in self._byte_cumsums:
            self._byte_cumsums[stream] = byte_cumsum(self.corpus, stream, self.tokenizer.token_nbytes)
        units, c = self.units[sample], self._byte_cumsums[stream]
        return c[units.score_end[unit_ids]] - c[units.score_start[unit_ids]]

    def scored_bytes(self) -> int:
        """UTF-8 bytes of all targets the token-level units score (the per-byte conversion of the full risk)."""
        return int(self.unit_bytes("token", np.arange(self.units["token"].num_units)).sum())


def unit_stats(res: EvalResult, vocab_size: int) -> dict[str, dict[float, float]]:
    """Per α, over the sampled units (in drawn order): the mean of the unit means (bits per token),
    their unbiased variance, the mean centred second moment (bits², per token) and its variance,
    the running-mean centred squares of both (:func:`running_centred_square`), and per token over
    all sampled tokens the mean centre (bits) and the mean log-wealth at each λ of the betting grid
    (nats; absent from evaluations without it)."""
    per_token_sq = res.smoothed_sq_dev_sum / res.num_tokens[None, :]
    tokens = float(res.num_tokens.sum())
    stats: dict[str, dict] = {k: {} for k in ("mean", "var", "sq", "sq_var", "run_sq", "sq_run_sq", "centre",
                                              "log_wealth")}
    for i, a in enumerate(float(x) for x in res.alphas):
        x, y = res.smoothed_bits[i], per_token_sq[i]
        lo, hi = smoothed_loss_range(a, vocab_size)
        stats["mean"][a], stats["var"][a] = float(x.mean()), float(x.var(ddof=1))
        stats["sq"][a], stats["sq_var"][a] = float(y.mean()), float(y.var(ddof=1))
        stats["run_sq"][a] = running_centred_square(x, lo, hi)
        stats["sq_run_sq"][a] = running_centred_square(y, 0.0, (hi - lo) ** 2)
        stats["centre"][a] = float(res.expected_smoothed_bits_sum[i].sum() / tokens)
        if res.log_wealth_sum is not None:
            stats["log_wealth"][a] = res.log_wealth_sum[i].sum(axis=-1) / tokens
    return stats


def bounds_for(cfg: RunConfig, res: EvalResult, *, granularity: str, m: int, complexity_bits: float, vocab_size: int,
               method: str = "best", subsampled: bool = True) -> dict:
    """The nll bound (best over the α grid) and the top-k error bounds for one evaluation.

    The level grid was searched on this same sample, so every subsample term is also split over it
    (``subsample_union``, :func:`grid_union`); its log2|grid| bits are already inside
    ``complexity_bits``. ``subsampled=False``: the evaluation covers every unit once (n = all), so
    its mean is the full empirical risk, there is no subsample term, and at the token level the
    complexity term is the betting bound (every token's loss and centre are known).
    """
    s = unit_stats(res, vocab_size)
    token = granularity == "token"
    common = dict(granularity=granularity, complexity_bits=complexity_bits, m=m, n=res.n if subsampled else None,
                  delta=claim_delta(cfg), method=method, subsample_union=grid_union(cfg))
    per_unit = dict(variance_by_alpha=s["var"], running_sq_by_alpha=s["run_sq"],
                    centred_sq_variance_by_alpha=s["sq_var"] if token else None,
                    centred_sq_running_by_alpha=s["sq_run_sq"] if token else None) if subsampled else {}
    if token and not subsampled and s["log_wealth"]:
        per_unit.update(centre_mean_by_alpha=s["centre"], log_wealth_by_alpha=s["log_wealth"])
    chosen, per_alpha = bound_over_alpha_grid(empirical_by_alpha=s["mean"],
                                              centred_sq_by_alpha=s["sq"] if token else None,
                                              vocab_size=vocab_size, **per_unit, **common)
    out = {"nll": chosen.to_dict(), "nll_per_alpha": [{"alpha": r.alpha, "bound": r.bound, "empirical": r.empirical}
                                                     for r in per_alpha]}
    for k in TOPK_REPORTED:
        idx = int(np.nonzero(res.ks == k)[0][0])
        errs = res.topk_error[idx]
        spread = dict(subsample_variance=float(errs.var(ddof=1)),
                      subsample_running_sq=running_centred_square(errs, 0.0, 1.0)) if subsampled else {}
        out[f"top{k}"] = generalization_bound(metric="error", empirical=float(errs.mean()), **spread, **common).to_dict()
    return out
