"""LoRA adapters via peft, initialised from an explicit CPU generator.

``attach_lora`` returns the base model with LoRA layers injected, in which only the LoRA matrices
require gradients. Defaults follow Lotfi et al. (2024): rank 4, alpha 32, adapters on the attention
projections and on the output head. ``target_modules=("auto",)`` (the default) picks them per
architecture (:func:`lora_targets`): peft's own per-model-type defaults (GPT-2 ``c_attn``, Llama and
Qwen2 ``q_proj, v_proj``, GPT-NeoX ``query_key_value``, ...) plus the output head under its own
name (``lm_head``, GPT-NeoX ``embed_out``); this tool's own n-gram model gets ``fc, proj`` and its
``head``. An adapter on a tied output head leaves the base weights
tied: ``lm_head.base_layer.weight`` *is* the token embedding, and only the output path gets the
low-rank update.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from llm_bounds.core.errors import BoundInputError, require
from llm_bounds.core.seeds import cpu_generator

AUTO = "auto"
DEFAULT_TARGETS = (AUTO,)
OWN_DEFAULTS = {"nplm": ("fc", "proj")}   # architectures peft does not know: this package's own models


def module_matches(module_name: str, target: str) -> bool:
    """peft's rule for a string target: the module's full name equals it or ends with ``.target``."""
    return module_name == target or module_name.endswith("." + target)


def output_head_name(model: nn.Module) -> str | None:
    """The module name of the output head (``lm_head``, ``embed_out``, ...), None if it has none."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return next((n for n, m in model.named_modules() if m is head), None) if head is not None else None


def lora_targets(model: nn.Module, targets=DEFAULT_TARGETS) -> tuple[str, ...]:
    """The LoRA target module names for ``model``: ``targets`` itself, or for ``("auto",)`` peft's
    default targets for the model's ``config.model_type`` followed by the output head's name.

    Raises BoundInputError for an architecture peft has no defaults for, listing what to pass.
    """
    targets = tuple(targets)
    if targets != (AUTO,):
        require(AUTO not in targets, f"'auto' cannot be combined with other LoRA targets, got {list(targets)}; "
                                     "pass 'auto' alone or a list of module names")
        return targets
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    model_type = getattr(getattr(model, "config", None), "model_type", None)
    found = OWN_DEFAULTS.get(model_type) or PEFT_DEFAULTS.get(model_type)
    if found is None:
        raise BoundInputError(f"peft has no default LoRA targets for model type {model_type!r}; pass "
                              f"--lora-targets with module names among {', '.join(leaf_module_names(model))}")
    head = output_head_name(model)
    return tuple(found) + ((head,) if head is not None and head not in found else ())


def leaf_module_names(model: nn.Module) -> list[str]:
    """The distinct last name components of modules that hold weights (what a target can name)."""
    return sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                   if n and not list(m.children()) and any(True for _ in m.parameters(recurse=False))})


def check_target_modules(model: nn.Module, targets) -> None:
    """Raise BoundInputError if some target names no module of ``model``, listing valid names."""
    require(len(targets) >= 1, "target_modules is empty; pass e.g. ('c_attn', 'lm_head')")
    names = [n for n, _ in model.named_modules() if n]
    for t in targets:
        if not any(module_matches(n, t) for n in names):
            raise BoundInputError(f"target module {t!r} does not exist in {type(model).__name__}; "
                                  f"choose among {', '.join(leaf_module_names(model))}")


@torch.no_grad()
def init_lora_weights_(model: nn.Module, seed: int) -> None:
    """Initialise every LoRA matrix in place from a CPU generator seeded by ``seed``.

    Same distributions as peft's default: A ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (Kaiming-uniform
    with a = sqrt(5)), B = 0, so the adapted model starts equal to the base model; for embedding
    adapters A = 0 and B ~ N(0, 1). Visiting order is ``named_parameters()``.
    """
    g = cpu_generator(seed, "lora-init")
    for name, p in model.named_parameters():
        if "lora_embedding_A" in name:
            p.zero_()
        elif "lora_embedding_B" in name:
            p.copy_(torch.randn(p.shape, generator=g))
        elif "lora_A" in name:
            bound = 1.0 / math.sqrt(p.shape[1])
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
        elif "lora_B" in name:
            p.zero_()


def attach_lora(base: nn.Module, rank: int = 4, alpha: float = 32, dropout: float = 0.0,
                targets=DEFAULT_TARGETS, seed: int = 0) -> nn.Module:
    """Inject LoRA layers into ``base`` (in place) and return it.

    Afterwards only the LoRA matrices require grad. ``alpha/rank`` scales the update B A.
    Raises BoundInputError for a target that does not exist, rank < 1, or dropout outside [0, 1).
    """
    from peft import LoraConfig, get_peft_model

    require(int(rank) >= 1, f"lora_rank must be >= 1, got {rank!r}; the paper uses 4")
    require(0.0 <= float(dropout) < 1.0, f"lora_dropout must lie in [0, 1), got {dropout!r}; default 0")
    targets = list(lora_targets(base, targets))
    check_target_modules(base, targets)
    config = LoraConfig(r=int(rank), lora_alpha=alpha, lora_dropout=float(dropout),
                        target_modules=targets, bias="none")
    with warnings.catch_warnings():
        # peft warns about tied lm_head (we keep the base tied on purpose) and sets
        # fan_in_fan_out itself for GPT-2's Conv1D.
        warnings.simplefilter("ignore")
        peft_model = get_peft_model(base, config)
    model = peft_model.base_model.model
    init_lora_weights_(model, seed)
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return model


SUBSPACE_PARAMS = ("lora", "lora+norms", "all")


def subspace_parameters(model: nn.Module, which: str = "lora") -> list[tuple[str, nn.Parameter]]:
    """The (name, parameter) pairs that θ = θ0 + P z re-parameterizes, in ``named_parameters()`` order.

    ``lora``: the LoRA matrices (SubLoRA, Lotfi et al. 2024). ``lora+norms``: also every LayerNorm
    gain and every bias. ``all``: every weight of the model (the intrinsic-dimension form of
    Li et al. 2018; used without LoRA adapters). Tied weights appear once (``named_parameters``
    de-duplicates shared tensors), so they stay tied.
    """
    require(which in SUBSPACE_PARAMS, f"unknown subspace parameter set {which!r}; choose one of "
                                      f"{', '.join(SUBSPACE_PARAMS)}")
    named = list(model.named_parameters())
    if which == "all":
        return named
    if which == "lora+norms":
        return [(n, p) for n, p in named if "lora_" in n or n.endswith(".bias") or ".ln_" in n or "norm" in n]
    return [(n, p) for n, p in named if "lora_" in n]


def embeddings_tied(model: nn.Module) -> bool:
    """True if the output head's base weight is the very tensor of the input embedding."""
    out = model.get_output_embeddings()
    out = getattr(out, "base_layer", out)
    return out.weight is model.get_input_embeddings().weight
