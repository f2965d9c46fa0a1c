"""Objects the user holds, in place of names: a ``transformers`` causal LM and its tokenizer
(``llm_bounds.certify(model=obj, tokenizer=tok)``).

The run adapts a deep copy of the model (float32, on the CPU, in eval mode): the object itself is
never changed. Its weights are part of the prior, as a pretrained checkpoint's are (``init =
pretrained``, and the certificate states what that assumes: that they were not fitted to the data
sampled here). The certificate names the model ``object:<class>`` and records that its weights came
from an object (``weights.source = "object"``) with the sha256 of the object's state as given
(``weights.object_sha256``, :func:`~llm_bounds.subspace.registry.state_sha256`). A tokenizer object
is named ``object:<class>`` and pinned by its fingerprint (``tokenizer_fingerprint``). The verifier
re-derives such a certificate only from objects with the same hash and fingerprint
(:func:`check_supplied`), and refuses any other before doing any work.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from llm_bounds.core.errors import require
from llm_bounds.data.tokenizers import HFTokenizer
from llm_bounds.subspace.registry import is_object_name, object_name, state_sha256

VERIFY_OBJECTS = "llm_bounds.verify(path, model=obj, tokenizer=tok)"


def is_model_object(value) -> bool:
    """True for a model object (a torch module), as opposed to a name."""
    return isinstance(value, nn.Module)


def is_tokenizer_object(value) -> bool:
    """True for a tokenizer object (anything but a name or a path)."""
    return value is not None and not isinstance(value, str) and not hasattr(value, "__fspath__")


def wrap_tokenizer(tokenizer) -> HFTokenizer:
    """A ``transformers`` fast tokenizer object behind the library's interface (a copy: the
    object's own settings are left as they are)."""
    require(getattr(tokenizer, "is_fast", False) and hasattr(tokenizer, "backend_tokenizer"),
            f"tokenizer= must be a name ('bytes', 'gpt2', a Hugging Face id or folder) or a transformers fast "
            f"tokenizer object, got a {type(tokenizer).__name__}")
    return HFTokenizer(copy.deepcopy(tokenizer), object_name(tokenizer))


@dataclass
class Supplied:
    """The model and tokenizer objects of a run (either may be None: given by name instead)."""

    model: nn.Module | None = None
    tokenizer: HFTokenizer | None = None
    model_sha256: str | None = None   # the state of the model object as given

    @classmethod
    def of(cls, model=None, tokenizer=None) -> "Supplied | None":
        """The objects among ``model`` and ``tokenizer`` (None when both are names or absent)."""
        if not is_model_object(model) and not is_tokenizer_object(tokenizer):
            return None
        if model is not None and not is_model_object(model):
            require(isinstance(model, str) or hasattr(model, "__fspath__"),
                    f"model= must be a model name or a transformers causal LM object, got a {type(model).__name__}")
            model = None  # a name: the flags carry it
        if is_model_object(model):
            head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
            require(head is not None and hasattr(model, "config"),
                    f"model= must be a transformers causal LM with an output head (a PreTrainedModel such as "
                    f"GPT2LMHeadModel), got a {type(model).__name__}")
        tok = wrap_tokenizer(tokenizer) if is_tokenizer_object(tokenizer) else None
        return cls(model if is_model_object(model) else None, tok,
                   state_sha256(model) if is_model_object(model) else None)

    def overrides(self, given: dict) -> dict:
        """The settings the objects stand for (their names, and pretrained weights for a model)."""
        out = {}
        if self.model is not None:
            require(given.get("init") in (None, "pretrained"),
                    f"init={given.get('init')!r} builds a model from its name; a model object's weights are what it "
                    "holds: leave init out")
            require(given.get("tokenizer") is not None or self.tokenizer is not None,
                    "model=<object> needs its tokenizer: pass tokenizer=<the tokenizer object> or a tokenizer name "
                    "such as 'bytes' or 'gpt2'")
            out.update(model=object_name(self.model), init="pretrained")
        if self.tokenizer is not None:
            require(given.get("tokenizer_dir") is None, "tokenizer_dir= names files of a tokenizer loaded by name; "
                                                        "a tokenizer object needs none: leave it out")
            out.update(tokenizer=self.tokenizer.name)
        return out

    def fresh_base(self, vocab_size: int) -> nn.Module:
        """A copy of the model object in float32, on the CPU, in eval mode (adapters go into the copy);
        refuses a model whose output head does not match the tokenizer's ``vocab_size`` tokens."""
        got = self.model.get_output_embeddings().weight.shape[0]
        require(got == vocab_size, f"the model object has {got} output tokens but the tokenizer has {vocab_size}; "
                                   "pass the model's own tokenizer (tokenizer=)")
        return cpu_copy(self.model).eval()


def cpu_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` on the CPU, its floating-point weights in float32, made tensor by
    tensor (a model on a GPU is never copied there; tied weights stay tied: one tensor, one copy)."""
    memo = {}
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if id(tensor) in memo:
                continue
            data = tensor.detach().to("cpu", copy=True)
            data = data.float() if data.is_floating_point() else data
            memo[id(tensor)] = nn.Parameter(data, tensor.requires_grad) if isinstance(tensor, nn.Parameter) else data
        return copy.deepcopy(model, memo)


def check_supplied(supplied: Supplied | None, cert: dict, where) -> None:
    """Refuse, before any work, objects that are not the ones a certificate was computed with: a
    model object whose state has another sha256, a tokenizer object with another fingerprint, an
    object where the certificate names its model or tokenizer, or none where it needs one."""
    config = cert.get("config") or {}
    model, tok = config.get("model", ""), config.get("tokenizer", "")
    recorded = (cert.get("weights") or {}).get("object_sha256") or ""
    given_model = supplied.model if supplied is not None else None
    given_tok = supplied.tokenizer if supplied is not None else None
    if is_object_name(model):
        require(given_model is not None,
                f"{where} certifies a model object held in memory ({model}, state sha256 {recorded[:16]}…); pass the "
                f"same object: {VERIFY_OBJECTS}")
        require(supplied.model_sha256 == recorded,
                f"the model object has state sha256 {supplied.model_sha256[:16]}…, the certified one "
                f"{recorded[:16]}…: it is not the object this certificate was computed with")
    else:
        require(given_model is None, f"{where} certifies {model!r}, a model loaded by its name; leave model= out")
    if is_object_name(tok):
        require(given_tok is not None, f"{where} was computed with a tokenizer object ({tok}); pass the same "
                                       f"object: {VERIFY_OBJECTS}")
        require(given_tok.fingerprint == cert.get("tokenizer_fingerprint"),
                f"the tokenizer object has fingerprint {given_tok.fingerprint[:19]}…, the certified one "
                f"{str(cert.get('tokenizer_fingerprint'))[:19]}…: it is not the tokenizer this certificate used")
    else:
        require(given_tok is None, f"{where} names its tokenizer {tok!r}; leave tokenizer= out")
