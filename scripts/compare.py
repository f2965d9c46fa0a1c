"""`python scripts/compare.py --help`: bounds across model sizes (see llm_bounds_cli/compare.py)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_bounds_cli.interrupt import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("compare.py", "llm_bounds_cli.compare", "main"))
