"""Compute a generalization bound from known components: `python scripts/calc.py --help`."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_bounds_cli.interrupt import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("calc.py", "llm_bounds_cli.calc", "main"))
