"""The run folder: the one place that names every output, stage and cache file of a run.

``OUT/`` holds the certificate (``message.bin``, ``certificate.json``, ``summary.md``);
``OUT/stages/`` holds what an interrupted run resumes from: the settings it was started with,
trained z, training checkpoints, every candidate message and every evaluation. An evaluation of a
decoded message is keyed by the message's sha256, so a cache can never be read for another model.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from llm_bounds.core.errors import BoundInputError
from llm_bounds.core.files import sha256_hex, write_atomic


@dataclass(frozen=True)
class RunFolder:
    """The files of one run under ``out``."""

    out: Path

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
        return self.stages / "config.json"

    @property
    def z(self) -> Path:
        return self.stages / "z.npy"

    @property
    def train_summary(self) -> Path:
        return self.stages / "train.json"

    @property
    def train_checkpoints(self) -> Path:
        return self.stages / "train"

    def candidate(self, levels: int) -> Path:
        """The message coded with ``levels`` quantization levels."""
        return self.stages / f"message_L{int(levels)}.bin"

    def evaluation(self, sample: str, message: bytes) -> Path:
        """The evaluation of ``message``'s decoded model on the ``sample`` (token, document, heldout)."""
        return self.stages / f"eval_{sample}_{sha256_hex(message)[:16]}.npz"

    @property
    def fp32_evaluation(self) -> Path:
        """The evaluation of the unquantized z on the token sample (informational)."""
        return self.stages / "eval_fp32.npz"

    def check(self, settings: dict) -> None:
        """Raise :class:`BoundInputError` if the folder holds a run with other settings (creates nothing)."""
        if self.settings.is_file():
            mine = json.dumps(settings, sort_keys=True)
            if json.dumps(json.loads(self.settings.read_text()), sort_keys=True) != mine:
                raise BoundInputError(f"{self.out} holds a run with different settings; "
                                      f"choose a new --out or delete {self.out}")

    def claim(self, settings: dict) -> list[Path]:
        """Create the folder for a run with ``settings``, or resume one started with the same settings.

        Returns what this call created (for :meth:`release`). Raises :class:`BoundInputError` when
        the folder holds a run with other settings.
        """
        self.check(settings)
        created = [p for p in (self.out, self.stages) if not p.exists()]
        self.stages.mkdir(parents=True, exist_ok=True)
        if not self.settings.is_file():
            write_atomic(self.settings, json.dumps(settings, sort_keys=True))
            created.append(self.settings)
        return created

    def started(self) -> bool:
        """True once the run has written anything beyond its settings (a checkpoint, z, a message...)."""
        return self.stages.is_dir() and any(p.is_file() and p != self.settings for p in self.stages.rglob("*"))

    def release(self, created: list[Path]) -> None:
        """Remove what :meth:`claim` created, unless the run has started (a resume needs it):
        a run that fails before training leaves no empty folder behind."""
        if self.started():
            return
        for p in reversed(created):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
