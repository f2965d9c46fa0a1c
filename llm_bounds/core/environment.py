"""What a run's floating-point results depend on: the device, the evaluation dtype, and the versions
of Python and the numerical libraries. Recorded in every certificate under ``environment``.

The message (z) is exact on any machine; the evaluated losses are floats, so another torch build
or device can move them in the last bits. The verifier states when it runs under other versions.
"""
from __future__ import annotations

import platform
from importlib import metadata

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


def environment(device: str, eval_dtype: str) -> dict:
    """The record of where and how a certificate's numbers were computed."""
    return {"device": device, "eval_dtype": eval_dtype, "machine": platform.machine(),
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
    for key in ("device", "eval_dtype", "machine"):
        if recorded.get(key) != here.get(key):
            lines.append(f"{key} {recorded.get(key)} when certified, {here.get(key)} here")
    return lines
