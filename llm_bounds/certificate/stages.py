"""The run folder: the one place that names every output, stage and cache file of a run.

``OUT/`` holds the certificate (``message.bin``, ``certificate.json``, ``summary.md``; ``curve.csv`` and
``curve.png`` with ``--track``);
``OUT/stages/`` holds what an interrupted run resumes from: the key it was started with, trained z,
training checkpoints (and z at each tracked checkpoint), every candidate message and every evaluation.

Everything in ``stages/`` depends on the :class:`RunKey`: the settings, the data's content hash, the
tokenizer and the code. A folder started under one key is refused under any other, naming what
differs, so a stage computed on other data or by other code is never read back (a stale evaluation
would be a wrong certificate). An evaluation's file name also carries the key and the message's
sha256. While a run writes, it holds a lock on ``OUT`` (``flock``), so two runs never interleave.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llm_bounds.core import distributed
from llm_bounds.core.errors import BoundInputError, RunError, require
from llm_bounds.core.files import DISK_FULL, sha256_hex, write_atomic

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the folder key still refuses other settings)
    fcntl = None


@dataclass(frozen=True)
class RunKey:
    """What every stage of a run depends on: the settings as given, the data (content hash), the
    tokenizer (fingerprint), the code (:func:`llm_bounds.core.environment.code_fingerprint`) and,
    for pretrained weights, their sha256 (a checkpoint replaced under the same name is other weights)."""

    config: dict
    data_content_hash: str
    tokenizer_fingerprint: str
    code: str
    weights: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """sha256 (hex) of the key's canonical JSON."""
        return sha256_hex(json.dumps(self.to_dict(), sort_keys=True).encode())

    def differences(self, stored: dict) -> str:
        """What differs between this key and a stored one, in words ('' when nothing does)."""
        if stored.get("code") != self.code:
            return "was started by another version of llm-bounds"
        if stored.get("data_content_hash") != self.data_content_hash:
            return (f"was started on other data (content hash {str(stored.get('data_content_hash'))[:12]}… then, "
                    f"{self.data_content_hash[:12]}… now: the dataset changed)")
        if stored.get("tokenizer_fingerprint") != self.tokenizer_fingerprint:
            return "was started with another tokenizer"
        if stored.get("weights", "") != self.weights:
            return "was started with other weights under the same model name (the checkpoint changed)"
        return config_differences(stored.get("config"), self.config)


def config_differences(stored, config: dict) -> str:
    """The settings that differ, in words ('' when none do)."""
    if not isinstance(stored, dict):
        return "holds a run of an unknown format"
    keys = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
    if not keys:
        return ""
    shown = ", ".join(f"{k} {stored.get(k)!r} then, {config.get(k)!r} now" for k in keys[:3])
    return f"holds a run with different settings ({shown}{', ...' if len(keys) > 3 else ''})"


def check_destination(out) -> Path:
    """``out`` as a folder a run can write: refuses an empty name, a file, and a folder (or the
    nearest existing parent of a new one) this process cannot write. Creates nothing."""
    require(str(out).strip() != "", "--out is empty; pass the folder to write the run to, e.g. --out runs/mine")
    out = Path(out).expanduser()
    require(not out.exists() or out.is_dir(), f"--out {out} is a file; pass a folder (new or holding a run)")
    probe = out
    while not probe.exists():
        probe = probe.parent
    require(probe.is_dir(), f"--out {out} lies under {probe}, which is a file; pass a folder path")
    require(os.access(probe, os.W_OK | os.X_OK),
            f"--out {out}: {probe} is not writable by this user; pass a folder you can write")
    return out


@dataclass
class RunFolder:
    """The files of one run under ``out``; :meth:`claim` sets its :class:`RunKey` and takes the lock."""

    out: Path
    key: RunKey | None = None
    _lock_fd: int | None = field(default=None, repr=False)

    def __post_init__(self):
        self.out = Path(self.out)

    # the certificate
    @property
    def message(self) -> Path:
        return self.out / "message.bin"

    @property
    def certificate(self) -> Path:
        return self.out / "certificate.json"

    @property
    def summary(self) -> Path:
        return self.out / "summary.md"

    # the stages
    @property
    def stages(self) -> Path:
        return self.out / "stages"

    @property
    def settings(self) -> Path:
        """The :class:`RunKey` the run was started with."""
        return self.stages / "key.json"

    @property
    def z(self) -> Path:
        return self.stages / "z.npy"

    @property
    def train_summary(self) -> Path:
        return self.stages / "train.json"

    @property
    def train_checkpoints(self) -> Path:
        return self.stages / "train"

    @property
    def curve(self) -> Path:
        """The certified checkpoints along training (``--track``), one row each."""
        return self.out / "curve.csv"

    @property
    def curve_plot(self) -> Path:
        """The plot of :attr:`curve` (drawn by the command line, not the library)."""
        return self.out / "curve.png"

    def z_at(self, step: int) -> Path:
        """z after ``step`` training steps, a checkpoint before the last (``--track``)."""
        return self.stages / f"z_step{int(step)}.npy"

    def candidate(self, levels: int, step: int | None = None) -> Path:
        """The message coded with ``levels`` quantization levels (of the z after ``step`` steps, a
        checkpoint before the last; None: the final z)."""
        at = "" if step is None else f"step{int(step)}_"
        return self.stages / f"message_{at}L{int(levels)}.bin"

    def evaluation(self, sample: str, message: bytes) -> Path:
        """The evaluation of ``message``'s decoded model on the ``sample`` (token, document, heldout),
        named by the message and the run key."""
        key = self.key.digest() if self.key is not None else ""
        name = hashlib.sha256(f"{key}|{sample}|{sha256_hex(message)}".encode()).hexdigest()[:16]
        return self.stages / f"eval_{sample}_{name}.npz"

    @property
    def fp32_evaluation(self) -> Path:
        """The evaluation of the unquantized z on the token sample (informational)."""
        return self.stages / "eval_fp32.npz"

    def stored_key(self) -> dict | None:
        if not self.settings.is_file():
            return None
        try:
            return json.loads(self.settings.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}

    def check(self, config: dict) -> None:
        """Cheap, before the data is loaded: raise :class:`BoundInputError` if the folder holds a run
        whose settings differ on any key of ``config`` (the whole config, or just the settings given
        explicitly before a recipe resolves the rest); creates nothing. :meth:`claim` checks the whole key."""
        stored = self.stored_key()
        if stored is None and self.stages.is_dir() and any(self.stages.iterdir()):
            raise BoundInputError(f"{self.out} holds a run of an older llm-bounds (no stages/key.json); "
                                  f"choose a new --out or delete {self.out}")
        if stored is not None:
            old = stored.get("config")
            old = {k: old.get(k) for k in config} if isinstance(old, dict) else old
            problem = config_differences(old, json.loads(json.dumps(config)))
            if problem:
                raise BoundInputError(f"{self.out} {problem}; choose a new --out or delete {self.out}")

    def claim(self, key: RunKey) -> list[Path]:
        """Create the folder for a run with ``key`` and lock it, or resume a run started with the same key.

        Returns what this call created (for :meth:`release`). Raises :class:`BoundInputError` when
        the folder holds a run under another key, and :class:`RunError` when another run holds it.
        Under ``torchrun`` only rank 0 creates, locks, checks and writes; the other ranks wait for it.
        """
        if not distributed.is_main():
            distributed.barrier()
            self.key = key
            return []
        created = self._claim(key)
        distributed.barrier()
        return created

    def _claim(self, key: RunKey) -> list[Path]:
        created = []
        for p in (self.out, self.stages):
            try:
                p.mkdir(parents=True)
                created.append(p)
            except FileExistsError:
                pass
            except OSError as e:
                self._remove(created)
                if e.errno in DISK_FULL:
                    raise RunError(f"no space left on the device to create {p}; free some space and run the same "
                                   "command again") from None
                raise BoundInputError(f"cannot create {p} ({e.strerror}); pass an --out you can write") from None
        self._lock()
        stored = self.stored_key()
        if stored is None and any(p != self.settings for p in self.stages.iterdir()):
            stored = {}
        if stored is not None:
            problem = key.differences(stored)
            if problem:
                self.unlock()
                raise BoundInputError(f"{self.out} {problem}; choose a new --out or delete {self.out}")
        else:
            try:
                write_atomic(self.settings, json.dumps(key.to_dict(), sort_keys=True))
            except BaseException:
                self._remove(created)
                self.unlock()
                raise
            created.append(self.settings)
        self.key = key
        return created

    def _lock(self) -> None:
        """Hold an exclusive ``flock`` on ``out`` until :meth:`unlock` or the end of the process."""
        if fcntl is None or not distributed.is_main() or self._lock_fd is not None:
            return
        fd = os.open(self.out, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunError(f"another run is writing to {self.out}; wait for it to finish, or pass another --out") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def started(self) -> bool:
        """True once the run has written anything beyond its key (a checkpoint, z, a message...)."""
        return self.stages.is_dir() and any(p.is_file() and p != self.settings for p in self.stages.rglob("*"))

    def release(self, created: list[Path]) -> None:
        """Remove what :meth:`claim` created, unless the run has started (a resume needs it):
        a run that fails before training leaves no empty folder behind. Unlocks."""
        if not self.started():
            self._remove(created)
        self.unlock()

    def discard(self, created: list[Path]) -> None:
        """Remove the stages (nothing in them can be resumed, e.g. after divergence) and whatever
        :meth:`claim` created; a certificate written earlier into ``out`` stays. Unlocks."""
        if distributed.is_main():
            shutil.rmtree(self.stages, ignore_errors=True)
        self._remove(created)
        self.unlock()

    def _remove(self, created: list[Path]) -> None:
        if not distributed.is_main():
            return
        for p in reversed(created):
            if p.is_dir():
                if p == self.out and any(p.iterdir()) and not set(p.iterdir()) <= {self.stages}:
                    continue  # something else was written there meanwhile
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
