"""The claims a certificate reports and the δ each is computed at: each bound its own claim at
1 − δ, or with ``--joint-claims`` all of them together at 1 − δ (a union bound over the claims)."""
from __future__ import annotations

from llm_bounds.certificate.config import RunConfig

TOPK_REPORTED = (1, 10, 100)


def reported_claims(cfg: RunConfig) -> list[str]:
    """The bounds a certificate reports, each a claim about a different quantity: the token-level
    log-loss and top-k errors, and the same at the document level when documents are sampled."""
    token = ["token nll"] + [f"token top-{k} error" for k in TOPK_REPORTED]
    doc = ["document nll"] + [f"document top-{k} error" for k in TOPK_REPORTED] if cfg.n_documents > 0 else []
    return token + doc


def claim_delta(cfg: RunConfig) -> float:
    """The δ each reported bound is computed at: δ itself (each bound its own claim at 1 − δ), or
    with ``joint_claims`` δ/N for N :func:`reported_claims`, so that by the union bound all N hold
    together with probability ≥ 1 − δ."""
    return cfg.delta / len(reported_claims(cfg)) if cfg.joint_claims else cfg.delta


def claims_statement(cfg: RunConfig) -> dict:
    """How the reported bounds hold together, for the certificate and ``summary.md``."""
    claims, n = reported_claims(cfg), len(reported_claims(cfg))
    if cfg.joint_claims:
        text = (f"All {n} reported bounds ({', '.join(claims)}) hold together with probability at least "
                f"1 - {cfg.delta:g}: each was computed at delta/{n} = {claim_delta(cfg):.4g} (union bound).")
    else:
        text = (f"Each of the {n} reported bounds ({', '.join(claims)}) holds on its own with probability at least "
                f"1 - {cfg.delta:g}; quoted together they hold with probability at least 1 - {n}*{cfg.delta:g} = "
                f"{max(0.0, 1 - n * cfg.delta):.4g} (union bound). Pass --joint-claims to split delta {n} ways so that "
                f"all hold together at 1 - {cfg.delta:g}.")
    return {"count": n, "joint": bool(cfg.joint_claims), "delta_each": claim_delta(cfg), "claims": claims,
            "statement": text}
