"""Golden files: the smoke preset's message and certificate, pinned byte for byte.

``tests/golden/smoke-*`` are the current (version-4) files; ``smoke-v3-*`` and ``smoke-v2-*`` hold the
same run's version-3 and version-2 certificates and ``smoke-v1-*`` were written before the library
was re-layered, with version-1 bounds (see the folder's README). A change that moves
the message, a seed, the sample or any certified number fails here.
"""
import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
TORCH_VERSION = "2.14.1"  # floats are pinned for this torch build only (tests/golden/README.md)
CPU_CAPABILITY = "AVX512"  # ... and these CPU kernels; elsewhere floats are compared as the verifier does
GOLDEN_SHA256 = "b6ca2409d106942ee4d7244664359d9c09d53fd4ca228282723f29d6a31706a2"


def script(name, *args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def certified_part(cert: dict) -> dict:
    """Everything the message justifies (``informational`` holds timings and the training log;
    ``environment`` and ``baseline_bits_per_byte`` are not re-derived either)."""
    return {k: v for k, v in cert.items() if k not in ("informational", "environment", "baseline_bits_per_byte")}


@pytest.mark.parametrize("name", ["smoke", "smoke-v3", "smoke-v2", "smoke-v1"])
def test_golden_message_hash_is_the_file(name):
    data = (GOLDEN / f"{name}-message.bin").read_bytes()
    assert hashlib.sha256(data).hexdigest() == GOLDEN_SHA256  # the message did not change with versions 2 to 4
    assert json.loads((GOLDEN / f"{name}-certificate.json").read_text())["message_sha256"] == GOLDEN_SHA256


@pytest.mark.skipif(torch.__version__.split("+")[0] != TORCH_VERSION,
                    reason=f"golden floats were produced with torch {TORCH_VERSION}; this is {torch.__version__}")
def test_smoke_preset_gives_the_golden_message_and_certificate(tmp_path):
    res = script("bound.py", "--preset", "smoke", "--out", tmp_path / "run", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    message = (tmp_path / "run" / "message.bin").read_bytes()
    assert hashlib.sha256(message).hexdigest() == GOLDEN_SHA256
    assert message == (GOLDEN / "smoke-message.bin").read_bytes()
    new = json.loads((tmp_path / "run" / "certificate.json").read_text())
    old = json.loads((GOLDEN / "smoke-certificate.json").read_text())
    # the same kernels: torch's CPU capability and the CPU model the golden run recorded (an Intel and an
    # AMD host, both AVX-512, differ at about 2e-9 relative, as AVX2 and AVX-512 do)
    same_kernels = (torch.backends.cpu.get_cpu_capability() == CPU_CAPABILITY
                    and new["environment"].get("cpu") == old["environment"].get("cpu"))
    old, new = certified_part(old), certified_part(new)
    # keys added later may follow, at any depth; none may change: integers and strings exactly, floats
    # to 1e-9 (a faster log2 or summation order moves the last bits; the message bytes are pinned above),
    # or to the verifier's 1e-6 under other CPU kernels
    rtol = 1e-9 if same_kernels else 1e-6
    assert same(restricted(new, old), old, rtol)


def same(a, b, rtol: float) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], rtol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, rtol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-15)
    return a == b and type(a) is type(b)


def restricted(new, old):
    """``new`` cut down to the keys of ``old``, recursively (what the golden file already pinned)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: restricted(new.get(k), v) for k, v in old.items()}
    return new


def copy_run(tmp_path, name):
    run = tmp_path / name
    run.mkdir()
    shutil.copy(GOLDEN / f"{name}-message.bin", run / "message.bin")
    shutil.copy(GOLDEN / f"{name}-certificate.json", run / "certificate.json")
    return run


def test_the_golden_certificate_verifies(tmp_path):
    res = script("verify.py", copy_run(tmp_path, "smoke") / "certificate.json", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "verified"
    # written before the stream hash and the Hoeffding statement (#29); its bounds, written on an AMD EPYC,
    # are within the verifier's float-noise allowance (1e-7 relative) of those re-derived on any AVX-512 host
    assert "written before these keys existed: token_stream_sha256, claims.not_counted" in res.stderr


@pytest.mark.parametrize("version, commit", [(1, "e2eecf1"), (2, "8a76458"), (3, "694ca41")])
def test_an_older_certificate_is_refused_with_the_commit_that_verifies_it(tmp_path, version, commit):
    res = script("verify.py", copy_run(tmp_path, f"smoke-v{version}") / "certificate.json", "--quiet")
    assert res.returncode == 1
    assert f"version-{version} certificate" in res.stderr and commit in res.stderr
