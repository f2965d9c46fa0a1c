"""The certified model along training: one bound per checkpoint, the choice among them, ``curve.csv``.

:mod:`llm_bounds.certificate.checkpoints` says which checkpoints a run certifies and derives the
charge for choosing among them; :func:`llm_bounds.certificate.run.certified_run` trains to each and
codes it. Here every checkpoint's message is evaluated on the certificate's token sample and bounded
by the certificate's own function (:meth:`RunContext.token_bounds` at K = :func:`complexity_for`,
whose grids include the checkpoints), so each row is the bound the certificate would report for that
checkpoint, and the smallest is reported. Units: bits per token (``*_bpd``) and bits per byte.
"""
from __future__ import annotations

import csv
import io
import math

from llm_bounds.certificate.certify import tokens_per_byte
from llm_bounds.certificate.checkpoints import training_tokens
from llm_bounds.certificate.context import RunContext, complexity_for, log_progress
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.message.untrained import is_untrained_message

CURVE_COLUMNS = ("step", "training_tokens", "levels", "message_bits", "complexity_bits", "quantized_empirical_bpd",
                 "subsample_term_bpd", "complexity_term_bpd", "bound_bpd", "quantized_empirical_bits_per_byte",
                 "complexity_term_bits_per_byte", "bound_bits_per_byte", "reported")
BOUGHT = ("quantized_empirical_bpd", "bound_bpd", "quantized_empirical_bits_per_byte", "bound_bits_per_byte",
          "heldout_bpd", "heldout_bits_per_byte")


def checkpoint_row(ctx: RunContext, step: int, message: bytes, per_byte: float, folder: RunFolder | None = None,
                   progress: bool = True) -> dict:
    """The certified token-level figures of one checkpoint's message (``levels`` 0: the untrained message)."""
    res = ctx.evaluation_of(message, "token", folder, progress)
    K = complexity_for(ctx.cfg, message)
    nll = ctx.token_bounds(res, K.total_bits)["nll"]
    return {"step": int(step), "training_tokens": training_tokens(ctx.cfg, step),
            "levels": 0 if is_untrained_message(message) else ctx.decoded(message).levels,
            "message_bits": 8 * len(message), "complexity_bits": K.total_bits,
            "quantized_empirical_bpd": nll["empirical"], "subsample_term_bpd": nll["subsample_term"],
            "complexity_term_bpd": nll["complexity_term"], "bound_bpd": nll["bound"],
            "quantized_empirical_bits_per_byte": nll["empirical"] * per_byte,
            "complexity_term_bits_per_byte": nll["complexity_term"] * per_byte,
            "bound_bits_per_byte": nll["bound"] * per_byte}


def choose_checkpoint(ctx: RunContext, messages: dict[int, bytes], folder: RunFolder | None = None,
                      progress: bool = True, screen: dict | None = None) -> tuple[bytes, dict]:
    """The message with the smallest certified bound among the checkpoints' ``messages`` (step →
    message; the earliest step on a tie), and what the certificate says about the choice (informational):
    every row, the reported step, and what training bought (the first checkpoint against the last,
    held-out losses included; those are not certified). ``screen``
    (:func:`llm_bounds.certificate.screen.screen_trained`): when it did not pass, the last checkpoint
    was screened only, never fully evaluated, and its row is the screen's (not a certified bound)."""
    per_byte = tokens_per_byte(ctx.units["token"].m, ctx.scored_bytes())
    steps = sorted(messages)
    skipped = screen is not None and not screen["passed"]
    rows = [screen["row"] if skipped and s == steps[-1] else checkpoint_row(ctx, s, messages[s], per_byte, folder, progress)
            for s in steps]
    chosen = min((r for r in rows if not r.get("screened")), key=lambda r: r["bound_bpd"])
    for r in rows:
        r["reported"] = r is chosen
        bound = (f"optimistic bound {r['optimistic_bound_bpd']:.4f} (screened on {r['screen_units']} units)"
                 if r.get("screened") else f"bound {r['bound_bpd']:.4f}")
        log_progress(progress, f"[checkpoints] step {r['step']}: {r['message_bits']} message bits, "
                               f"{bound} bits/token{' (reported)' if r['reported'] else ''}")
    ends = {}
    for name, row in (("untrained", rows[0]), ("trained", rows[-1])):
        held = ctx.evaluation_of(messages[row["step"]], "heldout", folder, progress)
        ends[name] = {**{k: row[k] for k in BOUGHT[:4] if k in row}, "step": row["step"],
                      "heldout_bpd": held.bits_per_token, "heldout_bits_per_byte": held.bits_per_byte}
    bought = {k: ends["untrained"][k] - ends["trained"][k] for k in BOUGHT if k in ends["trained"]}
    why = (f"the smallest certified bound of the {len(rows)} checkpoints; the choice is charged "
           f"log2 {len(rows)} = {math.log2(len(rows)):.2f} bits in K and a {len(rows)}-way split of every subsample "
           f"delta{' (no subsample term here: every unit scored)' if ctx.cfg.n_samples == 'all' else ''}, so "
           f"that the bounds of all {len(rows)} hold together with probability at least 1 - {ctx.cfg.delta:g}")
    if skipped:
        why = ("the trained checkpoint's optimistic bound from the sample's first "
               f"{screen['units']} units was not below the untrained checkpoint's certified bound, so only the "
               f"latter was evaluated fully; {why.replace('the smallest certified bound of', 'both charged among')}")
    out = {"rows": rows, "reported_step": chosen["step"], "why": why,
           "untrained": ends["untrained"], "trained": ends["trained"], "training_bought": bought}
    if screen is not None:
        out["screen"] = {k: v for k, v in screen.items() if k != "row"}
    return messages[chosen["step"]], out


def curve_csv(rows: list[dict]) -> str:
    """``curve.csv``: one row per checkpoint (:data:`CURVE_COLUMNS`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CURVE_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (int(r[k]) if k == "reported" else r[k]) for k in CURVE_COLUMNS})
    return out.getvalue()


def _f(x: float) -> str:
    return f"{x:.4f}"


def checkpoints_section(cert: dict) -> list[str]:
    """The lines of ``summary.md`` on the checkpoints chosen among (none with a single checkpoint)."""
    info = (cert.get("informational") or {}).get("checkpoints")
    charge = cert.get("checkpoints")
    if not info or not charge:
        return []
    step0 = "θ0, the pretrained weights unchanged" if cert.get("init") == "pretrained" else "the seeded init"
    reported = info["reported_step"]
    what = f"step 0 ({step0}, z = 0)" if reported == 0 else f"step {reported}"
    out = ["", "## Checkpoints", "",
           f"The certificate chose among {charge['count']} checkpoints by their certified bound and reports {what}: "
           f"{info['why']}.", "",
           "| step | training tokens | message bits | empirical (quantized), bits per byte | complexity term, bits per "
           "byte | bound, bits per token | bound, bits per byte |", "|---|---|---|---|---|---|---|"]
    for r in info["rows"]:
        mark = "**" if r["reported"] else ""
        if r.get("screened"):
            out.append(f"| {r['step']} | {r['training_tokens']:,} | {r['message_bits']} | screened only | | "
                       f"≥ {_f(r['optimistic_bound_bpd'])} (optimistic) | ≥ {_f(r['optimistic_bound_bits_per_byte'])} "
                       f"(optimistic) |")
            continue
        out.append(f"| {mark}{r['step']}{mark} | {r['training_tokens']:,} | {r['message_bits']} | "
                   f"{_f(r['quantized_empirical_bits_per_byte'])} | {_f(r['complexity_term_bits_per_byte'])} | "
                   f"{_f(r['bound_bpd'])} | {mark}{_f(r['bound_bits_per_byte'])}{mark} |")
    u, t, b = info["untrained"], info["trained"], info["training_bought"]
    held = (f"held-out {_f(u['heldout_bits_per_byte'])} → {_f(t['heldout_bits_per_byte'])} "
            f"({b['heldout_bits_per_byte']:+.4f}; not certified)")
    if "bound_bits_per_byte" not in t:
        sc = info["screen"]
        r = info["rows"][-1]
        out += ["", f"**The screen** (not certified): the trained checkpoint (step {t['step']}) was evaluated on the "
                    f"sample's first {sc['units']:,} of {sc['sample_units']:,} units only. It gained "
                    f"{r['gain_bpd']:+.4f} ± {r['gain_standard_error_bpd']:.4f} bits per token over θ0 there (paired "
                    f"mean ± standard error), so its bound could be at best about "
                    f"{_f(r['optimistic_bound_bits_per_byte'])} bits per byte (θ0's bound at its K, less the gain and "
                    f"{sc['standard_errors']:g} standard errors), not below θ0's certified "
                    f"{_f(sc['untrained_bound_bits_per_byte'])}; it was not evaluated fully. Both candidates are "
                    f"charged, so this choice needs nothing more.",
                "", f"**What training bought** (step {u['step']} → step {t['step']}, bits per byte; positive: training "
                    f"helped): {held}."]
        return out
    out += ["", f"**What training bought** (step {u['step']} → step {t['step']}, bits per byte; positive: training "
                f"helped): empirical {_f(u['quantized_empirical_bits_per_byte'])} → "
                f"{_f(t['quantized_empirical_bits_per_byte'])} ({b['quantized_empirical_bits_per_byte']:+.4f}), "
                f"bound {_f(u['bound_bits_per_byte'])} → {_f(t['bound_bits_per_byte'])} "
                f"({b['bound_bits_per_byte']:+.4f}), {held}."]
    return out
