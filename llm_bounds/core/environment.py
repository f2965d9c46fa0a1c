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
# the libraries that turn text into token ids (a new release can split the same text differently)
TOKENIZATION_LIBRARIES = ("tokenizers", "transformers", "tiktoken")


def library_versions(names: tuple[str, ...] = LIBRARIES) -> dict[str, str | None]:
    """Installed version of each of ``names`` (default :data:`LIBRARIES`; None when absent) and of Python."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
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


def gpu_name(device: str) -> str | None:
    """The GPU's name for a ``cuda`` device (None for any other device)."""
    if not device.startswith("cuda"):
        return None
    import torch

    return torch.cuda.get_device_name(torch.device(device))


def environment(device: str, eval_dtype: str) -> dict:
    """The record of where and how a certificate's numbers were computed."""
    import torch

    record = {"device": device, "eval_dtype": eval_dtype, "machine": platform.machine(),
              "cpu_capability": cpu_capability(), "cpu": cpu_model(), "cpu_flags": cpu_flags(),
              "threads": torch.get_num_threads(),
              "kernel_settings": {k: os.environ[k] for k in KERNEL_VARIABLES if k in os.environ},
              "versions": library_versions()}
    if gpu_name(device) is not None:
        record["gpu"] = gpu_name(device)
    return record


def results_environment(device: str) -> dict:
    """What a run's numbers depend on beyond its settings, data, tokenizer and code: the resolved
    device (and GPU), the CPU (model, flags and the kernels torch picks: an Intel and an AMD AVX-512
    host move the smoke losses by about 2e-9 relative), the kernel variables and the versions of the
    numerical and tokenization libraries. Part of every stage's key
    (:class:`llm_bounds.certificate.stages.RunKey`), so stages computed in one environment are never
    mixed into a certificate that records another. The thread count is left out: it changes no
    result (the evaluation's sums are taken in a fixed order)."""
    record = environment(device, "")
    record = {k: v for k, v in record.items() if k not in ("eval_dtype", "threads")}  # eval_dtype: a setting
    record["versions"] = library_versions(tuple(dict.fromkeys(LIBRARIES + TOKENIZATION_LIBRARIES)))
    return record


def environment_changes(old: dict | None, new: dict) -> list[str]:
    """Each entry of two :func:`results_environment` records that differs, as "NAME OLD then, NEW now"
    (a library by its name, a kernel variable by its name, "unset" for an absent value)."""
    if not isinstance(old, dict):
        return ["none recorded then"]
    lines = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) or isinstance(b, dict):
            a, b = a if isinstance(a, dict) else {}, b if isinstance(b, dict) else {}
            lines += [f"{name} {a.get(name, 'unset')} then, {b.get(name, 'unset')} now"
                      for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]
        elif a != b:
            lines.append(f"{key} {a} then, {b} now")
    return lines


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
