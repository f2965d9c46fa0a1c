"""What a run's floating-point results depend on: the device, the evaluation dtype, the versions of
Python and the numerical libraries, and on a CPU the instruction set torch's kernels use. Recorded
in every certificate under ``environment``.

Training is a long chain of float operations, so its result (the message) is bit-identical only
where all of these agree. ``cpu_capability`` matters as much as the versions: torch picks AVX2 or
AVX-512 kernels by what the CPU offers, and hosts of one machine kind can differ there (on the
project's machines an AVX-512 host and an AVX2 host give different default messages from the same
torch 2.14.1; ``ATEN_CPU_CAPABILITY=avx2`` makes the first behave as the second). A certificate is
verifiable anywhere: its message decodes to the same model on any machine, and the verifier
re-evaluates it, noting any difference listed here.
"""
from __future__ import annotations

import functools
import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

LIBRARIES = ("torch", "transformers", "peft", "numpy", "constriction")


def library_versions() -> dict[str, str | None]:
    """Installed version of each of :data:`LIBRARIES` (None when absent) and of Python."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_capability() -> str | None:
    """The instruction set torch's CPU kernels use (``AVX2``, ``AVX512``, ``DEFAULT``, ...)."""
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except (ImportError, AttributeError):
        return None


def cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (None elsewhere): descriptive only."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


# environment variables that choose numerical kernels (each changed the default's message on an AVX-512 host)
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR")
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def cpu_flags() -> list[str]:
    """Which of :data:`CPU_FLAGS` the CPU reports (``/proc/cpuinfo``; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in CPU_FLAGS if flag in have]
    except OSError:
        pass
    return []


def environment(device: str, eval_dtype: str) -> dict:
    """The record of where and how a certificate's numbers were computed."""
    import torch

    return {"device": device, "eval_dtype": eval_dtype, "machine": platform.machine(),
            "cpu_capability": cpu_capability(), "cpu": cpu_model(), "cpu_flags": cpu_flags(),
            "threads": torch.get_num_threads(),
            "kernel_settings": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
            "versions": library_versions()}


def differences(recorded: dict | None, here: dict) -> list[str]:
    """Readable lines for each recorded library version or device type that differs from ``here``."""
    if not recorded:
        return ["the certificate does not record the versions it was produced with"]
    lines = []
    old, new = recorded.get("versions", {}), here.get("versions", {})
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            lines.append(f"{name} {old.get(name)} when certified, {new.get(name)} here")
    for key in ("device", "eval_dtype", "machine", "cpu_capability", "kernel_settings"):
        if recorded.get(key) != here.get(key):
            lines.append(f"{key} {recorded.get(key)} when certified, {here.get(key)} here")
    return lines


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 (hex) of the library's own source: every ``.py`` file of ``llm_bounds`` and the
    tokenizer files it ships, by relative path. Stages cached by one version of the code are not
    read back by another (:class:`llm_bounds.certificate.stages.RunKey`)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and (p.suffix == ".py" or p.parent.name == "gpt2_bpe")):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def available_memory_bytes() -> int | None:
    """Memory the system can give this process now (``MemAvailable`` of ``/proc/meminfo``), in
    bytes; None where that is unknown (the check that uses it is then skipped)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def process_seconds() -> float | None:
    """Seconds since this process started (imports included), from ``/proc``; None elsewhere."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
