"""What ``scripts/bound.py`` and :func:`llm_bounds.certify` both run, from the values of the flags of
:mod:`llm_bounds.certificate.flags` (one per ``dest``; None: not given): check every setting before
anything loads, load the data and the base model once, choose the recipe, then either describe the
run (``--dry-run``) or run it.

The command line parses text into these values and prints; the Python entry point converts its
keyword arguments into them and returns objects. Neither adds a rule of its own.
"""
from __future__ import annotations

from pathlib import Path

from llm_bounds.certificate.context import RunContext
from llm_bounds.certificate.estimate import estimate_run
from llm_bounds.certificate.flags import RUN_LEVEL, flag_defaults
from llm_bounds.certificate.plan import Prepared, prepare, settings_check
from llm_bounds.certificate.recipe import model_kind, recipe_name
from llm_bounds.certificate.run import key_of, run
from llm_bounds.certificate.stages import RunFolder, check_destination
from llm_bounds.certificate.supplied import Supplied
from llm_bounds.core import distributed
from llm_bounds.core.errors import require
from llm_bounds.subspace.registry import is_object_name
from llm_bounds.subspace.train import resolve_device


def overrides_from_flags(values: dict, supplied: Supplied | None = None) -> dict:
    """The settings given explicitly (None: not given), as RunConfig keys; ``supplied``: the model
    and tokenizer objects given in place of names (Python only)."""
    values = {**flag_defaults(), **values}
    overrides = {k: v for k, v in values.items() if k not in RUN_LEVEL}
    model = values.get("model")
    require(not (isinstance(model, str) and is_object_name(model)),
            f"--model {model!r} names a model object held in memory, which a name cannot bring back; pass the "
            "object itself from Python (llm_bounds.certify(model=obj, tokenizer=tok))")
    if values["gguf_file"] is not None:
        require(model is not None and Path(model).expanduser().is_dir(),
                "--gguf-file names a file inside the folder given by --model; pass --model DIR --gguf-file NAME")
        overrides["model"] = str(Path(model).expanduser().resolve() / values["gguf_file"])
    if values["unseen_dataset"] is not None:
        require(values.get("dataset") is None, "--unseen-dataset replaces --dataset; pass one of them")
        overrides["dataset"], overrides["dataset_unseen_by_weights"] = values["unseen_dataset"], True
    tok = overrides.get("tokenizer")
    if tok is not None and Path(tok).expanduser().is_dir():
        # `--tokenizer DIR`: a folder of tokenizer files (vocab.json + merges.txt means GPT-2 BPE).
        d = Path(tok).expanduser().resolve()
        overrides["tokenizer_dir"] = str(d)
        overrides["tokenizer"] = "gpt2" if (d / "vocab.json").is_file() and (d / "merges.txt").is_file() else str(d)
    elif overrides.get("tokenizer_dir") is not None:
        overrides["tokenizer_dir"] = str(Path(overrides["tokenizer_dir"]).expanduser().resolve())
    if supplied is not None:
        overrides.update(supplied.overrides(overrides))
    return {k: v for k, v in overrides.items() if v is not None}


def default_out(early, preset: str | None, model: str | None) -> Path:
    """Where a run without ``--out`` writes, known before anything loads: ``runs/<recipe>-<model>``
    (an object's name without its colon)."""
    name = recipe_name(preset, model, model_kind(early.model, early.init), resolve_device(early.device).type)
    return Path("runs") / f"{name}-{Path(early.model).name.replace(':', '-')}"


def prepare_from_flags(values: dict, progress: bool,
                       supplied: Supplied | None = None) -> tuple[Prepared, dict, bool, RunFolder]:
    """Check every setting that needs no data and the destination before anything loads, then load
    the data and the base model once and choose the recipe; returns the prepared run, the values,
    whether this process shows progress (under ``torchrun`` only rank 0 does) and the run's folder.

    A folder the run would refuse is refused as early as possible, dry run or not: its settings
    here, its data once loaded (before the model is built), its whole key once the model is built."""
    values = {**flag_defaults(), **values}
    if values["out"] is not None:
        check_destination(values["out"])  # before anything is loaded
    overrides = overrides_from_flags(values, supplied)
    preset = values["preset"]
    early = settings_check(overrides, preset)  # every setting that needs no data, before anything loads
    out = Path(values["out"]) if values["out"] is not None else default_out(early, preset, overrides.get("model"))
    folder = RunFolder(check_destination(out))
    folder.check({**overrides, **({"preset": preset} if preset else {})})
    distributed.init_from_env(overrides.get("device", "auto"))  # a no-op unless launched by torchrun
    progress = progress and distributed.is_main()
    prepared = prepare(overrides, preset, progress=progress, cache=not values["dry_run"], supplied=supplied,
                       folder=folder)
    return prepared, values, progress, folder


def plan_from_flags(values: dict, progress: bool = False, supplied: Supplied | None = None) -> dict:
    """``--dry-run``: the recipe, the resolved settings and the estimated cost, writing nothing; an
    ``--out`` the run would refuse is refused the same way."""
    prepared, _, _, folder = prepare_from_flags({**values, "dry_run": True}, progress, supplied)
    cfg = prepared.cfg
    folder.check(cfg.to_dict())  # the settings the recipe resolved
    ctx = RunContext.build(cfg, prepared)
    if folder.holds_run():
        folder.check_key(key_of(cfg, ctx), ctx.cfg.to_dict())
    return {"recipe": {"name": prepared.recipe.name, "reason": prepared.recipe.reason},
            "config": ctx.cfg.to_dict(), "estimate": estimate_run(ctx)}


def run_from_flags(values: dict, progress: bool = True, supplied: Supplied | None = None, notes: bool = True,
                   started: float | None = None) -> tuple[dict, Path]:
    """The whole run of these flag values: returns the certificate and the folder it was written to.
    ``notes``: print the note on stderr when the run is estimated at over an hour; ``started``: as
    :func:`llm_bounds.certificate.run.run`'s."""
    prepared, values, progress, folder = prepare_from_flags({**values, "dry_run": False}, progress, supplied)
    return run(prepared.cfg, folder.out, progress=progress, prepared=prepared, started=started, notes=notes), folder.out
