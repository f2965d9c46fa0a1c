"""Benchmarks, one subcommand per area: `python scripts/benchmark.py coding|subspace|eval|train`.

Each prints ratio tables measured in one run and ends with a `name=value` line. The logic lives in
the packages; this file only dispatches.
"""
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BENCHMARKS = {
    "coding": "llm_bounds_cli.benchmarks.coding",
    "subspace": "llm_bounds_cli.benchmarks.subspace",
    "eval": "llm_bounds_cli.benchmarks.evaluation",
    "train": "llm_bounds_cli.benchmarks.training",
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in BENCHMARKS:
        print(f"benchmark.py: error: choose one of {', '.join(BENCHMARKS)}, e.g. "
              f"`python scripts/benchmark.py coding`", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
