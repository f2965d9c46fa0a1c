"""Human-readable views of a certificate: the console table and ``summary.md``."""
from __future__ import annotations

from llm_bounds.certificate.tracking import checkpoints_section
from llm_bounds.data.baselines import COMPRESSORS
from llm_bounds.subspace.registry import is_object_name


CERTIFIED_STATEMENT = ("With probability at least 1 − δ over the training data and the evaluation sample, the average "
                       "conditional expected smoothed loss of the decoded model at the training contexts is at most the "
                       "token-level bound (Lotfi et al., NeurIPS 2024). "
                       "The document-level bound assumes the documents are i.i.d. (Lotfi et al., ICML 2024).")


def _f(x, digits=4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def result_rows(cert: dict) -> list[tuple[str, str, str]]:
    """(quantity, token level, document level) rows of the headline table."""
    doc = "doc_bound_bpd" in cert
    rows = [
        ("bound, bits per token", _f(cert["bound_bpd"]), _f(cert.get("doc_bound_bpd")) if doc else "—"),
        ("bound, bits per byte", _f(cert["bound_bits_per_byte"]), "—"),
        ("empirical (quantized), bits per token", _f(cert["empirical_bpd"]),
         _f(cert.get("doc_empirical_bpd")) if doc else "—"),
        ("random guess log2 V, bits per token", _f(cert["random_guess_bpd"]), _f(cert["random_guess_bpd"])),
        ("complexity: message bits (total K)", f"{cert['message_bits']} ({cert['complexity_bits']:.1f})", ""),
    ]
    for k in (1, 10, 100):
        rows.append((f"top-{k} error bound (empirical)",
                     f"{_f(cert[f'top{k}_error_bound'])} ({_f(cert[f'top{k}_error_empirical'])})",
                     f"{_f(cert.get(f'doc_top{k}_error_bound'))} ({_f(cert.get(f'doc_top{k}_error_empirical'))})"
                     if doc else "—"))
    rows.append(("held-out loss, bits per token (per byte)",
                 f"{_f(cert['heldout_bpd'])} ({_f(cert.get('heldout_bits_per_byte'))})", ""))
    zero = (cert.get("informational") or {}).get("zero_shot")
    if zero:
        rows.append(("held-out loss before training (zero-shot), bits per token (per byte)",
                     f"{_f(zero['heldout_bpd'])} ({_f(zero.get('heldout_bits_per_byte'))})", ""))
    return rows


def format_table(cert: dict) -> str:
    """The console table printed at the end of ``scripts/bound.py``."""
    rows = [("quantity", "token level", "document level")] + result_rows(cert)
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.insert(1, "-+-".join("-" * x for x in w))
    verdict = "NON-VACUOUS" if cert["bound_bpd"] < cert["random_guess_bpd"] else "vacuous"
    lines.append(f"token-level bound: {cert['bound_bpd']:.4f} bits/token = {cert['bound_bits_per_byte']:.4f} "
                 f"bits/byte vs {cert['random_guess_bpd']:.4f} for a random guess: {verdict} "
                 f"(δ = {cert['delta']}, α = {cert['alpha']}, {cert['complexity_method']})")
    if cert.get("checkpoints"):
        step = (cert.get("informational") or {}).get("checkpoints", {}).get("reported_step")
        lines.append(f"chosen among {cert['checkpoints']['count']} checkpoints by the bound (charged): "
                     f"{'the untrained model (z = 0)' if cert['checkpoints']['reported_untrained'] else 'a trained one'}"
                     f"{'' if step is None else f', step {step}'}; see summary.md")
    if cert.get("weights", {}).get("assumption"):
        lines.append("assumes the pretrained weights never saw this data: see summary.md")
    return "\n".join(lines)


def tuning_sentence(cert: dict) -> str:
    """What the certificate charges for the choice of its configuration."""
    t = cert["tuning_charge"]
    preset, user = t.get("preset_tuning", 1), t["configs_compared"]
    if preset * user <= 1:
        return ("**Tuning.** No charge for choosing this configuration (`--configs-compared 1`): the number is valid "
                "only if the configuration was fixed before this data was looked at.")
    parts = ([f"the recipe's own values were chosen among up to {preset} configurations compared on this kind of "
              "data"] if preset > 1 else []) + \
            ([f"you compared {user} configurations (`--configs-compared {user}`)"] if user > 1 else [])
    return (f"**Tuning.** {'; '.join(parts).capitalize()}: {t['bits']:.2f} bits are charged in K (each compared "
            f"configuration counted as one of a list fixed in advance), and every subsample δ is split "
            f"{t['subsample_delta_split']} ways.")


def from_objects(cert: dict) -> bool:
    """True when the certificate's model or tokenizer was an object held in memory (which only the
    Python entry point can hand to the verifier)."""
    config = cert.get("config") or {}
    return any(is_object_name(config.get(k)) for k in ("model", "tokenizer"))


def verify_instruction(cert: dict, path: str = "certificate.json") -> str:
    """How to verify the certificate at ``path``, as the end of "Check it ...": the command line, or
    for a certificate of objects the Python call that hands the verifier the same objects."""
    if from_objects(cert):
        folder = "RUN_DIR" if path == "certificate.json" else path.removesuffix("/certificate.json")
        return f"from Python with the same objects: `llm_bounds.verify('{folder}', model=obj, tokenizer=tok)`"
    return f"with `python scripts/verify.py {path}`"


def render_summary(cert: dict) -> str:
    """``summary.md``: the headline table, where the bits go, and what the numbers assume."""
    out = [f"# Generalization bound: {cert['model']} on {cert['dataset']} ({cert['tokenizer']} tokens)", ""]
    if cert.get("sample_stream") == "tuning":
        out += ["**Tuning run.** The samples come from the tuning stream: compare configurations with runs like this "
                "one, then certify the chosen configuration once without `--tuning` and with `--configs-compared N`. "
                "Do not quote this number as the certificate of a configuration chosen by comparing it.", ""]
    out += ["| quantity | token level | document level |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in result_rows(cert)]
    w = cert.get("weights", {})
    if w.get("assumption"):
        out += ["", f"**Assumption (pretrained weights).** {w['assumption']}"]
    out += ["", "## Where the bits go (token level, smoothed log-loss)", "",
            "| stage | bits per token | bits per byte |", "|---|---|---|"]
    for row in cert.get("decomposition", []):
        out.append(f"| {row['stage']} | {_f(row['bpd'])} | {_f(row['bits_per_byte'])} |")
    out += checkpoints_section(cert)
    quant = cert.get("informational", {}).get("quantization")
    if quant:
        out += ["", f"Quantization (not certified; the first {quant['units']} units of the sample): the unquantized z "
                    f"scores {_f(quant['fp32_empirical_bpd'])} bits per token ({_f(quant['fp32_empirical_bits_per_byte'])} "
                    f"per byte), its decoded message {_f(quant['quantized_empirical_bpd'])} "
                    f"({_f(quant['quantized_empirical_bits_per_byte'])} per byte) on the same units."]
    baselines = cert.get("baseline_bits_per_byte")
    if baselines:
        out += ["", "## Beside classical compressors (the same scored training bytes)", "",
                "| | bits per byte |", "|---|---|",
                f"| certified bound (this model) | {_f(cert['bound_bits_per_byte'])} |"]
        out += [f"| {name} | {_f(baselines[name])} |" for name in COMPRESSORS if name in baselines]
        out += ["", f"The compressors code these {baselines['bytes']} bytes themselves (Python's standard library, "
                    "container headers included); they are no bound on new text, but a model that does not beat them "
                    "has learned less than they find. Informational: the verifier does not re-derive them."]
    nll = cert["terms"]["token"]["nll"]
    K = cert["terms"]["complexity"]
    out += ["", "## Terms", "",
            f"- complexity K = {K['total_bits']:.1f} bits: message {K['message_bits']} + length prefix "
            f"{K['length_prefix_bits']} + hyperparameters {K['hyperparameter_bits']:.2f} "
            f"({', '.join(f'{k}: {v} choices' for k, v in K['hyperparameters'].items())}), plus "
            f"{nll['grid_bits']:.2f} bits for the α grid",
            f"- m = {cert['m']} scored training tokens ({cert['m_bytes']} bytes); "
            + (f"every one of the {cert['n']} units evaluated (no subsample term)" if cert.get("every_unit_evaluated")
               else f"n = {cert['n']} sampled units"),
            f"- δ = {cert['delta']}" + (f", split over {nll['method_union']} compared methods" if nll['method_union'] > 1
                                         else "") +
            f"; the chosen one spends: complexity {nll['delta_complexity']:.3g}, subsample "
            f"{nll['delta_subsample']:.3g} (split {nll['subsample_union']} ways over grids and inequalities), "
            f"centred second moment {nll['delta_variance']:.3g}",
            f"- loss range Δ = {nll['loss_range']:.3f} bits at α = {nll['alpha']}; complexity term by "
            f"{nll['complexity_method']}, subsample term by {nll['subsample_method']}",
            f"- informational, not a claim: the same data with Hoeffding in every term gives "
            f"{cert['bound_bpd_hoeffding']:.4f} bits per token (at δ = {cert['claims']['delta_each']:g}; not one of the "
            f"{cert['claims']['count']} reported bounds, and the joint-claims statement below does not cover it)",
            "",
            "## What is certified",
            "",
            CERTIFIED_STATEMENT,
            "",
            f"**Joint claims.** {cert['claims']['statement']}",
            "",
            tuning_sentence(cert),
            "",
            f"Message: `message.bin`, {cert['message_bytes']} bytes, sha256 `{cert['message_sha256']}`. "
            f"Check it {verify_instruction(cert)}."]
    if w.get("source") == "object":
        out += ["", f"Weights: a model object held in memory, its state as given sha256 `{w.get('object_sha256')}` "
                    f"(with the adapters: `{w.get('sha256')}`)."]
    elif w.get("init") == "pretrained":
        gguf = f", GGUF file sha256 `{w['gguf_sha256']}` dequantized to {w['dequantized_dtype']}" if "gguf_sha256" in w else ""
        out += ["", f"Weights: {w.get('source')}, state sha256 `{w.get('sha256')}`{gguf}."]
    if w.get("lora_targets"):
        out += [f"LoRA targets: {', '.join(w['lora_targets'])}"
                f"{' (the output head is tied to the input embedding)' if w.get('output_head_tied') else ''}."]
    return "\n".join(out) + "\n"
