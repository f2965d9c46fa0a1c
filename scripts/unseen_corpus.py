"""`python scripts/unseen_corpus.py --help`: see llm_bounds_cli/unseen/cli.py."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_bounds_cli.unseen.cli import unseen_corpus_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(unseen_corpus_main())
