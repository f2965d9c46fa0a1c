"""``scripts/bound.py`` and ``llm-bounds bound``: train, code and certify (see ``--help``).

The options are the rows of :data:`llm_bounds.certificate.flags.RUN_FLAGS` (shared with
:func:`llm_bounds.certify`), and the run is :mod:`llm_bounds.certificate.launch`'s: this module only
parses and prints. Usage errors print one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from llm_bounds.certificate.flags import RUN_FLAGS
from llm_bounds.certificate.launch import overrides_from_flags, plan_from_flags, run_from_flags
from llm_bounds.certificate.plan import settings_check
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.certificate.summary import format_table
from llm_bounds.core import distributed
from llm_bounds.core.errors import BoundInputError, RunError
from llm_bounds.core.files import json_default
from llm_bounds_cli.curve import plot_curve
from llm_bounds_cli.interrupt import interruptible
from llm_bounds_cli.parsing import OneLineParser, add_flag


def bound_parser(prog: str = "bound.py") -> argparse.ArgumentParser:
    p = OneLineParser(prog=prog, description="Train SubLoRA, code the model, and certify a generalization bound.")
    for flag in RUN_FLAGS:
        add_flag(p, flag)
    return p


def overrides_from_args(args) -> dict:
    """The settings given explicitly on the command line (None: not given), as RunConfig keys."""
    return overrides_from_flags(vars(args))


def config_from_args(args):
    """The run's config as far as it is known before anything loads (the recipe may still change it)."""
    return settings_check(overrides_from_args(args), args.preset)


@interruptible("bound.py")
def bound_main(argv=None, prog: str = "bound.py") -> int:
    args = bound_parser(prog).parse_args(argv)
    try:
        if args.dry_run:
            plan = plan_from_flags(vars(args))
            if distributed.is_main():
                print(json.dumps(plan, indent=1, default=json_default))
            return 0
        cert, out = run_from_flags(vars(args), progress=not args.quiet)
    except BoundInputError as e:
        if distributed.is_main():
            print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except RunError as e:
        if distributed.is_main():
            print(f"{prog}: failed: {e}", file=sys.stderr)
        return 1
    if distributed.is_main():
        folder, tracked = RunFolder(out), bool(cert["config"].get("track"))
        if tracked:  # the library wrote curve.csv; plots are drawn here
            plot_curve(folder.curve, folder.curve_plot, f"{cert['model']} on {Path(cert['dataset']).name}")
        print(format_table(cert))
        print(f"wrote {out}/certificate.json, {out}/message.bin, {out}/summary.md"
              + (f", {folder.curve.name}, {folder.curve_plot.name}" if tracked else ""))
    return 0
