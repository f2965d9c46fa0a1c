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
from llm_bounds.core.environment import code_fingerprint, environment_changes, results_environment
from llm_bounds.core.errors import BoundInputError, RunError, require
from llm_bounds.core.files import DISK_FULL, require_no_symlink_loop, sha256_hex, write_atomic

try:
    import fcntl
except ImportError:  # not POSIX: no lock (the folder key still refuses other settings)
    fcntl = None


@dataclass(frozen=True)
class RunKey:
    """What every stage of a run depends on: the settings as given, the data (content hash), the
    tokenizer (fingerprint), the code (:func:`llm_bounds.core.environment.code_fingerprint`), for
    pretrained weights their sha256 (a checkpoint replaced under the same name is other weights), and
    the environment that changes results (:func:`llm_bounds.core.environment.results_environment`:
    device, CPU, kernel variables, library versions; a run is resumed only where it was started)."""

    config: dict
    data_content_hash: str
    tokenizer_fingerprint: str
    code: str
    weights: str = ""
    environment: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """sha256 (hex) of the key's canonical JSON."""
        return sha256_hex(json.dumps(self.to_dict(), sort_keys=True).encode())

    def differences(self, stored: dict) -> str:
        """What differs between this key and a stored one, in words ('' when nothing does)."""
        return key_differences(stored, self.to_dict())


def run_key(config: dict, device: str, data_content_hash: str, tokenizer_fingerprint: str,
            weights: str = "") -> RunKey:
    """The :class:`RunKey` of a run with ``config`` (as given) on the resolved ``device`` (``cpu``,
    ``cuda``), in this process's code and environment."""
    return RunKey(config=config, data_content_hash=data_content_hash, tokenizer_fingerprint=tokenizer_fingerprint,
                  code=code_fingerprint(), weights=weights, environment=results_environment(device))


def key_differences(stored: dict, given: dict) -> str:
    """What differs between a stored :class:`RunKey` and the fields of ``given`` (all of a key's, or
    only those known so far: the cheap ones are checked before the model is built), in words ('' when
    nothing does). The whole config is compared when ``given`` has one."""
    def differs(name: str) -> bool:
        return name in given and stored.get(name, "" if name == "weights" else None) != given[name]

    if differs("code"):
        return "was started by another version of llm-bounds"
    if differs("environment"):
        changes = environment_changes(stored.get("environment"), given["environment"])
        shown = "; ".join(changes[:4]) + ("; ..." if len(changes) > 4 else "")
        return (f"was started in another environment ({shown}), and its stages hold numbers computed there: "
                "resume it where it was started")
    if differs("data_content_hash"):
        return (f"was started on other data (content hash {str(stored.get('data_content_hash'))[:12]}… then, "
                f"{given['data_content_hash'][:12]}… now: the dataset changed)")
    if differs("tokenizer_fingerprint"):
        return "was started with another tokenizer"
    if differs("weights"):
        return "was started with other weights under the same model name (the checkpoint changed)"
    return config_differences(stored.get("config"), given["config"]) if "config" in given else ""


# settings a run resolves only once the model is built (a certificate records the resolved value)
RESOLVED_IN_BUILD = ("target_modules", "window_prefix")


def certificate_differences(cert, given: dict) -> str:
    """What differs between a folder's ``certificate.json`` and the run about to replace it: the
    fields of ``given`` among ``config`` (compared on its keys only; the resolved config when it
    holds :data:`RESOLVED_IN_BUILD`), ``data_content_hash``, ``tokenizer_fingerprint`` and
    ``weights`` (sha256, "" for a seeded init). '' when the same run may write it again."""
    if not isinstance(cert, dict) or not isinstance(cert.get("config"), dict):
        return "holds a certificate.json that is not a readable certificate"
    if "data_content_hash" in given and cert.get("data_content_hash") != given["data_content_hash"]:
        return (f"holds a certificate of other data (content hash {str(cert.get('data_content_hash'))[:12]}… then, "
                f"{given['data_content_hash'][:12]}… now)")
    if "tokenizer_fingerprint" in given and cert.get("tokenizer_fingerprint") != given["tokenizer_fingerprint"]:
        return "holds a certificate made with another tokenizer"
    weights = cert.get("weights") if isinstance(cert.get("weights"), dict) else {}
    if "weights" in given and weights.get("sha256", "") != given["weights"]:
        return "holds a certificate of other weights"
    if "config" not in given:
        return ""
    config = json.loads(json.dumps(given["config"]))
    return config_differences({k: cert["config"].get(k) for k in config}, config, "a certificate.json")


def config_differences(stored, config: dict, what: str = "a run") -> str:
    """The settings that differ, in words ('' when none do)."""
    if not isinstance(stored, dict):
        return f"holds {what} of an unknown format"
    keys = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
    if not keys:
        return ""
    shown = ", ".join(f"{k} {stored.get(k)!r} then, {config.get(k)!r} now" for k in keys[:3])
    return f"holds {what} with different settings ({shown}{', ...' if len(keys) > 3 else ''})"


def check_destination(out) -> Path:
    """``out`` as a folder a run can write: refuses an empty name, a file, and a folder (or the
    nearest existing parent of a new one) this process cannot write. Creates nothing."""
    require(str(out).strip() != "", "--out is empty; pass the folder to write the run to, e.g. --out runs/mine")
    require_no_symlink_loop(out, "--out")
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

    def evaluation(self, sample: str, message: bytes, limit: int | None = None) -> Path:
        """The evaluation of ``message``'s decoded model on the ``sample`` (token, document, heldout;
        ``limit``: its first units only, e.g. the screen of a trained candidate), named by the
        message and the run key."""
        key = self.key.digest() if self.key is not None else ""
        part = sample if limit is None else f"{sample}-first{int(limit)}"
        name = hashlib.sha256(f"{key}|{part}|{sha256_hex(message)}".encode()).hexdigest()[:16]
        return self.stages / f"eval_{part}_{name}.npz"

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

    def stored_certificate(self):
        """The folder's ``certificate.json`` as JSON (None when there is none; {} when unreadable)."""
        if not self.certificate.is_file():
            return None
        try:
            return json.loads(self.certificate.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return {}

    def holds_run(self) -> bool:
        """True when the folder holds a run's key or certificate that a run here must agree with."""
        return self.settings.is_file() or self.certificate.is_file()

    def _refuse(self, problem: str) -> None:
        if problem:
            raise BoundInputError(f"{self.out} {problem}; choose a new --out or delete {self.out}")

    def check(self, config: dict) -> None:
        """Cheap, before the data is loaded: raise :class:`BoundInputError` if the folder holds a run
        (stages or a certificate) whose settings differ on any key of ``config`` (the whole config, or
        just the settings given explicitly before a recipe resolves the rest); creates nothing.
        :meth:`check_loaded` checks the data once it is loaded, :meth:`check_key` the whole key."""
        stored = self.stored_key()
        if stored is None and self.stages.is_dir() and any(self.stages.iterdir()):
            raise BoundInputError(f"{self.out} holds a run of an older llm-bounds (no stages/key.json); "
                                  f"choose a new --out or delete {self.out}")
        config = json.loads(json.dumps(config))
        if stored is not None:
            old = stored.get("config")
            old = {k: old.get(k) for k in config} if isinstance(old, dict) else old
            self._refuse(config_differences(old, config))
        cert = self.stored_certificate()
        if cert is not None:
            self._refuse(certificate_differences(cert, {"config": {k: v for k, v in config.items()
                                                                   if k not in RESOLVED_IN_BUILD}}))

    def check_loaded(self, device: str, data_content_hash: str, tokenizer_fingerprint: str) -> None:
        """Once the data is loaded, before the model is built: the cheap part of the key (code,
        environment on the resolved ``device``, data content hash, tokenizer fingerprint) against the
        folder's key and certificate. Raises :class:`BoundInputError`; creates nothing."""
        fields = run_key({}, device, data_content_hash, tokenizer_fingerprint).to_dict()
        del fields["config"], fields["weights"]
        stored = self.stored_key()
        if stored is not None:
            self._refuse(key_differences(stored, fields))
        cert = self.stored_certificate()
        if cert is not None:
            self._refuse(certificate_differences(cert, fields))

    def check_key(self, key: RunKey, resolved_config: dict | None = None) -> None:
        """The whole ``key`` against the folder's stored key, and its data, tokenizer, weights and
        ``resolved_config`` (the config as the certificate records it: LoRA targets and window prefix
        resolved) against a ``certificate.json`` there, which a run with other settings must not
        replace (the same settings may run again). Raises :class:`BoundInputError`; creates nothing."""
        stored = self.stored_key()
        if stored is None and self.stages.is_dir() and any(p != self.settings for p in self.stages.iterdir()):
            stored = {}
        if stored is not None:
            self._refuse(key.differences(stored))
        cert = self.stored_certificate()
        if cert is not None:
            self._refuse(certificate_differences(cert, {
                "config": resolved_config if resolved_config is not None else key.config,
                "data_content_hash": key.data_content_hash, "tokenizer_fingerprint": key.tokenizer_fingerprint,
                "weights": key.weights}))

    def claim(self, key: RunKey, resolved_config: dict | None = None) -> list[Path]:
        """Create the folder for a run with ``key`` and lock it, or resume a run started with the same key.

        Returns what this call created (for :meth:`release`). Raises :class:`BoundInputError` when
        the folder holds a run under another key or a certificate of another run (:meth:`check_key`),
        and :class:`RunError` when another run holds it. Under ``torchrun`` only rank 0 creates,
        locks, checks and writes; the other ranks wait for it.
        """
        if not distributed.is_main():
            distributed.barrier()
            self.key = key
            return []
        created = self._claim(key, resolved_config)
        distributed.barrier()
        return created

    def _claim(self, key: RunKey, resolved_config: dict | None) -> list[Path]:
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
        try:
            self.check_key(key, resolved_config)
        except BoundInputError:
            self._remove(created)
            self.unlock()
            raise
        if self.stored_key() is None:
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
