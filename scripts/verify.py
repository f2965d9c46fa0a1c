"""`python scripts/verify.py --help`: see llm_bounds_cli/verify.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_bounds_cli.interrupt import run_script  # noqa: E402

if __name__ == "__main__":
    sys.exit(run_script("verify.py", "llm_bounds_cli.verify", "verify_main"))
