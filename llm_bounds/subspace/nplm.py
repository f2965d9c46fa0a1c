"""A neural n-gram language model: the next token from the last k tokens only.

The neural probabilistic language model of Bengio, Ducharme, Vincent and Jauvin (2003, JMLR 3),
with the output head tied to the input embedding E ([V, e]). For input ids x_1..x_T it gives, at
every position t (ids before the start of the input count as a zero embedding),

    c_t      = [E x_t ; E x_(t-1) ; ... ; E x_(t-k+1)]                       (k*e numbers)
    logits_t = E · (W_proj · gelu(W_fc · c_t + b_fc) + b_proj) + b_head      ([V], natural-log scale)

so logits_t depends on x_(t-k+1..t) and nothing else: a k+1-gram model whose few weights all act
on the context. Why it is here: a random subspace of a randomly initialised transformer spends its
d coordinates on the bigram (BENCHMARKS.md, "Fit per coded bit"); this model has a few ten
thousand weights, so d coordinates cover a large share of them, and every one of those weights
already sees the last k tokens. Names: ``nplm-k{k}-e{e}-h{h}``, e.g. ``nplm-k4-e16-h128``.

The model has no position embeddings and no context limit: a window of any length gives the same
logits at a position whose k-token context lies inside the window.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

import torch
from torch import nn

from llm_bounds.core.errors import require

_NAME_RE = re.compile(r"^nplm-k(\d+)-e(\d+)-h(\d+)$")
MODEL_TYPE = "nplm"


@dataclass
class NPLMConfig:
    """Shape of an :class:`NPLMForCausalLM`: ``vocab_size`` tokens, ``context`` k tokens seen
    (the current one included), ``embed`` e numbers per token, ``hidden`` h units."""

    vocab_size: int
    context: int
    embed: int
    hidden: int
    model_type: str = MODEL_TYPE

    def to_dict(self) -> dict:
        return asdict(self)


def parse_nplm_name(name: str) -> tuple[int, int, int] | None:
    """``nplm-k{k}-e{e}-h{h}`` -> (k, e, h), or None if ``name`` is not of that form."""
    m = _NAME_RE.match(name)
    if m is None:
        return None
    k, e, h = (int(g) for g in m.groups())
    require(k >= 1 and e >= 1 and h >= 1, f"model {name!r} needs k, e and h >= 1; use e.g. nplm-k4-e16-h128")
    return k, e, h


@dataclass
class NPLMOutput:
    """What a transformers causal LM returns, as far as this tool reads it."""

    logits: torch.Tensor


class NPLMForCausalLM(nn.Module):
    """``forward(input_ids [B, T]) -> NPLMOutput(logits [B, T, V])``; see the module docstring.

    ``head.weight`` *is* ``embed.weight`` (tied, one tensor in ``named_parameters``), so a
    subspace over every weight keeps them tied.
    """

    def __init__(self, config: NPLMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed)
        self.fc = nn.Linear(config.context * config.embed, config.hidden)
        self.proj = nn.Linear(config.hidden, config.embed)
        self.head = nn.Linear(config.embed, config.vocab_size)
        self.head.weight = self.embed.weight

    def get_input_embeddings(self) -> nn.Module:
        return self.embed

    def get_output_embeddings(self) -> nn.Module:
        return self.head

    def forward(self, input_ids: torch.Tensor, use_cache: bool | None = None) -> NPLMOutput:
        x = self.embed(input_ids)                                   # [B, T, e]
        B, T, e = x.shape
        k = self.config.context
        padded = torch.cat([x.new_zeros(B, k - 1, e), x], dim=1)    # [B, T + k - 1, e]
        # c_t = [E x_t ; E x_(t-1) ; ...]: the j-th block is the input shifted right by j
        context = torch.cat([padded[:, k - 1 - j: k - 1 - j + T] for j in range(k)], dim=-1)
        h = nn.functional.gelu(self.fc(context))
        return NPLMOutput(logits=self.head(self.proj(h)))


@torch.no_grad()
def init_nplm_weights_(model: NPLMForCausalLM, seed: int) -> NPLMForCausalLM:
    """Initialise in place from ``torch.Generator().manual_seed(seed)`` on the CPU, visiting
    ``named_parameters()`` in order: the embedding ~ N(0, 1), each linear weight ~ N(0, 1/fan_in),
    biases 0. A pure function of the shape and the seed."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()
        else:
            std = 1.0 if name == "embed.weight" else 1.0 / math.sqrt(p.shape[1])
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std)
    return model


def build_nplm(k: int, e: int, h: int, vocab_size: int, seed: int) -> NPLMForCausalLM:
    """A seeded ``nplm-k{k}-e{e}-h{h}`` over ``vocab_size`` tokens, fp32, in eval mode."""
    model = NPLMForCausalLM(NPLMConfig(vocab_size=int(vocab_size), context=k, embed=e, hidden=h))
    return init_nplm_weights_(model, seed).eval()
