"""The Python entry point (llm_bounds.certify / verify / compare / load): its keywords are bound.py's
flags, its errors the command line's one-line messages, and a model object held in memory is
certified, verified with the same object and refused by its hash when it is another."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import llm_bounds
from llm_bounds.api.keywords import KEYWORDS, flag_values
from llm_bounds.certificate.flags import RUN_FLAGS
from llm_bounds.core.errors import BoundInputError
from llm_bounds_cli.bound import bound_main, bound_parser

ROOT = Path(__file__).resolve().parents[1]
# one text per kind of flag, as a command line would give it
SAMPLE_TEXT = {"str": "x", "int": "7", "float": "0.25", "int_list": "17,33", "float_list": "0.01,0.1",
               "count_or_all": "all", "escaped": "\\n\\n", "name_list": "c_attn,lm_head"}


def test_every_option_of_bound_py_is_a_keyword_filling_the_same_setting():
    options = [a for a in bound_parser()._actions if a.option_strings and a.dest != "help"]
    assert len(options) == len(RUN_FLAGS) >= 30
    for action in options:
        keyword = action.option_strings[0][2:].replace("-", "_")
        assert keyword in KEYWORDS, f"{action.option_strings[0]} has no keyword"
        assert KEYWORDS[keyword].dest == action.dest


@pytest.mark.parametrize("flag", RUN_FLAGS, ids=lambda f: f.keyword)
def test_a_keyword_given_as_text_reads_as_the_command_line_reads_it(flag):
    if flag.reads in ("switch", "const"):
        argv, keywords = [flag.option], {flag.keyword: True}
    else:
        argv, keywords = [flag.option, SAMPLE_TEXT[flag.reads]], {flag.keyword: SAMPLE_TEXT[flag.reads]}
    assert flag_values(keywords)[flag.dest] == getattr(bound_parser().parse_args(argv), flag.dest)


def test_keywords_take_python_values():
    values = flag_values(dict(n_samples=64, levels=[17, 33], alpha=0.1, lora_targets=("c_attn",), tuning=True,
                              joint_claims=False, separator="\n\n", dataset=Path("d.txt"), delta=1, seed=None))
    assert values == {"n_samples": 64, "levels": (17, 33), "alphas": (0.1,), "target_modules": ("c_attn",),
                      "sample_stream": "tuning", "joint_claims": None, "separator": "\n\n", "dataset": "d.txt",
                      "delta": 1.0}


@pytest.mark.parametrize("keywords, words", [
    (dict(alphas=[0.1]), ["unknown keyword 'alphas'", "did you mean 'alpha'?"]),
    (dict(n_sample=8), ["unknown keyword 'n_sample'", "did you mean 'n_samples'?"]),
    (dict(n_samples=1.5), ["n_samples= (--n-samples) expects an integer or 'all', got 1.5"]),
    (dict(levels="17,x"), ["levels= (--levels): expected a comma list of integers, got '17,x'"]),
    (dict(joint_claims="yes"), ["joint_claims= (--joint-claims) expects True or False"]),
])
def test_a_bad_keyword_is_a_one_line_value_error_before_any_work(keywords, words, tmp_path):
    with pytest.raises(ValueError) as err:
        llm_bounds.certify(out=tmp_path / "o", **keywords)
    assert isinstance(err.value, BoundInputError) and "\n" not in str(err.value)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("keywords, argv", [
    (dict(delta=1.5), ["--delta", "1.5"]),
    (dict(model="no-such-model-here"), ["--model", "no-such-model-here"]),
    (dict(unseen_dataset="a.txt", dataset="kjv"), ["--unseen-dataset", "a.txt", "--dataset", "kjv"]),
])
def test_the_api_raises_the_message_the_command_line_prints(keywords, argv, tmp_path, capsys):
    with pytest.raises(BoundInputError) as err:
        llm_bounds.certify(out=tmp_path / "a", **keywords)
    assert bound_main([*argv, "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err == f"bound.py: error: {err.value}\n"
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_load_refuses_a_folder_without_a_certificate_in_one_line(tmp_path):
    with pytest.raises(BoundInputError, match="does not exist") as err:
        llm_bounds.load(tmp_path)
    assert "\n" not in str(err.value)


def byte_level_tokenizer():
    """A transformers fast tokenizer object over the 256 bytes and one end-of-text token (V = 257)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from llm_bounds.data.tokenizers import byte_to_unicode_map

    vocab = {c: b for b, c in byte_to_unicode_map().items()} | {"<|endoftext|>": 256}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")


def tiny_gpt2(seed: int, vocab_size: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=vocab_size, n_positions=64,
                                      bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1)).eval()


TINY = dict(preset="smoke", intrinsic_dim=50, max_steps=2, n_samples=8, n_documents=0, heldout_samples=4, window=32,
            stride=32, levels=[9], batch_size=2, eval_batch_size=8)


def test_a_model_object_is_certified_verified_with_itself_and_another_refused_by_its_hash(tmp_path, capfd):
    from transformers import GPT2TokenizerFast

    from llm_bounds.data.tokenizers import BUNDLED_GPT2_DIR

    data = small_text(tmp_path)
    tok = byte_level_tokenizer()
    model = tiny_gpt2(0, len(tok))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    capfd.readouterr()
    cert = llm_bounds.certify(model=model, tokenizer=tok, dataset=data, out=tmp_path / "run", progress=False, **TINY)
    assert capfd.readouterr() == ("", "")  # progress=False: no output at all
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the object is left as it was
    assert cert.path == tmp_path / "run" and cert.model == "object:GPT2LMHeadModel"
    assert cert.weights["source"] == "object" and len(cert.weights["object_sha256"]) == 64
    assert math.isfinite(cert.bound_bits_per_byte) and cert.bound_bpd == cert.terms["token"]["nll"]["bound"]
    assert cert.summary() == (tmp_path / "run" / "summary.md").read_text()
    assert "llm_bounds.verify(" in cert.summary() and "llm_bounds.verify(" in cert.card()

    verdict = llm_bounds.verify(tmp_path / "run", model=model, tokenizer=tok, progress=False)
    assert verdict.ok and verdict.problems == [] and verdict.bound_bits_per_byte == pytest.approx(
        cert.bound_bits_per_byte, rel=1e-9)
    gpt2 = GPT2TokenizerFast.from_pretrained(str(BUNDLED_GPT2_DIR))
    for other, words in ((dict(model=tiny_gpt2(1, len(tok)), tokenizer=tok), "it is not the object"),
                         (dict(model=model, tokenizer=gpt2), "it is not the tokenizer"),
                         (dict(), "certifies a model object held in memory")):
        with pytest.raises(BoundInputError) as err:
            llm_bounds.verify(tmp_path / "run", progress=False, **other)
        assert "\n" not in str(err.value) and words in str(err.value), str(err.value)


def test_a_model_object_needs_its_tokenizer_and_a_matching_vocabulary(tmp_path):
    with pytest.raises(BoundInputError, match="needs its tokenizer"):
        llm_bounds.certify(model=tiny_gpt2(0, 257), out=tmp_path / "a", **TINY)
    with pytest.raises(BoundInputError, match="300 output tokens but the tokenizer has 257"):
        llm_bounds.certify(model=tiny_gpt2(0, 300), tokenizer="bytes", out=tmp_path / "b", progress=False, **TINY)
    with pytest.raises(BoundInputError, match="names a model object held in memory"):
        llm_bounds.certify(model="object:GPT2LMHeadModel", out=tmp_path / "c")
    assert not any((tmp_path / n).exists() for n in "abc")


def small_text(tmp_path) -> Path:
    from llm_bounds.data.corpus import load_documents

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": d}) + "\n" for d in load_documents("kjv")[:20]))
    return data


def test_compare_returns_the_rows_of_its_table_and_a_dry_run_writes_nothing(tmp_path):
    with pytest.raises(BoundInputError, match="unknown keyword 'model'; did you mean 'models'"):
        llm_bounds.compare(["gpt2-l1-d32"], out=tmp_path / "c", model="gpt2-l1-d32")
    with pytest.raises(BoundInputError, match="budget= takes"):
        llm_bounds.compare(["gpt2-l1-d32"], out=tmp_path / "c", budget="flops")
    small = {k: v for k, v in TINY.items() if k not in ("preset", "n_documents", "heldout_samples", "window",
                                                         "stride", "levels", "batch_size", "eval_batch_size")}
    rows = llm_bounds.compare("gpt2-l1-d32", out=tmp_path / "c", preset="smoke", dataset=small_text(tmp_path),
                              progress=False, **small)
    (row,) = rows
    cert = llm_bounds.load(tmp_path / "c" / "gpt2-l1-d32")
    assert row["model"] == "gpt2-l1-d32" and row["bound_bits_per_byte"] == cert.bound_bits_per_byte
    assert (tmp_path / "c" / "comparison.csv").is_file()
    plan = llm_bounds.certify(model="gpt2-l1-d32", dataset=small_text(tmp_path), out=tmp_path / "d", dry_run=True,
                              progress=False, **{k: v for k, v in TINY.items() if k != "preset"})
    assert plan["config"]["model"] == "gpt2-l1-d32" and plan["estimate"]["seconds"] > 0
    assert not (tmp_path / "d").exists()


@pytest.mark.slow
def test_certify_from_python_is_bound_py(tmp_path):
    """The issue's check: the smoke preset from Python and from the command line give the same message
    and bound, and llm_bounds.verify accepts the Python one."""
    cert = llm_bounds.certify(preset="smoke", out=tmp_path / "o", progress=False)
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bound.py"), "--preset", "smoke", "--out",
                          str(tmp_path / "o2"), "--quiet"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    cli = json.loads((tmp_path / "o2" / "certificate.json").read_text())
    assert cert.message == (tmp_path / "o2" / "message.bin").read_bytes()
    assert cert.bound_bits_per_byte == cli["bound_bits_per_byte"] and cert.message_sha256 == cli["message_sha256"]
    verdict = llm_bounds.verify(tmp_path / "o", progress=False)
    assert verdict.ok, verdict.problems
