"""The Python entry point: :func:`certify`, :func:`verify`, :func:`compare` and :func:`load`
(exported as ``llm_bounds.certify`` and so on).

They run what the command lines run (:mod:`llm_bounds.certificate.launch`,
:mod:`llm_bounds.certificate.verify`, :mod:`llm_bounds.certificate.sweep`) with the same settings as
keyword arguments (:mod:`llm_bounds.api.keywords`), and return objects instead of printing. Bad
input raises :class:`~llm_bounds.core.errors.BoundInputError` (a ``ValueError``) and a run that
cannot finish :class:`~llm_bounds.core.errors.RunError`, each with the one-line message the command
line prints. Progress goes to the terminal or the notebook (tqdm bars); ``progress=False`` prints
nothing at all.
"""
from __future__ import annotations

import json
import time

from llm_bounds.api.keywords import KEYWORDS, flag_values
from llm_bounds.api.results import Certificate, verify_run
from llm_bounds.certificate.flags import RUN_LEVEL
from llm_bounds.certificate.launch import overrides_from_flags, plan_from_flags, run_from_flags
from llm_bounds.certificate.supplied import Supplied, is_model_object, is_tokenizer_object
from llm_bounds.certificate.sweep import Budget, compare_models
from llm_bounds.certificate.verify import Verification
from llm_bounds.core.errors import require
from llm_bounds.core.files import json_default

# the settings compare() takes as keywords: a run's, less those it names itself (models, out, preset)
# and those that shape a single run (a GGUF file inside one model's folder, a dry run, quiet: progress=)
COMPARE_KEYWORDS = tuple(k for k, f in KEYWORDS.items()
                         if f.dest not in ("model", "gguf_file") and (f.dest not in RUN_LEVEL or f.dest == "unseen_dataset"))


def certify(model=None, dataset=None, *, tokenizer=None, progress: bool = True, **keywords):
    """Train, code and certify, as ``scripts/bound.py`` does; returns the :class:`Certificate` it wrote.

    ``model``: a name as ``--model`` takes (default: the embedded default's), or a ``transformers``
    causal LM object with ``tokenizer=`` its tokenizer object (or a tokenizer name): the run adapts a
    copy, and the certificate records the sha256 of the object's weights and that they came from an
    object (verify it with :func:`verify` and the same object). ``dataset``: as ``--dataset``.
    Every other flag of ``bound.py`` is a keyword: ``preset="smoke"``, ``out="runs/mine"``,
    ``n_samples=64`` (``--n-samples``), ``alpha=[0.01, 0.1]``, ``joint_claims=True``,
    ``unseen_dataset=path``, ... (the recipe is chosen as ``bound.py`` chooses it).
    ``dry_run=True`` returns the plan (recipe, settings, estimated cost) as a dict and writes nothing.
    ``progress=False`` (or ``quiet=True``) prints nothing.
    """
    started = time.perf_counter()
    given = dict(keywords)
    for key, value, is_object in (("model", model, is_model_object), ("tokenizer", tokenizer, is_tokenizer_object)):
        if value is not None and not is_object(value):
            given[key] = value
    if dataset is not None:
        given["dataset"] = dataset
    values = flag_values(given, named=("progress",))  # an unknown keyword or a wrong value fails here
    supplied = Supplied.of(model, tokenizer)
    progress = progress and not values.get("quiet", False)
    if values.get("dry_run"):
        return plan_from_flags(values, progress, supplied)
    cert, out = run_from_flags(values, progress=progress, supplied=supplied, notes=progress, started=started)
    # the dictionary as certificate.json holds it (read back from the same JSON, not from the file,
    # which under torchrun only rank 0 writes)
    return Certificate(json.loads(json.dumps(cert, default=json_default)), out)


def verify(path, *, model=None, tokenizer=None, rtol: float = 1e-6, progress: bool = True) -> Verification:
    """Re-derive the certificate at ``path`` (a run's folder or its ``certificate.json``), as
    ``scripts/verify.py`` does; returns the verdict: ``.ok``, ``.problems`` and ``.notes`` (one line
    each) and the re-derived numbers (``.derived``, also as attributes: ``.bound_bits_per_byte``).
    A certificate of objects needs the same ``model`` (and ``tokenizer``) objects; others are refused
    by their hash, before any work."""
    return verify_run(path, model, tokenizer, rtol, progress)


def compare(models, *, out="runs/compare", preset: str | None = None, budget=None, progress: bool = True,
            **keywords) -> list[dict]:
    """Certify several models with the same data, budget and seeds, as ``scripts/compare.py`` does
    (its table and CSV in ``out``; the plot is the command line's); returns the comparison's rows,
    one dict per model, smallest first (the columns of ``comparison.csv``).

    ``models``: a list or a comma list of names. ``budget``: equal training compute, ``("flops",
    1e15)`` (or ``steps``, ``tokens``). Other keywords as :func:`certify`'s (``seed=``, ``init=``,
    ``dataset=``, ``unseen_dataset=``, ``max_steps=``, ``n_samples=``, ...).
    """
    names = models.split(",") if isinstance(models, str) else list(models)
    require(all(isinstance(m, str) for m in names), "models= takes model names (a list or a comma list); a model "
                                                    "object is certified with llm_bounds.certify(model=obj)")
    values = flag_values(keywords, valid=COMPARE_KEYWORDS, named=("models", "out", "preset", "budget", "progress"))
    if budget is not None and not isinstance(budget, Budget):
        require(isinstance(budget, (tuple, list)) and len(budget) == 2,
                f"budget= takes (kind, value), e.g. ('flops', 1e15); got {budget!r}")
        require(values.get("max_steps") is None, "budget= sets each model's max_steps; pass one of them")
        budget = Budget.parse(str(budget[0]), str(budget[1]))
    return compare_models([m for m in names if m], out, preset, progress=progress, budget=budget,
                          **overrides_from_flags(values))


def load(path) -> Certificate:
    """The certificate a run wrote to folder ``path`` (or the ``certificate.json`` file itself)."""
    return Certificate.load(path)
