"""Model registry: published GPT-2 sizes, the CPU ladder, seeded scratch init, offline loading."""
import pytest
import torch

from llm_bounds.core.errors import BoundInputError
from llm_bounds.subspace.registry import (GPT2_FAMILY, LADDER, build_base_model, non_embedding_params,
                               parse_ladder_name, resolve_offline, state_sha256, weights_source)


def count_non_embedding(model) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if not n.endswith(("wte.weight", "wpe.weight")))


def test_gpt2_small_has_the_published_parameter_count():
    # HF gpt2 has 124,439,808 parameters (tied head counted once).
    m = build_base_model("gpt2", 50257)
    assert sum(p.numel() for p in m.parameters()) == 124_439_808
    assert count_non_embedding(m) == non_embedding_params(12, 768)
    assert m.config.n_positions == 1024


@pytest.mark.parametrize("name,millions", [("gpt2-medium", 355), ("gpt2-large", 774), ("gpt2-xl", 1558)])
def test_gpt2_family_sizes_match_the_published_ones(name, millions):
    # Counted from the shapes (building 1.5B parameters here would be slow); the formula is checked
    # against real models in the other tests.
    n_layer, n_embd, n_head = GPT2_FAMILY[name]
    assert n_embd % n_head == 0
    total = non_embedding_params(n_layer, n_embd) + 50257 * n_embd + 1024 * n_embd
    assert round(total / 1e6) == millions


def test_ladder_names_explain_themselves_and_span_16x():
    assert len(LADDER) >= 4
    sizes = []
    for name in LADDER:
        m = build_base_model(name, 257)
        n_layer, n_embd, _ = parse_ladder_name(name)
        assert (m.config.n_layer, m.config.n_embd) == (n_layer, n_embd)
        assert f"-l{n_layer}-" in name and name.endswith(f"-d{n_embd}")
        sizes.append(count_non_embedding(m))
        assert sizes[-1] == non_embedding_params(n_layer, n_embd)
        assert m.config.n_positions == 256
    assert sizes == sorted(sizes)
    assert sizes[-1] / sizes[0] >= 16


def test_vocabulary_comes_from_the_tokenizer(gpt2_tokenizer_dir):
    from transformers import GPT2TokenizerFast

    tok = GPT2TokenizerFast.from_pretrained(str(gpt2_tokenizer_dir))
    m = build_base_model("gpt2-l1-d32", len(tok))
    assert m.get_output_embeddings().weight.shape[0] == len(tok) == 50257
    byte_level = build_base_model("gpt2-l1-d32", 257)
    assert byte_level.get_output_embeddings().weight.shape == (257, 32)


def test_scratch_init_is_a_function_of_the_seed():
    a = build_base_model("gpt2-l2-d64", 257, seed=1)
    b = build_base_model("gpt2-l2-d64", 257, seed=1)
    c = build_base_model("gpt2-l2-d64", 257, seed=2)
    assert state_sha256(a) == state_sha256(b) != state_sha256(c)
    # the GPT-2 init scheme: N(0, 0.02^2) weights, LayerNorm gain 1, zero biases
    w = a.transformer.h[0].mlp.c_fc.weight
    assert abs(w.std().item() - 0.02) < 0.002
    assert torch.equal(a.transformer.ln_f.weight, torch.ones(64))
    assert not a.transformer.h[0].attn.c_attn.bias.any()
    assert not a.training


def test_pretrained_from_a_local_directory(tmp_path):
    src = build_base_model("gpt2-l1-d32", 257, seed=4)
    src.save_pretrained(tmp_path)
    loaded = build_base_model(str(tmp_path), 257, init="pretrained")
    assert state_sha256(loaded) == state_sha256(src)
    info = weights_source(str(tmp_path), "pretrained", loaded)
    assert info["sha256"] == state_sha256(src) and info["source"] == str(tmp_path.resolve())
    # scratch init from the same directory uses only its config
    scratch = build_base_model(str(tmp_path), 257, init="scratch", seed=0)
    assert scratch.config.n_embd == 32 and state_sha256(scratch) != state_sha256(src)
    with pytest.raises(BoundInputError, match="tokenizer has 300"):
        build_base_model(str(tmp_path), 300, init="pretrained")


def test_weights_source_for_scratch_needs_no_hash():
    assert weights_source("gpt2-l1-d32", "scratch", seed=3) == {"init": "scratch", "name": "gpt2-l1-d32", "seed": 3}


def test_unknown_name_lists_the_choices():
    with pytest.raises(BoundInputError, match="unknown model name 'gpt5'.*gpt2-l2-d64"):
        build_base_model("gpt5", 257)


def test_pretrained_not_available_offline_says_how_to_get_it():
    if resolve_offline("gpt2") is not None:
        pytest.skip("gpt2 weights are cached on this machine")
    with pytest.raises(BoundInputError, match="not available offline.*huggingface-cli download gpt2"):
        build_base_model("gpt2", 50257, init="pretrained")
    with pytest.raises(BoundInputError, match="not available offline"):
        build_base_model("no-such-org/no-such-model", 257, init="pretrained")


@pytest.mark.parametrize("kw,match", [
    (dict(name="gpt2-l2-d64", init="pretrained"), "no pretrained weights"),
    (dict(name="gpt2-l2-d64", init="random"), "unknown init"),
    (dict(name="gpt2-l2-d64", vocab_size=1), "vocab_size must be an integer >= 2"),
    (dict(name="gpt2-l2-d100"), "multiple of 32"),
])
def test_bad_input(kw, match):
    args = {"vocab_size": 257, **kw}
    with pytest.raises(BoundInputError, match=match):
        build_base_model(args.pop("name"), args.pop("vocab_size"), **args)


def test_check_model_name_is_cheap_and_agrees_with_build(tmp_path):
    from llm_bounds.subspace.registry import check_model_name

    for name in ("gpt2", "gpt2-xl", *LADDER, "gpt2-l1-d32"):
        check_model_name(name, "scratch")                   # no error, nothing built
    build_base_model("gpt2-l1-d32", 257).save_pretrained(tmp_path)
    check_model_name(str(tmp_path), "pretrained")
    with pytest.raises(BoundInputError, match="unknown model name"):
        check_model_name("gpt5", "scratch")
    with pytest.raises(BoundInputError, match="no pretrained weights"):
        check_model_name(LADDER[0], "pretrained")
    with pytest.raises(BoundInputError, match="unknown init"):
        check_model_name("gpt2", "finetuned")
