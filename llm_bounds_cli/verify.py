"""``scripts/verify.py``: re-derive a certificate and print ``verified`` (exit 0) or the mismatches (exit 1)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

from llm_bounds.certificate.verify import verify_certificate
from llm_bounds.core.errors import BoundInputError, UnsafeFolderError
from llm_bounds_cli.interrupt import interruptible
from llm_bounds_cli.parsing import OneLineParser

MAX_RTOL = 1e-2  # the loosest float tolerance accepted (relative)


@interruptible("verify.py")
def verify_main(argv=None) -> int:
    p = OneLineParser(prog="verify.py", description="Re-derive a certificate from its message and check every number.")
    p.add_argument("certificate", type=Path, help="path to certificate.json (message.bin must sit beside it)")
    p.add_argument("--rtol", type=float, default=1e-6, help=f"relative tolerance for floats, at most {MAX_RTOL:g} (default 1e-6)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if not (math.isfinite(args.rtol) and 0.0 <= args.rtol <= MAX_RTOL):
        print(f"verify.py: error: --rtol must lie in [0, {MAX_RTOL:g}], got {args.rtol!r}; a looser tolerance would "
              "accept an edited certificate", file=sys.stderr)
        return 2
    notes: list[str] = []
    try:
        problems = verify_certificate(args.certificate, rtol=args.rtol, progress=not args.quiet, notes=notes)
    except UnsafeFolderError as e:  # a folder that could run code is refused, as in bound.py
        print(f"verify.py: error: {e}", file=sys.stderr)
        return 2
    except BoundInputError as e:
        print(f"verify.py: not verified: {e}", file=sys.stderr)
        return 1
    for line in notes:
        print(f"verify.py: note: {line}", file=sys.stderr)
    if problems:
        for line in problems[:20]:
            print(f"verify.py: mismatch: {line}", file=sys.stderr)
        print(f"verify.py: not verified ({len(problems)} mismatches)", file=sys.stderr)
        return 1
    print("verified")
    return 0
