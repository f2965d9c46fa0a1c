"""The bound calculator: a bound from known components, printed as JSON with every term.

    python scripts/calc.py --level document --method hoeffding --empirical 10.0 \
        --complexity-bits 100373 --m 8009762 --n 10000 --alpha 0.1 --vocab-size 50257 --delta 0.05

``--alpha`` may be a comma list: the grid is then charged (log2|grid| bits, and the subsample δ
split over the grid; see :func:`llm_bounds.bound.generalization.bound_over_alpha_grid`), and
``--empirical`` (and ``--subsample-variance``) must give one value per α, in the same order: the
smoothed loss changes with α, so one value for the whole grid would let the grid pick an α whose
real empirical risk is higher, and the printed bound would not hold.
Bad input prints one line ``calc.py: error: …`` and exits with code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from llm_bounds_cli.interrupt import interruptible
from llm_bounds_cli.parsing import OneLineParser
from llm_bounds.core.errors import BoundInputError, require
from llm_bounds.bound.alpha_grid import bound_over_alpha_grid
from llm_bounds.bound.generalization import GRANULARITIES, METHODS, METRICS, generalization_bound


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BoundInputError(f"{name} must be a number or a comma list of numbers, got {text!r}") from None
    require(len(values) >= 1, f"{name} is empty; give a number")
    for v in values:
        require(math.isfinite(v), f"{name} must be finite, got {text!r}")
    return values


def _count(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    try:
        x = float(text)
    except ValueError:
        raise BoundInputError(f"{name} must be a positive integer (e.g. 1e4 or 10000), got {text!r}") from None
    require(math.isfinite(x) and x >= 1 and x == int(x), f"{name} must be a positive integer, got {text!r}")
    return int(x)


def build_parser(prog: str = "calc.py") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description=__doc__.split("\n")[0])
    p.add_argument("--level", choices=GRANULARITIES, default="document",
                   help="token: martingale over m tokens; document: i.i.d. over m documents")
    p.add_argument("--metric", choices=METRICS, default="nll",
                   help="nll: smoothed log-loss in bits per token; error: a 0-1 loss (e.g. top-1 error)")
    # betting needs every token's log-wealth at each λ of its grid, which one line of numbers cannot carry
    p.add_argument("--method", choices=[m for m in METHODS if m != "betting"], default="best",
                   help="hoeffding reproduces the reference SubLoRA formula; best takes the tightest valid one")
    p.add_argument("--empirical", required=True, help="empirical risk (bits per token, or error rate); comma list per alpha")
    p.add_argument("--complexity-bits", required=True, help="K: total description length in bits, used as given")
    p.add_argument("--m", required=True, help="units in the training set: tokens (token level) or documents")
    p.add_argument("--n", default=None, help="units subsampled with replacement; omit if --empirical is over all m")
    p.add_argument("--alpha", default=None, help="smoothing weight in (0,1), or a comma list (a charged grid)")
    p.add_argument("--vocab-size", default=None, help="vocabulary size V (needed for nll)")
    p.add_argument("--delta", default="0.05", help="failure probability in (0,1)")
    p.add_argument("--subsample-variance", default=None,
                   help="unbiased sample variance of the n per-unit values (enables empirical Bernstein)")
    return p


def calculate(args: argparse.Namespace) -> dict:
    """Turn parsed arguments into the JSON-ready result (raises BoundInputError on bad input)."""
    empirical = _floats(args.empirical, "--empirical")
    (k,) = _floats(args.complexity_bits, "--complexity-bits")
    require(k >= 0, f"--complexity-bits must be >= 0, got {args.complexity_bits}")
    (delta,) = _floats(args.delta, "--delta")
    m = _count(args.m, "--m")
    n = _count(args.n, "--n")
    variance = None if args.subsample_variance is None else _floats(args.subsample_variance, "--subsample-variance")
    vocab = _count(args.vocab_size, "--vocab-size")
    common = dict(granularity=args.level, complexity_bits=k, m=m, n=n, delta=delta, method=args.method, vocab_size=vocab)

    if args.metric == "error" or args.alpha is None:
        require(args.metric == "error", "the nll metric needs --alpha (and --vocab-size)")
        require(len(empirical) == 1, "--empirical takes one value for the error metric")
        require(variance is None or len(variance) == 1, "--subsample-variance takes one value for the error metric")
        res = generalization_bound(metric="error", empirical=empirical[0],
                                   subsample_variance=None if variance is None else variance[0], **common)
        return res.to_dict()

    alphas = _floats(args.alpha, "--alpha")

    def per_alpha(values, name):
        require(len(values) == len(alphas),
                f"{name} needs one value per alpha ({len(alphas)} alphas, got {len(values)} values): the smoothed "
                f"loss changes with alpha, so give {name} as a comma list in the order of --alpha")
        return dict(zip(alphas, values))

    chosen, all_results = bound_over_alpha_grid(
        empirical_by_alpha=per_alpha(empirical, "--empirical"),
        variance_by_alpha=None if variance is None else per_alpha(variance, "--subsample-variance"),
        **common)
    out = chosen.to_dict()
    if len(alphas) > 1:
        out["per_alpha"] = [{"alpha": r.alpha, "bound": r.bound} for r in all_results]
    return out


@interruptible("calc.py")
def main(argv=None, prog: str = "calc.py") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        result = calculate(args)
    except BoundInputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
