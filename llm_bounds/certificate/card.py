"""A certificate as a section of a model card (``llm-bounds card RUN_DIR``, ``Certificate.card()``).

:func:`model_card` is a pure function of the certificate's dictionary: the YAML metadata block in
the Hugging Face model card's ``model-index`` form (between ``---`` lines, so the output is itself
a valid model card), then a Markdown section: the bound and what it assumes in words, its
decomposition and every charge, the data statement, the joint-claims statement, and how to verify
it. It reads the certificate generically: the grids charged in K, the decomposition's rows and any
top-level object with a ``statement`` are shown as the certificate lists them, so parts a later
version adds appear without a change here. Local paths are shown by their last component only (a
published card should not carry the folders of the machine that ran it).

Units: bits per token and bits per byte, as in the certificate.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from llm_bounds.certificate.summary import CERTIFIED_STATEMENT, from_objects, tuning_sentence
from llm_bounds.subspace.registry import is_object_name


def _f(x, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def dataset_entry(config: dict) -> dict:
    """The ``dataset`` of a model-index result: ``hf:NAME[:CONFIG[:SPLIT]]`` as the hub dataset it
    names, ``kjv`` as the embedded Bible, a file or folder by its last component."""
    dataset = str(config.get("dataset", ""))
    if dataset.startswith("hf:"):
        parts = dataset[3:].split(":")
        entry = {"name": parts[0], "type": parts[0]}
        entry.update({k: v for k, v in zip(("config", "split"), parts[1:]) if v})
    elif dataset == "kjv":
        entry = {"name": "King James Bible (the copy embedded in llm-bounds)", "type": "kjv"}
    else:
        entry = {"name": Path(dataset).name, "type": Path(dataset).stem or Path(dataset).name}
    if config.get("dataset_unseen_by_weights"):
        entry["name"] += " (stated unseen by the pretrained weights)"
    return entry


def shown_dataset(config: dict) -> str:
    """The dataset as a published card shows it (a local path by its last component)."""
    dataset = str(config.get("dataset", ""))
    return dataset if dataset == "kjv" or dataset.startswith("hf:") else Path(dataset).name


def model_index(cert: dict, name: str | None = None) -> dict:
    """The ``model-index`` metadata of the certificate: one text-generation result with the
    certified bounds (each with the δ it holds at), the quantized empirical loss they bound, and
    the held-out loss (measured, not a bound)."""
    config, claims = cert.get("config") or {}, cert.get("claims") or {}
    args = {"delta": cert["delta"], "joint_claims": bool(claims.get("joint", False)),
            "delta_each": claims.get("delta_each", cert["delta"])}
    metrics = [
        {"type": "bits_per_byte_bound", "value": cert["bound_bits_per_byte"], "args": args,
         "name": f"Certified bound on the smoothed log-loss, bits per byte (probability >= 1 - {cert['delta']:g})"},
        {"type": "bits_per_token_bound", "value": cert["bound_bpd"], "args": args,
         "name": f"Certified bound on the smoothed log-loss, bits per token ({cert['tokenizer']} tokens)"},
        {"type": "bits_per_byte", "value": cert["empirical_bits_per_byte"],
         "name": "Empirical smoothed log-loss of the compressed model on the training sample, bits per byte"},
    ]
    if cert.get("top1_error_bound") is not None:
        metrics.append({"type": "top1_error_bound", "value": cert["top1_error_bound"], "args": args,
                        "name": "Certified bound on the top-1 next-token error rate"})
    if cert.get("heldout_bits_per_byte") is not None:
        metrics.append({"type": "bits_per_byte", "value": cert["heldout_bits_per_byte"],
                        "name": "Held-out log-loss of the compressed model, bits per byte (measured, not a bound)"})
    model = name or cert.get("model", "model")
    return {"model-index": [{"name": model, "results": [
        {"task": {"type": "text-generation", "name": "Text generation"},
         "dataset": dataset_entry(config), "metrics": metrics}]}]}


def _scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def yaml_lines(value, indent: int = 0) -> list[str]:
    """``value`` (dicts, lists and scalars) as block YAML, strings double-quoted."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                lines.append(f"{pad}{k}:")
                lines += yaml_lines(v, indent if isinstance(v, list) else indent + 2)
            else:
                lines.append(f"{pad}{k}: {_scalar(v) if not isinstance(v, (dict, list)) else '{}' if isinstance(v, dict) else '[]'}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            sub = yaml_lines(item, indent + 2) if isinstance(item, (dict, list)) else [pad + "  " + _scalar(item)]
            lines += [pad + "- " + sub[0].lstrip()] + sub[1:]
        return lines
    return [pad + _scalar(value)]


def _statements(cert: dict) -> list[tuple[str, str]]:
    """Every top-level object with a ``statement``, joint claims first, others in the certificate's order."""
    found = [(k, v["statement"]) for k, v in cert.items()
             if isinstance(v, dict) and isinstance(v.get("statement"), str)]
    return sorted(found, key=lambda kv: kv[0] != "claims")


def _charges(cert: dict) -> list[str]:
    """Every charge of the bound: the bits of K by part, the α grid, and how δ is spent."""
    nll = cert["terms"]["token"]["nll"]
    K = cert["terms"]["complexity"]
    per_byte = cert["m"] / cert["m_bytes"]
    lines = [f"- the message: {K['message_bits']} bits (`message.bin`, {cert['message_bytes']} bytes)",
             f"- its length prefix (Elias-delta): {K['length_prefix_bits']} bits"]
    for grid, count in (K.get("hyperparameters") or {}).items():
        if count > 1:  # a grid of one value costs nothing
            lines.append(f"- {grid.replace('_', ' ')}, chosen among {count}: {math.log2(count):.2f} bits")
    if nll.get("grid_bits"):
        lines.append(f"- the smoothing weight α = {nll['alpha']}, chosen from a grid after evaluation: "
                     f"{nll['grid_bits']:.2f} bits")
    total = nll.get("total_bits", K["total_bits"])
    lines.append(f"- in all K = {total:.1f} bits, whose complexity term ({nll['complexity_method']}) is "
                 f"{_f(cert['complexity_term_bpd'])} bits per token ({_f(cert['complexity_term_bpd'] * per_byte)} "
                 f"per byte)")
    if cert.get("every_unit_evaluated"):
        lines.append(f"- no subsample term: every one of the {cert['n']} units of the training split was scored")
    else:
        lines.append(f"- the subsample term ({nll['subsample_method']}, n = {cert['n']} sampled units of "
                     f"m = {cert['m']} tokens): {_f(cert['subsample_term_bpd'])} bits per token "
                     f"({_f(cert['subsample_term_bpd'] * per_byte)} per byte)")
    split = [f"complexity {nll['delta_complexity']:.3g}"]
    if nll.get("delta_subsample"):
        split.append(f"subsample {nll['delta_subsample']:.3g}")
    if nll.get("delta_variance"):
        split.append(f"centred second moment {nll['delta_variance']:.3g}")
    lines.append(f"- δ = {nll['delta']:.4g} for this bound, spent on: {', '.join(split)}")
    return lines


def _data_statement(cert: dict) -> list[str]:
    config, data, w = cert.get("config") or {}, cert.get("data") or {}, cert.get("weights") or {}
    dataset = shown_dataset(config)
    lines = [f"Certified on `{dataset}`: {data.get('train_documents', '?')} training documents "
             f"({data.get('train_bytes', cert['m_bytes'])} bytes), {data.get('heldout_documents', '?')} held out "
             f"(fraction {config.get('heldout_fraction', '?')}, drawn from seed {cert['seed']}); content sha256 "
             f"`{cert['data_content_hash']}`. The bound concerns text drawn as this training split was, not other text."]
    if config.get("dataset_unseen_by_weights"):
        lines.append(f"**Unseen data.** The user stated (`--unseen-dataset`) that the pretrained weights were never "
                     f"trained on `{dataset}`; the bound rests on that statement.")
    if w.get("assumption"):
        lines.append(f"**Pretrained weights.** {w['assumption']}")
    elif w.get("init") == "scratch":
        lines.append(f"**Weights.** The base model is a seeded random init (seed {w.get('seed')}), fixed before any "
                     "data was seen: the prior assumes nothing about the data.")
    return lines


def model_card(cert: dict, run_dir: str = "RUN_DIR", name: str | None = None) -> str:
    """The model-card section of certificate ``cert`` (written to ``run_dir``): the YAML
    ``model-index`` block between ``---`` lines, then the Markdown. ``name``: the model's name in
    the metadata (default: the certificate's model)."""
    config = cert.get("config") or {}
    model = name or cert.get("model", "model")
    w = cert.get("weights") or {}
    out = ["---"] + yaml_lines(model_index(cert, name)) + ["---", ""]
    what = "a model object held in memory" if is_object_name(cert.get("model")) else f"`{cert.get('model')}`"
    verdict = "non-vacuous" if cert["bound_bpd"] < cert["random_guess_bpd"] else "vacuous"
    out += ["## Generalization bound (llm-bounds)", "",
            f"With probability at least 1 − {cert['delta']:g} over the training data and the evaluation sample, "
            f"**{model}**, compressed to a {cert['message_bytes']}-byte message, has an expected smoothed log-loss "
            f"of at most **{_f(cert['bound_bits_per_byte'])} bits per byte** ({_f(cert['bound_bpd'])} bits per "
            f"token of the `{cert['tokenizer']}` tokenizer) on text like the training split of "
            f"`{shown_dataset(config)}`; a uniform guess scores {_f(cert.get('random_guess_bits_per_byte'))} bits per "
            f"byte, so the bound is {verdict}. The top-1 next-token error is at most "
            f"{_f(cert.get('top1_error_bound'))}.", "",
            "### What it assumes", "",
            f"- {CERTIFIED_STATEMENT}",
            f"- The model certified is the one the message decodes to: {what} "
            f"({'pretrained' if w.get('init') == 'pretrained' else 'seeded'} base weights) plus an update in a "
            f"random subspace of d = {cert['intrinsic_dim']} coordinates (weights it moves: {cert['subspace_params']}), "
            "quantized to "
            f"{cert['levels']} levels. The loss is smoothed: the prediction mixed with a uniform guess, "
            f"−log2((1 − α)·p + α/V) with α = {cert['alpha']} and V = {cert['vocab_size']}.",
            f"- {tuning_sentence(cert)}", ""]
    out += ["### Decomposition (token level, smoothed log-loss)", "",
            "| stage | bits per token | bits per byte |", "|---|---|---|"]
    out += [f"| {r['stage']} | {_f(r.get('bpd'))} | {_f(r.get('bits_per_byte'))} |" for r in cert.get("decomposition", [])]
    out += ["", "Charges:", ""] + _charges(cert) + [""]
    out += ["### Data", ""] + [x for line in _data_statement(cert) for x in (line, "")]
    out += ["### Claims", ""]
    for key, text in _statements(cert):
        label = "Joint claims" if key == "claims" else key.replace("_", " ").capitalize()
        out += [f"**{label}.** {text}", ""]
    folder = Path(run_dir).name or "RUN_DIR"
    out += ["### Verify it", "",
            f"`message.bin` ({cert['message_bytes']} bytes, sha256 `{cert['message_sha256']}`) and "
            f"`certificate.json` (version {cert['certificate_version']}) in `{folder}/` re-derive every number above: "
            "the verifier decodes the message, rebuilds the model, re-draws the sample from the seed and recomputes "
            "every term with the same code.", ""]
    if from_objects(cert):
        out += ["```python", "import llm_bounds", "",
                f"llm_bounds.verify({folder!r}, model=obj, tokenizer=tok)  # the same objects, checked by their hash",
                "```"]
    else:
        out += [f"With llm-bounds installed (a version that verifies version-{cert['certificate_version']} "
                "certificates):", "", "```", f"llm-bounds verify {folder}/certificate.json",
                f"# or, in a clone of llm-bounds: python scripts/verify.py {folder}/certificate.json", "```"]
    return "\n".join(out) + "\n"
