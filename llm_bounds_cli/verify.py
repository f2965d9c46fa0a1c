"""``scripts/verify.py``: re-derive a certificate, print the bounds it re-derived (the numbers to quote)
and ``verified`` (exit 0), or the mismatches (exit 1)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

from llm_bounds.certificate.verify import BOUND_NOISE_RTOL, rederived_lines, verify
from llm_bounds.core.errors import BoundInputError, UnsafeFolderError
from llm_bounds_cli.interrupt import interruptible
from llm_bounds_cli.parsing import OneLineParser

MAX_RTOL = 1e-2  # the loosest float tolerance accepted (relative)


@interruptible("verify.py")
def verify_main(argv=None, prog: str = "verify.py") -> int:
    p = OneLineParser(prog=prog, description="Re-derive a certificate from its message and check every number.")
    p.add_argument("certificate", type=Path, help="path to certificate.json (message.bin must sit beside it)")
    p.add_argument("--rtol", type=float, default=1e-6,
                   help=f"relative tolerance for floats that are not upper bounds, at most {MAX_RTOL:g} (default 1e-6); "
                        f"an upper bound may lie at most {BOUND_NOISE_RTOL:g} (float noise) below the re-derived one, "
                        "or --rtol if smaller")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    if not (math.isfinite(args.rtol) and 0.0 <= args.rtol <= MAX_RTOL):
        print(f"{prog}: error: --rtol must lie in [0, {MAX_RTOL:g}], got {args.rtol!r}; a looser tolerance would "
              "accept an edited certificate", file=sys.stderr)
        return 2
    try:
        result = verify(args.certificate, rtol=args.rtol, progress=not args.quiet)
    except UnsafeFolderError as e:  # a folder that could run code is refused, as in bound.py
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except BoundInputError as e:
        print(f"{prog}: not verified: {e}", file=sys.stderr)
        return 1
    print("\n".join(rederived_lines(result.derived)), flush=True)
    for line in result.notes + result.looser:
        print(f"{prog}: note: {line}", file=sys.stderr)
    if result.problems:
        for line in result.problems[:20]:
            print(f"{prog}: mismatch: {line}", file=sys.stderr)
        print(f"{prog}: not verified ({len(result.problems)} mismatches)", file=sys.stderr)
        return 1
    looser = len(result.looser)
    print("verified" + (f" ({looser} upper bound{'s' if looser > 1 else ''} claimed looser than re-derived: weaker "
                        "claims, see the notes)" if looser else ""))
    return 0
