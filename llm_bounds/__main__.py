"""``python -m llm_bounds COMMAND ...``: the ``llm-bounds`` program (:mod:`llm_bounds_cli.main`).

The one module of the ``llm_bounds`` package that imports the command lines: it is a program,
which nothing imports, not part of the library (``tests/test_layers.py`` allows it by name).
"""
import sys

from llm_bounds_cli.main import main

if __name__ == "__main__":
    sys.exit(main())
