"""``llm-bounds card RUN_DIR``: print a run's certificate as a model-card section (YAML
``model-index`` metadata, then Markdown; :func:`llm_bounds.certificate.card.model_card`).

Bad input (no certificate there) prints one line and exits with code 2.
"""
from __future__ import annotations

import sys

from llm_bounds.api.results import Certificate
from llm_bounds.core.errors import BoundInputError
from llm_bounds_cli.parsing import OneLineParser


def card_main(argv=None, prog: str = "card") -> int:
    p = OneLineParser(prog=prog, description="Print a certificate as a section of a Hugging Face model card: the "
                                             "model-index metadata (YAML) and the bound, its terms and assumptions "
                                             "(Markdown). `llm-bounds card RUN_DIR > README.md` is a valid card.")
    p.add_argument("run_dir", help="the run's folder (OUT of bound.py) or its certificate.json")
    p.add_argument("--name", help="the model's name in the metadata, e.g. the hub repository (default: the "
                                  "certificate's model)")
    args = p.parse_args(argv)
    try:
        cert = Certificate.load(args.run_dir)
    except BoundInputError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(cert.card(args.name))
    return 0
