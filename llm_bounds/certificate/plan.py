"""What a run is made of before anything trains: the data, the base model and the recipe, each
loaded once, and what loading them cost.

:func:`prepare` turns the command line's explicit settings (and ``--preset``, if given) into a
:class:`Prepared` run: it loads the tokenizer and the corpus, loads or builds the base model (for a
pretrained checkpoint: reads and converts its weights, once), and only then chooses the recipe
(:mod:`llm_bounds.certificate.recipe`), which needs the model's size and context and the training
set's length. The recipe never changes what was loaded (data, tokenizer, model, init, seeds), so
:meth:`llm_bounds.certificate.context.RunContext.build` builds the run on these same objects.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from torch import nn

from llm_bounds.certificate.config import RunConfig, preset_config
from llm_bounds.certificate.context import window_prefix
from llm_bounds.certificate.recipe import Facts, Recipe, choose_recipe, model_kind, recipe_config
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.certificate.supplied import Supplied
from llm_bounds.core.errors import require
from llm_bounds.core.files import require_no_symlink_loop
from llm_bounds.data.corpus import Corpus, build_corpus, load_documents
from llm_bounds.data.tokenizers import GPT2_VOCAB_SIZE, ByteTokenizer, Tokenizer, get_tokenizer
from llm_bounds.evaluation.evaluate import model_context_length
from llm_bounds.subspace.model_size import check_model_memory
from llm_bounds.subspace.registry import build_base_model, check_model_name
from llm_bounds.subspace.train import resolve_device

# the settings a recipe may not change: they decide what prepare() loads
LOADED = ("dataset", "separator", "tokenizer", "tokenizer_dir", "heldout_fraction", "seed", "model", "init",
          "dataset_unseen_by_weights")


@dataclass
class Prepared:
    """A run's resolved config and recipe, with its tokenizer, corpus and base model already loaded
    (the base model is consumed by the first :meth:`RunContext.build` that uses it)."""

    cfg: RunConfig
    recipe: Recipe
    tokenizer: Tokenizer
    corpus: Corpus
    base: nn.Module | None
    seconds: dict = field(default_factory=dict)   # loading time by part (tokenizer, corpus, model)
    object_sha256: str | None = None              # the state of a model object as the user gave it

    def take_base(self) -> nn.Module:
        """The loaded base model, once (adapters are injected into it in place)."""
        require(self.base is not None, "internal error: the prepared base model was already used")
        base, self.base = self.base, None
        return base


def log(progress: bool, msg: str) -> None:
    if progress:
        print(msg, flush=True)


def settings_check(overrides: dict, preset: str | None) -> RunConfig:
    """Every check that needs no data, before anything loads: the explicit settings on the preset
    named (or, while the recipe is not yet known, on the default's values), and no path among them
    a symlink loop."""
    cfg = preset_config(preset or "default", **overrides)
    for flag, name in (("--dataset", "dataset"), ("--model", "model"), ("--tokenizer", "tokenizer"),
                       ("--tokenizer-dir", "tokenizer_dir")):
        value = getattr(cfg, name)
        if isinstance(value, str) and value != "":
            require_no_symlink_loop(value[3:] if name == "dataset" and value.startswith("hf:") else value, flag)
    check_model_name(cfg.model, cfg.init)  # an unknown name or missing weights fail here, in seconds
    # a model too large for this machine, from its name (the vocabulary is known for bytes and GPT-2)
    # (training's share only when named: without --preset the recipe may still change it)
    vocab = {"bytes": ByteTokenizer().vocab_size, "gpt2": GPT2_VOCAB_SIZE,
             "tiktoken:gpt2": GPT2_VOCAB_SIZE}.get(cfg.tokenizer)
    named = preset is not None or "subspace_params" in overrides
    check_model_memory(cfg.model, cfg.init, vocab, cfg.subspace_params if named else None)
    return cfg


def prepare(overrides: dict, preset: str | None = None, progress: bool = True, cache: bool = True,
            supplied: Supplied | None = None, folder: RunFolder | None = None) -> Prepared:
    """Load the data and the base model once, then choose the recipe; ``cache=False`` writes no
    token cache (a dry run writes nothing). ``supplied``: a model or tokenizer object used in place
    of loading one by name (``overrides`` hold their names, :meth:`Supplied.overrides`). ``folder``:
    the run's ``--out``, whose key and certificate the data must agree with (checked before the
    model is built: :meth:`RunFolder.check_loaded`)."""
    early = settings_check(overrides, preset)
    given_model = supplied is not None and supplied.model is not None
    seconds = {}
    t = time.perf_counter()
    log(progress, f"[load] the {early.tokenizer} tokenizer")
    if supplied is not None and supplied.tokenizer is not None:
        tokenizer = supplied.tokenizer
    else:
        tokenizer = get_tokenizer(early.tokenizer, early.tokenizer_dir)
    window_prefix(early, tokenizer)  # --window-prefix bos with a tokenizer that has none fails here
    seconds["tokenizer"] = time.perf_counter() - t
    t = time.perf_counter()
    log(progress, f"[load] {early.dataset}: documents, held-out split, tokens")
    corpus = build_corpus(load_documents(early.dataset, separator=early.separator), tokenizer,
                          heldout_fraction=early.heldout_fraction, seed=early.seed_for("heldout"),
                          cache_dir=None if cache else False)
    seconds["corpus"] = time.perf_counter() - t
    if folder is not None:  # other data into an existing --out fails here, before the model is built
        folder.check_loaded(str(resolve_device(early.device)), corpus.content_hash, corpus.tokenizer_fingerprint)
    t = time.perf_counter()
    what = "reading and converting the pretrained weights" if early.init == "pretrained" else "a seeded init"
    log(progress, f"[load] {early.model}: {'a copy of the object in float32' if given_model else what}")
    if given_model:
        base = supplied.fresh_base(tokenizer.vocab_size)
    else:
        named = preset is not None or "subspace_params" in overrides
        check_model_memory(early.model, early.init, tokenizer.vocab_size, early.subspace_params if named else None)
        base = build_base_model(early.model, tokenizer.vocab_size, init=early.init, seed=early.seed_for("init"),
                                progress=progress)
    seconds["model"] = time.perf_counter() - t
    facts = Facts(kind=model_kind(early.model, early.init), params=int(sum(p.numel() for p in base.parameters())),
                  vocab_size=tokenizer.vocab_size, device=resolve_device(early.device).type,
                  context=model_context_length(base), train_tokens=corpus.num_train_tokens,
                  prefixed=window_prefix(early, tokenizer) is not None)
    recipe = choose_recipe(preset, overrides.get("model"), facts, overrides)
    cfg = recipe_config(recipe, overrides)
    changed = [k for k in LOADED if getattr(cfg, k) != getattr(early, k)]
    require(not changed, f"internal error: the recipe {recipe.name} changed {changed}")
    check_model_memory(cfg.model, cfg.init, tokenizer.vocab_size, cfg.subspace_params, built=True, params=facts.params)
    log(progress, f"[recipe] {recipe.name}: {recipe.reason}")
    return Prepared(cfg, recipe, tokenizer, corpus, base, seconds, supplied.model_sha256 if given_model else None)
