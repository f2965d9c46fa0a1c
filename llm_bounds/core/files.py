"""Files and hashes: atomic writes (never a half-written file), sha256, numpy bytes and JSON values."""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from llm_bounds.core import distributed


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``: never a half-written file.

    Under ``torchrun`` only rank 0 writes (every rank holds the same data).
    """
    if not distributed.is_main():
        return
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npy_bytes(save, *args, **kwargs) -> bytes:
    """What ``np.save``/``np.savez`` would write, as bytes (so that :func:`write_atomic` writes it)."""
    buf = io.BytesIO()
    save(buf, *args, **kwargs)
    return buf.getvalue()


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
