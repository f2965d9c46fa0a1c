"""`python scripts/bound.py --help`: see llm_bounds_cli/bound.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_bounds_cli.interrupt import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("bound.py", "llm_bounds_cli.bound", "bound_main"))
