"""Files and hashes: the one atomic writer (never a half-written file), sha256, JSON values, symlink loops."""
from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from llm_bounds.core import distributed
from llm_bounds.core.errors import BoundInputError, RunError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def write_atomic(path: Path, data: bytes | str | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``,
    so a reader never sees half a file and an interrupted write leaves no debris.

    ``data`` is bytes, text (UTF-8), or a function that writes into the open binary file (for
    ``np.save``, ``torch.save`` or a figure's ``savefig``). Under ``torchrun`` only rank 0 writes
    (every rank holds the same data). This is the project's only atomic writer.

    A full disk raises :class:`llm_bounds.core.errors.RunError` naming the folder (what was written
    before stays, so a run resumes from it once there is space).
    """
    if not distributed.is_main():
        return
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a written file gets the usual mode
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            raise RunError(f"no space left on the device while writing {path.name} in {path.parent}; free some "
                           "space and run the same command again: it resumes from the files already written") from None
        if isinstance(e, OSError) and e.errno in UNWRITABLE:
            raise RunError(f"could not write {path.name} in {path.parent} ({e.strerror}); make the folder writable "
                           "and run the same command again: it resumes from the files already written") from None
        raise


def symlink_loop(path) -> Path | None:
    """The first part of ``path`` that is a symbolic link leading back to itself (resolving it fails
    with ``ELOOP``), or None. Such a path does not "not exist": ``Path.exists`` says False for it."""
    path = Path(path).expanduser()
    try:
        os.stat(path)
        return None
    except OSError as e:
        if e.errno != errno.ELOOP:
            return None
    for part in [*reversed(path.parents), path]:
        try:
            os.stat(part)
        except OSError as e:
            if e.errno == errno.ELOOP:
                return part
    return path


def require_no_symlink_loop(path, what: str) -> None:
    """Raise :class:`BoundInputError` naming the loop when ``path`` (given as ``what``, e.g.
    ``--dataset``) runs into a symlink loop."""
    loop = symlink_loop(path)
    if loop is not None:
        where = "is" if loop == Path(path).expanduser() else f"lies under {loop},"
        raise BoundInputError(f"{what} {path} {where} a symlink loop (links that lead back to themselves), not a "
                              "missing path; point it at a real file or folder")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
