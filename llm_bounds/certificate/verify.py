"""Verify a certificate: decode the message, rebuild the model, re-draw the sample, re-evaluate and
recompute every term with the same code the run used (:func:`llm_bounds.certificate.certify.certify`).

Everything in ``certificate.json`` except what the message does not justify (``informational``:
training log, timings, the unquantized loss, the other level candidates; ``environment``: where it
ran; ``baseline_bits_per_byte``: classical compressors, whose output can change with the Python
build) is re-derived and compared: integers and strings exactly, floats to a relative tolerance
(default 1e-6).

Under other library versions or another device than the recorded ones, the message still decodes to
the same model (``z_hat_sha256`` is compared exactly), but the evaluated floats may move in the last
bits: the verifier then says so in a note and compares floats to at most :data:`OTHER_ENVIRONMENT_RTOL`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from llm_bounds.certificate.certify import CERTIFICATE_VERSION, certify
from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.context import RunContext
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.core.environment import differences, environment
from llm_bounds.core.errors import BoundInputError, require
from llm_bounds.core.files import json_default, sha256_hex
from llm_bounds.message.format import decode_message
from llm_bounds.subspace.train import resolve_device

# `git checkout` the commit to verify a certificate of an older version
LAST_COMMIT_OF_VERSION = {1: "e2eecf1", 2: "8a76458", 3: "694ca41"}
SKIPPED = ("informational", "environment", "baseline_bits_per_byte")
# Descriptive keys added after a version's first certificates were written (the LoRA keys in version 2,
# the packaged weights' licence in version 3); an older certificate without them still verifies (their
# absence is a note). Config keys added later take their defaults, which reproduce the older runs
# (RunConfig.from_dict fills them in).
ADDED_LATER = ("weights.lora_targets", "weights.output_head_tied", "weights.licence")
OTHER_ENVIRONMENT_RTOL = 1e-4
# Config keys added later whose default would not reproduce a certificate written before them: the
# value those certificates were computed with (windows had no prefix before --window-prefix, and the
# untrained checkpoint θ0 was no candidate before untrained_candidate).
REPRODUCING_VALUES = {"window_prefix": "none", "untrained_candidate": False}


def compare(claimed, derived, rtol: float, path: str = "") -> list[str]:
    """Differences between a claimed and a re-derived JSON value, as readable lines."""
    if isinstance(derived, dict):
        if not isinstance(claimed, dict):
            return [f"{path or 'certificate'}: expected an object"]
        problems = [f"{path}.{k}".lstrip(".") + ": missing from the certificate" for k in derived if k not in claimed]
        problems += [f"{path}.{k}".lstrip(".") + ": not produced by the verifier (unknown key)"
                     for k in claimed if k not in derived and not (path == "" and k in SKIPPED)]
        for k in derived:
            if k in claimed:
                problems += compare(claimed[k], derived[k], rtol, f"{path}.{k}".lstrip("."))
        return problems
    if isinstance(derived, list):
        if not isinstance(claimed, list) or len(claimed) != len(derived):
            return [f"{path}: list differs in length or type"]
        return [p for i, (c, d) in enumerate(zip(claimed, derived)) for p in compare(c, d, rtol, f"{path}[{i}]")]
    if isinstance(derived, float) and isinstance(claimed, (int, float)) and not isinstance(claimed, bool):
        if math.isclose(claimed, derived, rel_tol=rtol, abs_tol=1e-12):
            return []
        return [f"{path}: certificate says {claimed!r}, re-derived {derived!r}"]
    if claimed != derived:
        return [f"{path}: certificate says {claimed!r}, re-derived {derived!r}"]
    return []


def verify_certificate(path, rtol: float = 1e-6, progress: bool = True, notes: list[str] | None = None) -> list[str]:
    """Re-derive the certificate at ``path`` (or ``path/certificate.json`` for a run's folder);
    returns the list of mismatches (empty: verified). Differences of environment are appended to
    ``notes`` (and loosen the float tolerance to :data:`OTHER_ENVIRONMENT_RTOL`).

    Raises :class:`llm_bounds.core.errors.BoundInputError` (a one-line reason) when the certificate or the
    message cannot be read, the message hash differs, or the message does not decode.
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
    cfg = RunConfig.from_dict({**REPRODUCING_VALUES, **cert.get("config", {})})
    ctx = RunContext.build(cfg)
    require(ctx.corpus.content_hash == cert.get("data_content_hash"),
            f"the dataset {cfg.dataset!r} here differs from the certified one (content hash "
            f"{ctx.corpus.content_hash[:16]}… vs {str(cert.get('data_content_hash'))[:16]}…)")
    here = environment(str(resolve_device(cfg.device)), cfg.eval_dtype)
    changed = differences(cert.get("environment"), here)
    if changed:
        rtol = max(rtol, OTHER_ENVIRONMENT_RTOL)
        if notes is not None:
            notes += [f"verifying under another environment ({line})" for line in changed]
            notes.append(f"the message must decode to the same model (checked exactly); floats compared to {rtol:g}")
    derived = json.loads(json.dumps(certify(ctx, message, progress=progress), default=json_default))
    cert = dict(cert, config=cfg.to_dict())  # with the defaults of config keys added later
    problems = compare(cert, derived, rtol)
    older = [p for p in problems if p.endswith(": missing from the certificate")
             and p.split(":")[0] in ADDED_LATER]
    if notes is not None and older:
        notes.append(f"written before these descriptive keys existed: {', '.join(p.split(':')[0] for p in older)}")
    return [p for p in problems if p not in older]
