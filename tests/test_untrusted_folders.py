"""A model or tokenizer folder is data, never code: a folder with custom code (``auto_map``) or with
pickled weights is refused in one line (exit 2) by bound.py, compare.py and verify.py, even with
``y`` on stdin (transformers' ``[y/N]`` prompt), and nothing in it ever runs (a marker file that
its code or its pickle would write never appears)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_bounds.core.errors import UnsafeFolderError
from llm_bounds.core.model_folder import check_folder, custom_code_file, pickled_weights

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"

WRITE_MARKER = "import pathlib\npathlib.Path({marker!r}).write_text('the folder ran its code')\n"


class WritesMarker:
    """Unpickling this object writes the marker (what a hostile pytorch_model.bin can do)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path(self.marker).write_text, ("the pickle ran code",))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``remote``: config.json with an auto_map and the modeling_x.py it names; ``remote-tokenizer``:
    tokenizer_config.json with an auto_map; ``pickle``: a GPT-2 config and a pytorch_model.bin whose
    unpickling writes the marker. The marker is one file for all three."""
    import torch
    from transformers import GPT2Config

    d = tmp_path_factory.mktemp("untrusted")
    marker = str(d / "MARKER")
    remote = d / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(json.dumps({
        "model_type": "xmodel", "vocab_size": 257,
        "auto_map": {"AutoConfig": "modeling_x.XConfig", "AutoModelForCausalLM": "modeling_x.XModel",
                     "AutoTokenizer": ["modeling_x.XTokenizer", None]}}))
    (remote / "modeling_x.py").write_text(WRITE_MARKER.format(marker=marker))
    tok = d / "remote-tokenizer"
    tok.mkdir()
    (tok / "tokenizer_config.json").write_text(json.dumps(
        {"auto_map": {"AutoTokenizer": ["tokenization_x.XTokenizer", None]}}))
    (tok / "tokenization_x.py").write_text(WRITE_MARKER.format(marker=marker))
    pickled = d / "pickle"
    GPT2Config(n_layer=1, n_embd=32, n_head=1, vocab_size=257, n_positions=256).save_pretrained(pickled)
    torch.save({"transformer.wte.weight": WritesMarker(marker)}, pickled / "pytorch_model.bin")
    data = d / "data"
    data.mkdir()
    for i in range(6):
        (data / f"{i}.txt").write_text(f"document {i}: in the beginning was the word. " * 30)
    return {"remote": remote, "remote-tokenizer": tok, "pickle": pickled, "data": data, "marker": Path(marker)}


def run(script, args, tmp_path):
    env = dict(os.environ, LLM_BOUNDS_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return subprocess.run([sys.executable, str(ROOT / "scripts" / script), *map(str, args)], input="y\nyes\n",
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def assert_refused(res, folders, words):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert all(w in lines[0] for w in words), lines[0]
    assert not folders["marker"].exists(), "the folder's code ran"


CODE = ("custom code", "auto_map", "never runs a model's code")
PICKLE = ("pytorch_model.bin", "pickle", "safetensors")
BOUND_CASES = {
    "remote, pretrained": (lambda f: ["--model", f["remote"]], CODE),
    "remote, scratch": (lambda f: ["--model", f["remote"], "--init", "scratch"], CODE),
    "remote tokenizer": (lambda f: ["--model", "gpt2-l1-d32", "--tokenizer", f["remote-tokenizer"]], CODE),
    "remote as tokenizer": (lambda f: ["--model", "gpt2-l1-d32", "--tokenizer", f["remote"]], CODE),
    "pickle": (lambda f: ["--model", f["pickle"], "--tokenizer", "bytes"], PICKLE),
}


@pytest.mark.parametrize("case", sorted(BOUND_CASES))
def test_bound_refuses_a_folder_that_would_run_code(case, folders, tmp_path):
    args, words = BOUND_CASES[case]
    out = tmp_path / "run"
    res = run("bound.py", ["--preset", "smoke", "--quiet", "--dataset", folders["data"], "--out", out,
                           *args(folders)], tmp_path)
    assert_refused(res, folders, words)
    assert not out.exists()


@pytest.mark.parametrize("name, words", [("remote", CODE), ("pickle", PICKLE)])
def test_compare_refuses_a_folder_that_would_run_code(name, words, folders, tmp_path):
    res = run("compare.py", ["--models", folders[name], "--preset", "smoke", "--dataset", folders["data"],
                             "--out", tmp_path / "cmp", "--quiet"], tmp_path)
    assert_refused(res, folders, words)


@pytest.mark.parametrize("config, words", [
    (lambda f: {"model": str(f["remote"]), "init": "scratch"}, CODE),
    (lambda f: {"tokenizer": str(f["remote-tokenizer"])}, CODE),
    (lambda f: {"model": str(f["pickle"]), "init": "pretrained"}, PICKLE),
], ids=["remote model", "remote tokenizer", "pickle"])
def test_verify_refuses_a_certificate_whose_model_folder_would_run_code(config, words, folders, tmp_path):
    """The cheapest certificate that names the folder: the golden smoke certificate and message, with
    the folder put in its config (verify reaches the model before it could compare anything)."""
    cert = json.loads((GOLDEN / "smoke-certificate.json").read_text())
    cert["config"].update(config(folders), dataset=str(folders["data"]))
    (tmp_path / "cert").mkdir()
    (tmp_path / "cert" / "certificate.json").write_text(json.dumps(cert))
    shutil.copy(GOLDEN / "smoke-message.bin", tmp_path / "cert" / "message.bin")
    res = run("verify.py", [tmp_path / "cert" / "certificate.json", "--quiet"], tmp_path)
    assert_refused(res, folders, words)


def test_what_counts_as_code_or_pickle(tmp_path, folders):
    assert custom_code_file(folders["remote"]) == "config.json"
    assert custom_code_file(folders["remote-tokenizer"]) == "tokenizer_config.json"
    assert custom_code_file(folders["pickle"]) is None
    assert pickled_weights(folders["pickle"]) == ["pytorch_model.bin"]
    # with safetensors beside it, transformers reads those (and is told to): the pickle is never read
    shutil.copytree(folders["pickle"], tmp_path / "both")
    (tmp_path / "both" / "model.safetensors").write_bytes(b"")
    assert pickled_weights(tmp_path / "both") == []
    check_folder(tmp_path / "both", "model 'both'", weights=True)
    # an empty auto_map asks for nothing
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.json").write_text(json.dumps({"model_type": "gpt2", "auto_map": {}}))
    check_folder(tmp_path / "plain", "model 'plain'", weights=True)
    for name in ("remote", "remote-tokenizer", "pickle"):
        with pytest.raises(UnsafeFolderError):
            check_folder(folders[name], f"model {name!r}", weights=True)
    assert not folders["marker"].exists()


def test_a_refused_hub_download_is_named_as_custom_code():
    """A repository that is downloaded (not checked beforehand) is refused by transformers under
    trust_remote_code=False; that error becomes the same one line."""
    from llm_bounds.core.model_folder import remote_code_refusal

    err = ValueError("The repository x contains custom code which must be executed to correctly load the model. "
                     "Please pass the argument `trust_remote_code=True` to allow custom code to be run.")
    refusal = remote_code_refusal(err, "tokenizer 'x'")
    assert isinstance(refusal, UnsafeFolderError) and "never runs a model's code" in str(refusal)
    assert remote_code_refusal(ValueError("something else"), "x") is None
