"""Verify a certificate: decode the message, rebuild the model, re-draw the sample, re-evaluate and
recompute every term with the same code the run used (:func:`llm_bounds.certificate.certify.certify`).

Everything in ``certificate.json`` except what the message does not justify (``informational``:
training log, timings, the unquantized loss, the other level candidates; ``environment``: where it
ran; ``baseline_bits_per_byte``: classical compressors, whose output can change with the Python
build) is re-derived and compared, and no tolerance is ever chosen from what the certificate says
about itself:

* integers and strings exactly (the message and z hashes, the data's content hash, the sha256 of
  the token streams scored);
* every upper bound (:func:`~llm_bounds.certificate.certify.is_upper_bound`: token and document level,
  bits per token and per byte, top-k errors) one-sided: a claim below the bound re-derived here by
  more than :data:`BOUND_NOISE_RTOL` is refused, a larger (weaker) claim passes with a note;
* every other float to the verifier's own relative tolerance (``rtol``, default 1e-6).

Under other library versions, another CPU or another device than the recorded ones, the message
still decodes to the same model (``z_hat_sha256`` is compared exactly) and the evaluated floats may
move in the last bits: the verifier says so in a note and loosens nothing.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from llm_bounds.certificate.certify import CERTIFICATE_VERSION, certify, is_upper_bound
from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.claims import TOPK_REPORTED
from llm_bounds.certificate.context import RunContext
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.certificate.supplied import Supplied, check_supplied
from llm_bounds.core.environment import differences, environment
from llm_bounds.core.errors import BoundInputError, require
from llm_bounds.core.files import json_default, sha256_hex
from llm_bounds.message.format import decode_message
from llm_bounds.subspace.train import resolve_device

# `git checkout` the commit to verify a certificate of an older version
LAST_COMMIT_OF_VERSION = {1: "e2eecf1", 2: "8a76458", 3: "694ca41"}
SKIPPED = ("informational", "environment", "baseline_bits_per_byte")
# Keys added after a version's first certificates were written that state or check a number without
# changing it: the LoRA keys in version 2, the packaged weights' licence in version 3, and in version 4
# the token streams' sha256 and the statement that the Hoeffding figure is not a claim (#29). An older
# certificate without them still verifies, every number re-derived (their absence is a note). Config keys
# added later take their defaults, which reproduce the older runs (RunConfig.from_dict fills them in).
ADDED_LATER = ("weights.lora_targets", "weights.output_head_tied", "weights.licence", "token_stream_sha256",
               "claims.not_counted")
# How far below the bound re-derived here a claimed upper bound may lie (relative), whatever the
# certificate says about its environment: float noise, not a tolerance. Measured on the golden smoke
# certificate (tests/golden, written on an AMD EPYC) re-derived on an Intel Xeon, both running torch
# 2.14.1's AVX-512 kernels: every bound moved by at most 1.6e-9 relative (every float by at most 3.0e-9),
# so 1e-7 leaves 50 times that, while an edit of 1e-7 or more is refused (a bound lowered by 0.9e-6
# relative is 9 times over it). Evaluating on another device or in bfloat16 may move a bound further: the
# verifier then refuses the claim and prints the bound it re-derived, the number to quote (or verify on
# the recorded device). ``rtol`` may make it stricter, never looser.
BOUND_NOISE_RTOL = 1e-7
ABS_TOL = 1e-12  # floats this close to the re-derived value always agree (values at or near 0)
# Config keys added later whose default would not reproduce a certificate written before them: the
# value those certificates were computed with (windows had no prefix before --window-prefix, and the
# untrained checkpoint θ0 was no candidate before untrained_candidate).
REPRODUCING_VALUES = {"window_prefix": "none", "untrained_candidate": False}


@dataclass
class Verification:
    """The outcome of re-deriving a certificate: ``ok`` when every re-derived number matches, the
    mismatches (``problems``) and ``notes`` as one line each, the upper bounds claimed weaker than
    re-derived (``looser``: valid), and the re-derived certificate (``derived``: the certified part,
    the same keys as ``certificate.json``; also readable as attributes, e.g. ``bound_bits_per_byte``)."""

    derived: dict                                      # the certificate as re-derived here (JSON values)
    problems: list[str]                                # mismatches and refused claims: verified when empty
    notes: list[str] = field(default_factory=list)     # environment differences, keys added later
    looser: list[str] = field(default_factory=list)    # upper bounds claimed weaker than re-derived (valid)
    path: Path | None = None                           # the certificate.json verified

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def __getattr__(self, name):
        derived = self.__dict__.get("derived") or {}
        if name in derived:
            return derived[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (the re-derived keys: "
                             f"{', '.join(list(derived)[:8])}, ...)")

    def __repr__(self) -> str:
        verdict = "verified" if self.ok else f"NOT verified: {len(self.problems)} mismatches"
        bound = self.derived.get("bound_bits_per_byte")
        return f"Verification({verdict}, bound {bound:.4f} bits per byte, path={str(self.path)!r})" \
            if bound is not None else f"Verification({verdict}, path={str(self.path)!r})"


def compare(claimed, derived, rtol: float, path: str = "", looser: list[str] | None = None) -> list[str]:
    """Differences between a claimed and a re-derived JSON value, as readable lines. Upper bounds
    (:func:`is_upper_bound`) are compared one-sided (:func:`compare_bound`; a weaker claim is appended
    to ``looser``), other floats to ``rtol`` relative, everything else exactly."""
    if isinstance(derived, dict):
        if not isinstance(claimed, dict):
            return [f"{path or 'certificate'}: expected an object"]
        problems = [f"{path}.{k}".lstrip(".") + ": missing from the certificate" for k in derived if k not in claimed]
        problems += [f"{path}.{k}".lstrip(".") + ": not produced by the verifier (unknown key)"
                     for k in claimed if k not in derived and not (path == "" and k in SKIPPED)]
        for k in derived:
            if k in claimed:
                problems += compare(claimed[k], derived[k], rtol, f"{path}.{k}".lstrip("."), looser)
        return problems
    if isinstance(derived, list):
        if not isinstance(claimed, list) or len(claimed) != len(derived):
            return [f"{path}: list differs in length or type"]
        return [p for i, (c, d) in enumerate(zip(claimed, derived)) for p in compare(c, d, rtol, f"{path}[{i}]", looser)]
    number = isinstance(claimed, (int, float)) and not isinstance(claimed, bool)
    if isinstance(derived, float) and number and is_upper_bound(path):
        return compare_bound(claimed, derived, min(rtol, BOUND_NOISE_RTOL), path, looser)
    if isinstance(derived, float) and number:
        if math.isclose(claimed, derived, rel_tol=rtol, abs_tol=ABS_TOL):
            return []
        return [f"{path}: certificate says {claimed!r}, re-derived {derived!r}"]
    if claimed != derived:
        return [f"{path}: certificate says {claimed!r}, re-derived {derived!r}"]
    return []


def compare_bound(claimed: float, derived: float, noise: float, path: str, looser: list[str] | None) -> list[str]:
    """One upper bound: refused when the claim lies below the re-derived bound by more than ``noise``
    (relative, plus :data:`ABS_TOL`); a claim above it by more is weaker, and valid: noted in ``looser``."""
    if claimed == derived:
        return []
    if not (math.isfinite(claimed) and math.isfinite(derived)):
        return [f"{path}: certificate says {claimed!r}, re-derived {derived!r}"]
    allowance = noise * abs(derived) + ABS_TOL
    gap = (derived - claimed) / abs(derived) if derived else math.inf
    if claimed < derived - allowance:
        return [f"{path}: the certificate claims the upper bound {claimed!r}, tighter than the {derived!r} re-derived "
                f"here (by {gap:.2g} relative, more than the {noise:g} float noise allowed): a claim the message "
                "does not justify"]
    if claimed > derived + allowance and looser is not None:
        looser.append(f"{path}: the certificate claims {claimed!r}, looser than the {derived!r} re-derived here (by "
                      f"{-gap:.2g} relative): a weaker claim, implied by the re-derived bound")
    return []


def rederived_lines(derived: dict) -> list[str]:
    """The bounds the verifier re-derived itself, for its output (the numbers a reader quotes)."""
    claims = derived.get("claims", {})
    together = "all together" if claims.get("joint") else "each on its own"
    lines = [f"bounds re-derived by this verifier (quote these), {together} with probability at least 1 - "
             f"{derived['delta'] if claims.get('joint') else claims.get('delta_each', derived['delta']):g}:",
             f"  token level: {derived['bound_bpd']:.6f} bits per token = {derived['bound_bits_per_byte']:.6f} "
             f"bits per byte; {topk_errors(derived, '')}"]
    if "doc_bound_bpd" in derived:
        lines.append(f"  document level: {derived['doc_bound_bpd']:.6f} bits per token; {topk_errors(derived, 'doc_')}")
    return lines


def topk_errors(derived: dict, prefix: str) -> str:
    ks = [k for k in TOPK_REPORTED if f"{prefix}top{k}_error_bound" in derived]
    return (f"{', '.join(f'top-{k}' for k in ks)} error at most "
            f"{', '.join(format(derived[f'{prefix}top{k}_error_bound'], '.6f') for k in ks)}")


def verify(path, rtol: float = 1e-6, progress: bool = True, supplied: Supplied | None = None) -> Verification:
    """Re-derive the certificate at ``path`` (or ``path/certificate.json`` for a run's folder) and compare
    it (:func:`compare`): floats that are not upper bounds to ``rtol`` relative, whatever the certificate's
    ``environment`` says; a different environment is only a note. ``supplied``: the model and tokenizer
    objects a certificate of objects was computed with (:mod:`llm_bounds.certificate.supplied`); any
    others are refused by their hash before any work.

    Raises :class:`llm_bounds.core.errors.BoundInputError` (a one-line reason) when the certificate or the
    message cannot be read, the message hash differs, the message does not decode, or the data or its
    token streams here differ from the certified ones.
    """
    require(math.isfinite(rtol) and 0.0 <= rtol <= 1e-2, f"the float tolerance must lie in [0, 0.01], got {rtol!r}")
    path = Path(path)
    if path.is_dir():  # the run's output folder: its certificate
        path = RunFolder(path).certificate
    require(path.is_file(), f"{path} does not exist; pass OUT/certificate.json written by scripts/bound.py")
    try:
        cert = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BoundInputError(f"{path} is not valid JSON ({e}); it was damaged or is not a certificate") from None
    require(isinstance(cert, dict) and "certificate_version" in cert, f"{path} is not a certificate (no certificate_version)")
    version = cert["certificate_version"]
    require(version not in LAST_COMMIT_OF_VERSION,
            f"{path} is a version-{version} certificate (llm-bounds before the version-{version + 1} bounds); this "
            f"llm-bounds verifies version {CERTIFICATE_VERSION}: verify it with llm-bounds at commit "
            f"{LAST_COMMIT_OF_VERSION.get(version)}")
    require(version == CERTIFICATE_VERSION,
            f"{path} is a version-{version} certificate; this llm-bounds verifies version {CERTIFICATE_VERSION}")
    msg_path = RunFolder(path.parent).message
    require(msg_path.is_file(), f"{msg_path} is missing; the message must sit beside the certificate")
    message = msg_path.read_bytes()
    digest = sha256_hex(message)
    require(digest == cert.get("message_sha256"),
            f"message.bin has sha256 {digest[:16]}…, the certificate says {str(cert.get('message_sha256'))[:16]}…: "
            "the message is not the one certified")
    decode_message(message, cert.get("intrinsic_dim"))  # a corrupted message raises MessageError here
    check_supplied(supplied, cert, path)
    cfg = RunConfig.from_dict({**REPRODUCING_VALUES, **cert.get("config", {})})
    ctx = RunContext.build(cfg, supplied=supplied)
    require(ctx.corpus.content_hash == cert.get("data_content_hash"),
            f"the dataset {cfg.dataset!r} here differs from the certified one (content hash "
            f"{ctx.corpus.content_hash[:16]}… vs {str(cert.get('data_content_hash'))[:16]}…)")
    check_streams(cert.get("token_stream_sha256"), ctx.corpus.stream_sha256())
    notes = []
    changed = differences(cert.get("environment"), environment(str(resolve_device(cfg.device)), cfg.eval_dtype))
    if changed:
        notes += [f"verifying under another environment ({line})" for line in changed]
        notes.append(f"nothing is loosened for it: the message must decode to the same model (checked exactly), "
                     f"upper bounds may lie at most {min(rtol, BOUND_NOISE_RTOL):g} (relative float noise) below "
                     f"the ones re-derived here, other floats within {rtol:g}")
    derived = json.loads(json.dumps(certify(ctx, message, progress=progress), default=json_default))
    cert = dict(cert, config=cfg.to_dict())  # with the defaults of config keys added later
    looser: list[str] = []
    problems = compare(cert, derived, rtol, looser=looser)
    older = [p for p in problems if p.endswith(": missing from the certificate") and p.split(":")[0] in ADDED_LATER]
    if older:
        notes.append(f"written before these keys existed: {', '.join(p.split(':')[0] for p in older)} (every "
                     "number is still re-derived and compared)")
    return Verification(derived, [p for p in problems if p not in older], notes, looser, path)


def check_streams(claimed, here: dict[str, str]) -> None:
    """Refuse, before any evaluation, token streams that differ from the certified ones (``claimed``:
    the certificate's ``token_stream_sha256``; None in a certificate written before it existed)."""
    if claimed is None or claimed == here:
        return
    differ = [name for name in here if not isinstance(claimed, dict) or claimed.get(name) != here[name]]
    require(bool(differ), f"the certificate's token_stream_sha256 names other streams ({', '.join(map(str, claimed))}) "
                          f"than the {', '.join(here)} streams a run scores: it was edited")
    said = claimed.get(differ[0]) if isinstance(claimed, dict) else claimed
    raise BoundInputError(
        f"the {differ[0]} token stream here differs from the certified one (sha256 {here[differ[0]][:16]}… here, "
        f"{str(said)[:16]}… in the certificate): the same data and tokenizer were tokenized differently (another "
        "tokenizer library version, or a stale token cache); verify with the library versions the certificate's "
        "environment records, or with LLM_BOUNDS_CACHE set to a new, empty folder (a fresh tokenization)")


def verify_certificate(path, rtol: float = 1e-6, progress: bool = True, notes: list[str] | None = None) -> list[str]:
    """The mismatches of :func:`verify` (empty: verified); its notes and looser claims are appended to ``notes``."""
    result = verify(path, rtol, progress)
    if notes is not None:
        notes += result.notes + result.looser
    return result.problems
