"""The neural n-gram model (the default's model): it sees exactly the last k tokens, is a pure
function of its seed, keeps its head tied in a subspace, and goes through run → verify."""
import json

import pytest
import torch

from llm_bounds.certificate.config import RunConfig, preset_config
from llm_bounds.certificate.run import run
from llm_bounds.certificate.verify import verify_certificate
from llm_bounds.core.errors import BoundInputError
from llm_bounds.subspace.lora import lora_targets
from llm_bounds.subspace.nplm import parse_nplm_name
from llm_bounds.subspace.registry import build_base_model, check_model_name, default_init, default_tokenizer
from llm_bounds.subspace.sublora import SubLoRAConfig, build_sublora

V = 257


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_logits_depend_on_exactly_the_last_k_tokens():
    k = 3
    model = build_base_model(f"nplm-k{k}-e4-h8", V, seed=0)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, V, (1, 12), generator=gen)
    base = logits(model, ids)
    t = 9
    for j in range(12):
        changed = ids.clone()
        changed[0, j] = (changed[0, j] + 1) % V
        moved = (logits(model, changed)[0, t] != base[0, t]).any().item()
        assert moved == (t - k < j <= t), j  # positions t-k+1..t matter, nothing before, nothing after


def test_a_window_gives_the_same_logits_alone_or_in_a_batch():
    model = build_base_model("nplm-k4-e8-h16", V, seed=0)
    ids = torch.randint(0, V, (5, 40), generator=torch.Generator().manual_seed(1))
    together = logits(model, ids)
    for b in range(5):
        assert torch.equal(logits(model, ids[b:b + 1])[0], together[b])


def test_init_is_a_function_of_the_seed_and_the_head_is_tied():
    a, b, c = (build_base_model("nplm-k2-e4-h8", V, seed=s) for s in (0, 0, 1))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[n], sb[n]) for n in sa)
    assert not torch.equal(sa["embed.weight"], sc["embed.weight"])
    assert a.head.weight is a.embed.weight
    k, e, h = 2, 4, 8
    assert sum(p.numel() for p in a.parameters()) == V * e + (k * e + 1) * h + (h + 1) * e + V
    sub = build_sublora(SubLoRAConfig(model="nplm-k2-e4-h8", vocab_size=V, intrinsic_dim=100, subspace_params="all",
                                      update_scales="tensor"))
    sub.z.data.normal_(generator=torch.Generator().manual_seed(2))
    tensors = sub.lora_tensors()
    assert "head.weight" not in tensors and sub.D == sum(p.numel() for p in a.parameters())  # one tensor, still tied
    assert sub.n_scales == 6


def test_names_inits_and_lora_targets():
    assert parse_nplm_name("nplm-k4-e16-h128") == (4, 16, 128) and parse_nplm_name("gpt2-l2-d64") is None
    assert default_init("nplm-k4-e16-h128") == "scratch"
    assert default_tokenizer("nplm-k4-e16-h128", "scratch") == "bytes"
    with pytest.raises(BoundInputError, match="has no pretrained weights; use init=scratch"):
        check_model_name("nplm-k4-e16-h128", "pretrained")
    with pytest.raises(BoundInputError, match="needs k, e and h >= 1"):
        parse_nplm_name("nplm-k0-e16-h128")
    assert lora_targets(build_base_model("nplm-k2-e4-h8", V)) == ("fc", "proj", "head")
    model = build_sublora(SubLoRAConfig(model="nplm-k2-e4-h8", vocab_size=V, intrinsic_dim=20))
    assert model.config.target_modules == ("fc", "proj", "head") and model.embeddings_tied()


def test_the_default_preset_uses_the_ngram_model():
    cfg = preset_config("default")
    assert parse_nplm_name(cfg.model) is not None and cfg.init == "scratch" and cfg.tokenizer == "bytes"
    assert cfg.subspace_params == "all" and cfg.intrinsic_dim < build_sublora(
        SubLoRAConfig(model=cfg.model, vocab_size=V, intrinsic_dim=1, subspace_params="all")).D


def test_ngram_model_is_trained_coded_certified_and_verified(tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": f"abc{i % 7} the cat sat on the mat {i}. " * 8}) + "\n"
                            for i in range(40)))
    cfg = RunConfig(model="nplm-k3-e8-h16", dataset=str(data), subspace_params="all", update_scales="tensor",
                    intrinsic_dim=200, max_steps=30, batch_size=4, lr=0.1, window=32, stride=16, levels=(17,),
                    alphas=(0.01, 0.1), n_samples=64, n_documents=8, heldout_samples=8, eval_batch_size=8)
    cert = run(cfg, tmp_path / "out", progress=False)
    assert cert["model"] == "nplm-k3-e8-h16" and cert["weights"]["init"] == "scratch"
    assert cert["weights"]["output_head_tied"] is True
    assert cert["empirical_bpd"] < 6.0  # 30 steps already learn the repeated text (8 bits is a random guess)
    assert verify_certificate(tmp_path / "out", progress=False) == []
