"""The memory a model needs, from its name or its files alone, checked before it is built.

A model is built in float32 on the CPU (4 bytes per parameter), so a name such as
``gpt2-l4000-d16384`` (13 trillion parameters) would otherwise fail in the allocator after the
build starts, or never finish. :func:`check_model_memory` compares the estimate with the memory
available now (:func:`llm_bounds.core.environment.available_memory_bytes`) and refuses in one line,
naming a smaller model. Nothing is allocated: the count comes from the name (ladder, GPT-2 family,
n-gram), the tensor shapes in a folder's safetensors headers, or a ``meta``-device build.

The estimate (bytes) is 4·P for the weights, plus 4·4·P when every weight is in the subspace
(``--subspace-params all``: θ0, P·z, θ and its gradient are each as long as the weights). LoRA
adapters, activations and the evaluation's buffers (checked on their own by
:func:`llm_bounds.certificate.context.check_sample_memory`) are not counted: it is a lower bound of
what a run needs, so a refusal is certain to be right.
"""
from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from llm_bounds.core.checkpoints import is_gguf_name
from llm_bounds.core.environment import available_memory_bytes
from llm_bounds.core.errors import require
from llm_bounds.subspace.nplm import parse_nplm_name
from llm_bounds.subspace.registry import (GPT2_FAMILY, LADDER, LADDER_CONTEXT, count_parameters, non_embedding_params,
                                          parse_ladder_name, resolve_offline)

FLOAT32_BYTES = 4
SUBSPACE_COPIES = {"all": 4}          # extra weight-sized float32 vectors while training every weight
SMALLER_NPLM = "nplm-k4-e16-h128"     # the default preset's model
MAX_HEADER_BYTES = 100 * 2**20


def parameters_from_name(name: str, vocab_size: int | None = None, n_positions: int | None = None) -> int | None:
    """Parameters of a ladder, GPT-2 family or n-gram model, from its name alone (a count, tied
    tensors once): exact for ``vocab_size`` tokens, and without it a lower bound (the
    vocabulary's rows left out). None for any other name."""
    nplm = parse_nplm_name(name)
    if nplm is not None:
        k, e, h = nplm
        v = vocab_size or 0
        return v * e + (k * e * h + h) + (h * e + e) + v   # embedding (= head), fc, proj, head bias
    shape = GPT2_FAMILY.get(name) or parse_ladder_name(name)
    if shape is not None:
        n_layer, n_embd, _ = shape
        if vocab_size is None:
            return non_embedding_params(n_layer, n_embd)
        ctx = n_positions or (LADDER_CONTEXT if name not in GPT2_FAMILY else 1024)
        return non_embedding_params(n_layer, n_embd) + (int(vocab_size) + int(ctx)) * n_embd
    return None


def safetensors_parameters(folder: str | Path) -> int | None:
    """Parameters stored in the ``*.safetensors`` files of ``folder``, from their headers (the
    8-byte length and the JSON of tensor shapes; no weight is read), or None without any."""
    total, found = 0, False
    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            with path.open("rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                if length > MAX_HEADER_BYTES:
                    return None
                header = json.loads(f.read(length))
            total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
            found = True
        except (OSError, ValueError, KeyError, TypeError, struct.error):
            return None
    return total if found else None


def model_parameters(name: str, init: str, vocab_size: int | None = None) -> int | None:
    """The parameter count of model ``name`` without building it (see :func:`parameters_from_name`;
    a pretrained folder: its safetensors headers; a scratch folder, with ``vocab_size``: a
    ``meta``-device build), or None when it cannot be known cheaply (a GGUF file, an uncached id)."""
    count = parameters_from_name(name, vocab_size)
    if count is not None or is_gguf_name(name):
        return count
    local = resolve_offline(name)
    if local is None:
        return None
    if init == "pretrained":
        return safetensors_parameters(local)
    return count_parameters(name, int(vocab_size), init) if vocab_size is not None else None


def memory_needed_bytes(params: int, subspace_params: str | None = None, weights: bool = True) -> int:
    """Bytes a model of ``params`` parameters needs at least: its float32 weights (unless not
    ``weights``: already built), and the weight-sized vectors of training with ``subspace_params``
    (see the module docstring)."""
    return FLOAT32_BYTES * int(params) * (int(weights) + SUBSPACE_COPIES.get(subspace_params or "", 0))


def smaller_model(name: str, vocab_size: int | None, available: int, subspace_params: str | None) -> str:
    """A model name to suggest instead of ``name``: the default's n-gram model for an n-gram model,
    else the largest size of the ladder that fits in ``available`` bytes (the smallest if none)."""
    if parse_nplm_name(name) is not None:
        return SMALLER_NPLM
    fits = [m for m in LADDER
            if memory_needed_bytes(parameters_from_name(m, vocab_size or 50257), subspace_params) <= available]
    return fits[-1] if fits else LADDER[0]


def check_model_memory(name: str, init: str = "scratch", vocab_size: int | None = None,
                       subspace_params: str | None = None, built: bool = False, params: int | None = None) -> None:
    """Refuse (:class:`~llm_bounds.core.errors.BoundInputError`, one line) a model whose memory
    (:func:`memory_needed_bytes`) exceeds the memory available now; skipped where either is unknown.
    ``built``: the weights are in memory already, only training's share is still to come.
    ``params``: the parameter count when it is known (a built model's), else
    :func:`model_parameters` finds it from the name or the files."""
    if built and not SUBSPACE_COPIES.get(subspace_params or ""):
        return
    available = available_memory_bytes()
    if available is None:
        return
    if params is None:
        params = model_parameters(name, init, vocab_size)
    if params is None:
        return
    need = memory_needed_bytes(params, subspace_params, weights=not built)
    training = " to train every weight (--subspace-params all)" if SUBSPACE_COPIES.get(subspace_params or "") else ""
    require(need <= available,
            f"model {name!r} needs at least {need / 2**30:,.1f} GiB of memory{' more' if built else ''} "
            f"({params:,} parameters as float32{training}), more than the {available / 2**30:,.1f} GiB available "
            f"now; choose a smaller model, e.g. "
            f"--model {smaller_model(name, vocab_size, available, subspace_params)}")
