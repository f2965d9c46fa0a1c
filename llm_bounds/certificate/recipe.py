"""Recipes: a run's settings chosen from the model and the machine when no ``--preset`` names them.

``python scripts/bound.py --model X`` must not inherit settings tuned for another model: a recipe
tuned for a 15,000-weight n-gram model would train every weight of a 135M-parameter checkpoint for
two days. The rules, in order (the first that applies wins; explicit flags always override the
values it gives):

1. ``--preset P``: the preset P (:data:`llm_bounds.certificate.config.PRESETS`).
2. The default's model (no ``--model``, or ``nplm-k4-e16-h128``): the ``default`` preset, exactly.
3. Another n-gram model (``nplm-…``): ``ngram``, the default's recipe for that model (d at most
   four fifths of its weights).
4. A seeded transformer (``--init scratch``, or a ladder name): ``scratch-cpu`` or ``scratch-cuda``,
   SubLoRA as in the paper (the ICML 2024 setting), at the device's budget.
5. A pretrained checkpoint: ``pretrained-cpu`` or ``pretrained-cuda``: SubLoRA (rank-4 LoRA on
   peft's attention targets and the output head), at the device's budget, with d scaled to the
   training set (:data:`TOKENS_PER_COORDINATE`).

**d for pretrained weights.** Each coded bit of K costs about Δ·ln 2/(λ·m) bits per token, so a
subspace pays only if training gains more than its message costs. Measured with SmolLM2-135M and
d = 1,000 (BENCHMARKS.md, #24 and #25): on the KJV (m = 985,344 tokens) training lowered the
held-out loss by 0.087 bits per token while its 4,368 bits cost 0.36; on the unseen corpus
(m = 264,704) it gained 0.009 and cost 0.65. So a pretrained model's d is one coordinate per
4,000 training tokens, between 32 and the device's cap (1,000 on a CPU, the paper's 50,000 on a GPU).

**Budgets** (:data:`BUDGETS`) are compute, counted as 6·N FLOPs per training token and 2·N per
evaluated token for a model of N parameters, so that a larger model gets fewer tokens:

* ``cuda``: the paper's scale, i.e. what its recipe (10,000 steps of 8 × 1,024 tokens; n = 10,000
  units of 1,024 tokens) costs for GPT-2 (124M parameters);
* ``cpu``: about 4 minutes of training and 20 of evaluation for SmolLM2-135M on the project's 2-core
  CPU, where it trains at 160 tokens/s and evaluates at about 330 (BENCHMARKS.md); training got
  half of what it had at first, since doubling it bought a pretrained model almost nothing here.

Training steps are the budget's tokens over the tokens per step, between :data:`MIN_STEPS` and the
recipe's maximum. A scored unit costs one forwarded window. Every training unit is scored (n = all:
no subsample term, the betting bound) when that costs at most twice the evaluation budget: n draws
with replacement from U units forward about U·(1 − e^(−n/U)) distinct windows, so a subsample near
U costs almost as much as every unit and still pays a subsample term (about 0.3 bits per token at
n = 800 for SmolLM2 on the KJV); otherwise n is the number of units the budget buys (at least 64). These
choices use the model's size, the vocabulary, the device and the size of the training set, never
the loss of any model on the data being certified.

**Tuning charge.** The rules' numbers were not: d per training token, the levels, the budgets and
the scratch recipe's d and learning rate were chosen by comparing runs on the KJV and on the unseen
corpus (BENCHMARKS.md), the data these recipes then certify. So ``scratch-cpu``, ``pretrained-cpu``
and ``pretrained-cuda`` charge :data:`RECIPE_TUNING_CHARGE` compared configurations (10 bits in K;
measured: +0.0022 bits per token for SmolLM2 on the unseen corpus), as the ``default`` preset does;
``scratch-cuda`` is the paper's recipe, fixed before any of this data was seen, and charges nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from llm_bounds.certificate.config import DEFAULT_TUNING_CHARGE, PAPER_ALPHAS, PRESETS, RunConfig, preset_config
from llm_bounds.core.errors import require_one_of
from llm_bounds.subspace.nplm import parse_nplm_name
from llm_bounds.subspace.registry import default_init, is_seeded_only

DEFAULT_MODEL = PRESETS["default"]["model"]
MIN_STEPS = 10
MIN_SAMPLES = 64
TOKENS_PER_COORDINATE = 4000   # a pretrained model's d: the training tokens over this (see the module)
MIN_PRETRAINED_DIM = 32
ALL_UNITS_FACTOR = 2.0  # score every unit when that costs at most this many times the evaluation budget
KINDS = ("ngram", "scratch", "pretrained")
RECIPE_TUNING_CHARGE = DEFAULT_TUNING_CHARGE  # configurations charged for rules tuned on the certified data


@dataclass(frozen=True)
class Budget:
    """Compute for one run on one kind of device: training and evaluation FLOPs."""

    train_flops: float
    eval_flops: float


BUDGETS = {
    "cuda": Budget(train_flops=6 * 124_439_808 * 10_000 * 8 * 1024, eval_flops=2 * 124_439_808 * 10_000 * 1024),
    "cpu": Budget(train_flops=3.2e13, eval_flops=1.0e14),
}

# The values of each recipe before the budget sets steps and n (the keys of RunConfig).
SUBLORA_CPU = dict(subspace_params="lora", lora_rank=4, target_modules=("auto",), intrinsic_dim=1000, lr=5e-3,
                   warmup_steps=5, batch_size=4, window=256, stride=256, levels=(9,), alphas=(0.001, 0.01, 0.05),
                   n_documents=0, heldout_samples=48, eval_batch_size=8, qat_steps=0)
SUBLORA_CUDA = dict(subspace_params="lora", lora_rank=4, target_modules=("auto",), intrinsic_dim=50_000, lr=5e-3,
                    warmup_steps=50, batch_size=8, window=1024, stride=512, levels=(11,), alphas=PAPER_ALPHAS,
                    n_documents=0, heldout_samples=2000, eval_batch_size=32, qat_steps=0)
MAX_STEPS = {"cpu": 400, "cuda": 10_000}
RECIPES = {
    "scratch-cpu": dict(SUBLORA_CPU, intrinsic_dim=2000, lr=2e-2, warmup_steps=50, batch_size=8, levels=(17, 33),
                        alphas=(0.001, 0.01, 0.05, 0.1),  # from a seeded init: d of the old default, which learned
                        preset_tuning=RECIPE_TUNING_CHARGE),
    "scratch-cuda": dict(SUBLORA_CUDA),
    "pretrained-cpu": dict(SUBLORA_CPU, preset_tuning=RECIPE_TUNING_CHARGE),
    "pretrained-cuda": dict(SUBLORA_CUDA, preset_tuning=RECIPE_TUNING_CHARGE),
}


@dataclass(frozen=True)
class Facts:
    """What a recipe is chosen from: the model's kind and size, the vocabulary, the device type
    (``cpu`` or ``cuda``), the model's context in tokens (None: unlimited), the number of tokens in
    the training split, and whether a prefix token takes one position of every window."""

    kind: str
    params: int
    vocab_size: int
    device: str
    context: int | None
    train_tokens: int
    prefixed: bool = False


@dataclass(frozen=True)
class Recipe:
    """A named recipe, why it was chosen, and the settings it gives (before explicit flags)."""

    name: str
    reason: str
    values: dict


def model_kind(model: str, init: str | None) -> str:
    """``ngram``, ``scratch`` (a seeded transformer) or ``pretrained``."""
    init = init or default_init(model)
    require_one_of(init, ("scratch", "pretrained"), "--init")
    if parse_nplm_name(model) is not None:
        return "ngram"
    return "scratch" if init == "scratch" or is_seeded_only(model) else "pretrained"


def recipe_name(preset: str | None, model: str | None, kind: str, device: str) -> str:
    """The name of the recipe :func:`choose_recipe` picks, known before anything loads: ``preset``
    when given, ``default`` for the default's model, else by the model's ``kind`` and the ``device``
    type (``cpu``, ``cuda``). A run's default folder is named after it."""
    if preset is not None:
        return preset
    if model is None or model == DEFAULT_MODEL:
        return "default"
    return "ngram" if kind == "ngram" else f"{kind}-{device}"


def choose_recipe(preset: str | None, model: str | None, facts: Facts | None, given: dict | None = None) -> Recipe:
    """The recipe for these arguments (rules in the module docstring). ``facts`` is needed only
    when neither ``preset`` nor the default's model decides (rules 3 to 5). ``given``: the explicit
    settings; a window, stride or batch size given there is used for the steps and n it implies
    (the stride keeps the recipe's ratio to the window unless it is given too)."""
    if preset is not None:
        require_one_of(preset, PRESETS, "preset")
        return Recipe(preset, f"--preset {preset}", dict(PRESETS[preset]))
    if model is None or model == DEFAULT_MODEL:
        return Recipe("default", "the embedded default (no --model, or its own model)", dict(PRESETS["default"]))
    assert facts is not None, "rules 3 to 5 need the model's facts"
    if facts.kind == "ngram":
        values = dict(PRESETS["default"], model=model,
                      intrinsic_dim=min(PRESETS["default"]["intrinsic_dim"], max(1, 4 * facts.params // 5)))
        return Recipe("ngram", f"an n-gram model of {facts.params:,} weights: the default's recipe", values)
    name = recipe_name(None, model, facts.kind, facts.device)
    values = dict(RECIPES[name], model=model)
    given = {k: v for k, v in (given or {}).items() if v is not None}
    per_window = values["window"] // values["stride"]  # windows overlap this many times (1: not at all)
    if "window" in given:
        values["window"] = given["window"]
    elif facts.context is not None and values["window"] > facts.context - int(facts.prefixed):
        values["window"] = (facts.context - int(facts.prefixed)) // per_window * per_window
    values["stride"] = given.get("stride", max(1, values["window"] // per_window))
    values["batch_size"] = given.get("batch_size", values["batch_size"])
    if facts.kind == "pretrained":
        values["intrinsic_dim"] = max(MIN_PRETRAINED_DIM, min(values["intrinsic_dim"],
                                                              facts.train_tokens // TOKENS_PER_COORDINATE))
    budget = BUDGETS[facts.device]
    step_tokens = values["batch_size"] * values["window"]
    steps = int(budget.train_flops // (6 * facts.params * step_tokens))
    values["max_steps"] = max(MIN_STEPS, min(MAX_STEPS[facts.device], steps))
    values["warmup_steps"] = min(values["warmup_steps"], max(1, values["max_steps"] // 10))
    affordable_windows = budget.eval_flops / (2 * facts.params * values["window"])  # a unit costs one window
    if facts.train_tokens / values["stride"] <= ALL_UNITS_FACTOR * affordable_windows:
        values["n_samples"], scoring = "all", "every training token scored"
    else:
        values["n_samples"] = max(MIN_SAMPLES, int(affordable_windows))
        scoring = f"n = {values['n_samples']:,} units"
    reason = (f"a {'pretrained' if facts.kind == 'pretrained' else 'seeded'} model of {facts.params / 1e6:,.1f}M "
              f"parameters on {facts.device}: SubLoRA with d = {values['intrinsic_dim']:,}, {values['max_steps']} steps "
              f"of {step_tokens:,} tokens, "
              f"{scoring} (the {facts.device} budget: {budget.train_flops:.2g} training and {budget.eval_flops:.2g} "
              "evaluation FLOPs)")
    return Recipe(name, reason, values)


def recipe_config(recipe: Recipe, overrides: dict) -> RunConfig:
    """The recipe's settings with the explicit flags (``overrides``, None values ignored) on top."""
    if recipe.name in PRESETS:
        return preset_config(recipe.name, **{**overrides, "recipe_reason": recipe.reason})
    values = dict(recipe.values, preset=recipe.name, recipe_reason=recipe.reason)
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = RunConfig(**values)
    cfg.validate()
    return cfg
