"""What this tool refuses in a model or tokenizer folder before transformers is asked to read it.

A folder is data, never code. transformers can run a folder's own Python: a ``config.json`` or
``tokenizer_config.json`` with an ``auto_map`` names classes in the folder's ``*.py`` files, which
transformers imports (it asks ``[y/N]`` on stdin, and a piped ``y`` says yes). And torch's pickle
format (``pytorch_model.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``) is read by unpickling, which can run
code. So every load passes ``trust_remote_code=False`` and, for weights, ``use_safetensors=True``
(:data:`SAFE_LOAD`), and the folder is checked first: :func:`check_folder` refuses, in one line,
a folder with an ``auto_map`` and (for weights) one whose only weights are pickles.
"""
from __future__ import annotations

import json
from pathlib import Path

from llm_bounds.core.errors import UnsafeFolderError

# the keyword arguments every transformers load gets: never the folder's code
SAFE_LOAD = {"trust_remote_code": False}
# ... and every weights load: safetensors only, never a pickle
SAFE_WEIGHTS = {"trust_remote_code": False, "use_safetensors": True}
CODE_MAPS = ("config.json", "tokenizer_config.json")   # where transformers reads an auto_map
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_JSON_BYTES = 16 * 2**20  # larger "config" files are not configs: transformers reports them
CODE_REFUSAL = ("loading it would import and run the folder's own Python code, and this tool never runs a "
                "model's code; use a model or tokenizer that transformers supports without custom code")


def custom_code_file(folder: str | Path) -> str | None:
    """The name of the file in ``folder`` whose non-empty ``auto_map`` asks transformers to run the
    folder's own code, or None. Files that are missing or not JSON are left to transformers."""
    for name in CODE_MAPS:
        path = Path(folder) / name
        try:
            if not path.is_file() or path.stat().st_size > MAX_JSON_BYTES:
                continue
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("auto_map"):
            return name
    return None


def pickled_weights(folder: str | Path) -> list[str]:
    """The pickle files in ``folder`` that transformers would read as weights: every
    ``*.bin``/``*.pt``/``*.pth``/``*.ckpt``/``*.pkl`` when the folder holds no ``*.safetensors``
    (with safetensors present, transformers reads those and never the pickles). Sorted names."""
    try:
        files = [p for p in Path(folder).iterdir() if p.is_file()]
    except OSError:
        return []
    if any(p.name.endswith(".safetensors") for p in files):
        return []
    return sorted(p.name for p in files if p.name.lower().endswith(PICKLE_SUFFIXES))


def check_folder(folder: str | Path | None, what: str, weights: bool = False) -> None:
    """Refuse ``folder`` (the one transformers is about to read for ``what``, e.g. ``model 'x'``)
    when it asks for custom code or, with ``weights``, when its weights are pickles. One line each,
    :class:`UnsafeFolderError`; nothing in the folder is imported or unpickled. None: nothing to check."""
    if folder is None or not Path(folder).is_dir():
        return
    if str(folder) not in what:  # a hub id or a GGUF name: say where its files are
        what = f"{what} at {folder}"
    code = custom_code_file(folder)
    if code is not None:
        raise UnsafeFolderError(f"{what} has custom code (an auto_map in its {code}): {CODE_REFUSAL}")
    if weights:
        pickles = pickled_weights(folder)
        if pickles:
            raise UnsafeFolderError(
                f"{what} has its weights only as a pickle ({', '.join(pickles[:3])}), which could run "
                "code when unpickled, and this tool never unpickles a model; convert it to safetensors (in a "
                "Python session you trust: load it and call model.save_pretrained(DIR), which writes "
                "model.safetensors) and pass that folder")


def remote_code_refusal(err: Exception, what: str) -> UnsafeFolderError | None:
    """The one-line refusal for transformers' own error when ``trust_remote_code=False`` met a
    repository with custom code (a hub download, which :func:`check_folder` could not see first)."""
    if isinstance(err, ValueError) and "trust_remote_code" in str(err):
        return UnsafeFolderError(f"{what} has custom code: {CODE_REFUSAL}")
    return None
