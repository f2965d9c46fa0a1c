"""SubLoRA: LoRA weights re-parameterized as theta = theta0 + P z, training only z.

theta0 (the D initial LoRA numbers), P (a seeded random projection, see ``projectors``) and the
base model are all deterministic functions of :class:`SubLoRAConfig`, so the trained hypothesis is
named by (config, z) alone and only z costs bits. ``SubLoRAModel`` computes theta in fp32 (also
under autocast) and runs the adapted model with ``torch.func.functional_call``; its only
trainable parameter is ``z``.

With ``update_scales="tensor"`` the last k entries of z (k = number of weight tensors in the
subspace) are log-scales of each tensor's share of the projected update, the structure-aware
intrinsic dimension of Aghajanyan et al. (2021, "SAID"):

    theta_t = theta0_t + exp(u_t) * (P w)_t,       z = (w, u),  w in R^(d-k),  u in R^k.

At z = 0 this is theta0 (u = 0 gives scale 1). The scales cost bits like any other entry of z.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from llm_bounds.core.errors import dataclass_from_dict, require, require_one_of

from llm_bounds.subspace.lora import (DEFAULT_TARGETS, SUBSPACE_PARAMS, attach_lora, embeddings_tied, lora_targets,
                                     subspace_parameters)
from llm_bounds.subspace.projectors import DEFAULT_PROJECTOR, PROJECTORS, check_dims, make_projector
from llm_bounds.subspace.model_size import check_model_memory
from llm_bounds.subspace.registry import build_base_model

UPDATE_SCALES = ("none", "tensor")


@dataclass
class SubLoRAConfig:
    """Everything that fixes a SubLoRA model except z. JSON-serialisable via to_dict/from_dict.

    model: registry name, hub id or local directory. vocab_size: tokens in the tokenizer.
    init: "scratch" | "pretrained". seed: base-model init seed. n_positions: context in tokens
    (None: the registry default). lora_*: LoRA rank, alpha (update scale alpha/rank), dropout.
    target_modules: module names (suffix match), or ``("auto",)``: the architecture's defaults
    (:func:`llm_bounds.subspace.lora.lora_targets`); a built model's config holds the resolved names.
    intrinsic_dim: d, the length of z.
    projector: one of projectors.PROJECTORS. projection_seed: seed of P. lora_seed: seed of theta0.
    subspace_params: which weights theta covers: "lora" (SubLoRA), "lora+norms" (also LayerNorm
    gains and biases) or "all" (every weight, no adapters: the intrinsic-dimension form).
    update_scales: "none" (theta = theta0 + P z) or "tensor" (the last k entries of z are learned
    log-scales, one per weight tensor, of the projected update; see the module docstring).
    """

    model: str = "gpt2-l2-d64"
    vocab_size: int = 257
    init: str = "scratch"
    seed: int = 0
    n_positions: int | None = None
    lora_rank: int = 4
    lora_alpha: float = 32.0
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    intrinsic_dim: int = 1000
    projector: str = DEFAULT_PROJECTOR
    projection_seed: int = 0
    lora_seed: int = 0
    subspace_params: str = "lora"
    update_scales: str = "none"

    def __post_init__(self):
        if isinstance(self.target_modules, str):
            self.target_modules = (self.target_modules,)
        self.target_modules = tuple(self.target_modules)

    def to_dict(self) -> dict:
        """A plain JSON-serialisable dict (tuples become lists)."""
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SubLoRAConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a typo would silently change P)."""
        return dataclass_from_dict(cls, d, "SubLoRAConfig keys")


class SubLoRAModel(nn.Module):
    """A causal LM whose LoRA weights are theta0 + P z. The only trainable parameter is ``z`` ([d]).

    ``forward(input_ids [B,T]) -> logits [B,T,V]`` (unnormalised, natural-log scale).
    ``eval()``/``train()`` reach every submodule (the LM, its dropouts and LoRA dropouts).
    """

    def __init__(self, config: SubLoRAConfig, lm: nn.Module):
        super().__init__()
        self.config = config
        self.lm = lm
        named = subspace_parameters(lm, config.subspace_params)
        self._names = [n for n, _ in named]
        self._shapes = [tuple(p.shape) for _, p in named]
        self._sizes = [p.numel() for _, p in named]
        D = sum(self._sizes)
        check_dims(D, config.intrinsic_dim)
        self.n_scales = len(self._sizes) if config.update_scales == "tensor" else 0
        require(config.intrinsic_dim > self.n_scales,
                f"intrinsic dimension d={config.intrinsic_dim} leaves no room for the projection next to "
                f"{self.n_scales} per-tensor scales; pass d > {self.n_scales} or update_scales='none'")
        self.register_buffer("theta0", torch.cat([p.detach().reshape(-1) for _, p in named]).float())
        self.register_buffer("_size_t", torch.tensor(self._sizes, dtype=torch.long), persistent=False)
        for p in lm.parameters():
            p.requires_grad_(False)
        self.projector = make_projector(config.projector, D, config.intrinsic_dim - self.n_scales,
                                        config.projection_seed)
        self.z = nn.Parameter(torch.zeros(config.intrinsic_dim, dtype=torch.float32))

    @property
    def D(self) -> int:
        """Number of LoRA parameters (the length of theta)."""
        return self.theta0.numel()

    @property
    def d(self) -> int:
        """Intrinsic dimension (the length of z)."""
        return self.z.numel()

    def theta(self) -> torch.Tensor:
        """The flat subspace weights theta0 + P z (or theta0 + exp(u) * P w with per-tensor scales),
        fp32, shape [D], differentiable in z."""
        with torch.autocast(device_type=self.z.device.type, enabled=False):
            if not self.n_scales:
                return self.theta0 + self.projector(self.z)
            w, u = self.z[:-self.n_scales], self.z[-self.n_scales:]
            scale = torch.repeat_interleave(torch.exp(u), self._size_t, output_size=self.D)
            return self.theta0 + scale * self.projector(w)

    def lora_tensors(self) -> dict[str, torch.Tensor]:
        """theta split into the LoRA matrices, by parameter name of ``self.lm``."""
        pieces = torch.split(self.theta(), self._sizes)
        return {n: t.view(s) for n, t, s in zip(self._names, pieces, self._shapes)}

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, V] for token ids [B, T]."""
        out = torch.func.functional_call(self.lm, self.lora_tensors(), args=(),
                                         kwargs={"input_ids": input_ids, "use_cache": False})
        return out.logits

    @torch.no_grad()
    def set_z(self, z: torch.Tensor) -> None:
        """Load z exactly (e.g. a decoded, quantized z); cast to float32 on z's device."""
        z = torch.as_tensor(z)
        require(z.shape == (self.d,), f"z must have shape ({self.d},), got {tuple(z.shape)}")
        require(bool(torch.isfinite(z).all()), "z has NaN or infinite entries; pass a finite vector")
        self.z.copy_(z.to(device=self.z.device, dtype=torch.float32))

    def embeddings_tied(self) -> bool:
        """True if input embedding and output head still share one base weight tensor."""
        return embeddings_tied(self.lm)


def validate_config(config: SubLoRAConfig) -> None:
    """Cheap checks before any model is built (unknown projector, d < 1, bad LoRA settings)."""
    require_one_of(config.subspace_params, SUBSPACE_PARAMS, "subspace parameter set")
    require_one_of(config.update_scales, UPDATE_SCALES, "update scales")
    require_one_of(config.projector, PROJECTORS, "projector")
    require(float(config.intrinsic_dim) == int(config.intrinsic_dim) and int(config.intrinsic_dim) >= 1,
            f"intrinsic dimension d must be >= 1, got {config.intrinsic_dim!r}; pass e.g. intrinsic_dim=1000")
    require(int(config.lora_rank) >= 1, f"lora_rank must be >= 1, got {config.lora_rank!r}; the paper uses 4")


def build_lora_lm(config: SubLoRAConfig, base: nn.Module | None = None) -> tuple[nn.Module, SubLoRAConfig]:
    """The base model of ``config`` (or ``base``, already built from it: adapters are injected into
    it in place) with plain (trainable) peft LoRA adapters, theta = theta0, and the config with its
    LoRA targets resolved (``auto`` → the architecture's module names)."""
    if base is None:
        check_model_memory(config.model, config.init, config.vocab_size, config.subspace_params)
        base = build_base_model(config.model, config.vocab_size, init=config.init, seed=config.seed,
                                n_positions=config.n_positions)
    if config.subspace_params == "all":
        return base, config  # every weight is in the subspace: no adapters needed
    config = replace(config, target_modules=lora_targets(base, config.target_modules))
    return attach_lora(base, config.lora_rank, config.lora_alpha, config.lora_dropout,
                       config.target_modules, seed=config.lora_seed), config


def build_sublora(config: SubLoRAConfig, base: nn.Module | None = None) -> SubLoRAModel:
    """Build the SubLoRA model of ``config`` on the CPU, in eval mode, with z = 0; its ``config``
    names the LoRA targets it got. ``base``: the base model of ``config``, when it is already
    loaded (it becomes part of the result: pass a fresh one)."""
    validate_config(config)
    lm, config = build_lora_lm(config, base)
    return SubLoRAModel(config, lm).eval()
