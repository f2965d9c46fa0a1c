"""SubLoRA wrapper: only z trains, theta = theta0 + P z reaches the LM, eval is deterministic,
tying holds, and (config, z) rebuilds identical logits in a fresh process."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llm_bounds.core.errors import BoundInputError
from llm_bounds.subspace.lora import subspace_parameters
from llm_bounds.subspace.registry import build_base_model
from llm_bounds.subspace.sublora import SubLoRAConfig, build_lora_lm, build_sublora

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(model="gpt2-l1-d32", vocab_size=257, n_positions=64)


def tiny(**kw) -> SubLoRAConfig:
    return SubLoRAConfig(**{**TINY, "intrinsic_dim": 50, **kw})


def tokens(seed=0, shape=(2, 24), vocab=257):
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(seed))


def seeded_z(d, seed=7, scale=0.3):
    return torch.randn(d, generator=torch.Generator().manual_seed(seed)) * scale


def test_only_trainable_parameter_is_z():
    m = build_sublora(tiny())
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable == ["z"]
    assert m.z.shape == (50,) and m.z.dtype == torch.float32 and not m.z.any()
    assert m.d == 50
    # D counts the LoRA matrices: c_attn (rank 4: 4*32 + 96*4) and lm_head (4*32 + 257*4)
    assert m.D == (4 * 32 + 96 * 4) + (4 * 32 + 257 * 4)


def test_z_zero_gives_the_base_model():
    # LoRA B starts at 0, so theta0 adds nothing: the logits equal the bare base model's.
    m = build_sublora(tiny())
    base = build_base_model(TINY["model"], 257, n_positions=64)
    x = tokens()
    torch.testing.assert_close(m(x), base(input_ids=x).logits, rtol=0, atol=1e-6)


def test_logits_equal_plain_peft_lora_loaded_with_theta():
    m = build_sublora(tiny(projector="fastfood"))
    m.set_z(seeded_z(m.d))
    lora, _ = build_lora_lm(m.config)
    with torch.no_grad():
        for name, p in subspace_parameters(lora, "lora"):
            p.copy_(m.lora_tensors()[name])
    x = tokens(1)
    torch.testing.assert_close(m(x), lora(input_ids=x).logits, rtol=1e-5, atol=1e-5)
    # and z actually changes the function
    assert not torch.allclose(m(x), build_sublora(tiny(projector="fastfood"))(x))


def test_gradient_check_through_the_wrapper():
    m = build_sublora(tiny(intrinsic_dim=6)).double()
    x = tokens(2, shape=(1, 8))
    w = torch.randn(1, 8, 257, dtype=torch.float64, generator=torch.Generator().manual_seed(3))

    def f(z):
        return (torch.func.functional_call(m, {"z": z}, (x,)) * w).sum()

    z = (seeded_z(6) * 0.1).double().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (z,), eps=1e-6, atol=1e-5)
    # backward through the module itself fills z.grad
    m.set_z(z.detach().float())
    (m(x) * w).sum().backward()
    assert m.z.grad is not None and m.z.grad.abs().sum() > 0


def test_eval_mode_is_deterministic_and_reaches_every_submodule():
    m = build_sublora(tiny(lora_dropout=0.5))
    m.set_z(seeded_z(m.d))
    x = tokens(4)
    m.train()
    assert all(mod.training for mod in m.modules())
    assert not torch.equal(m(x), m(x)), "dropout 0.5 should make train-mode passes differ"
    m.eval()
    assert not any(mod.training for mod in m.modules())
    assert torch.equal(m(x), m(x))


def test_tying_is_preserved_through_training_steps():
    m = build_sublora(tiny())
    assert m.embeddings_tied()
    wte_before = m.lm.get_input_embeddings().weight.detach().clone()
    opt = torch.optim.AdamW([m.z], lr=0.1)
    m.train()
    for _ in range(3):
        x = tokens(5)
        loss = torch.nn.functional.cross_entropy(m(x[:, :-1]).reshape(-1, 257), x[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert m.embeddings_tied()
    head = m.lm.get_output_embeddings()
    assert head.base_layer.weight is m.lm.get_input_embeddings().weight
    assert torch.equal(m.lm.get_input_embeddings().weight, wte_before)   # base stays frozen
    assert m.z.abs().sum() > 0


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()


_CHILD = """
import hashlib, json, sys, torch
from llm_bounds.subspace.sublora import SubLoRAConfig, build_sublora
args = json.loads(sys.argv[1])
m = build_sublora(SubLoRAConfig.from_dict(args["config"]))
m.set_z(torch.tensor(args["z"], dtype=torch.float32) if "z" in args
        else torch.randn(m.d, generator=torch.Generator().manual_seed(7)) * 0.3)
x = torch.randint(0, 257, (2, 24), generator=torch.Generator().manual_seed(9))
with torch.no_grad():
    out = {"logits": hashlib.sha256(m(x).numpy().tobytes()).hexdigest(),
           "theta": hashlib.sha256(m.theta().numpy().tobytes()).hexdigest()}
print(json.dumps(out))
"""


def _child(args: dict) -> dict:
    res = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("projector", ["kron", "fastfood"])
def test_same_seeds_give_bitwise_identical_logits_in_another_process(projector):
    cfg = tiny(projector=projector)
    m = build_sublora(cfg)
    m.set_z(seeded_z(m.d))
    x = tokens(9)
    with torch.no_grad():
        here = {"logits": _digest(m(x)), "theta": _digest(m.theta())}
    assert _child({"config": cfg.to_dict()}) == here


def test_rebuild_from_the_config_json_and_z_gives_identical_logits():
    """What the verifier does: the config from JSON plus the decoded z rebuild the same function."""
    cfg = tiny(projector="sparse", seed=3, projection_seed=5)
    m = build_sublora(cfg)
    z = seeded_z(m.d, seed=11)
    m.set_z(z)
    config_json = json.loads(json.dumps(cfg.to_dict()))
    again = build_sublora(SubLoRAConfig.from_dict(config_json))
    again.set_z(z.clone())
    x = tokens(9)
    with torch.no_grad():
        here = _digest(m(x))
        assert _digest(again(x)) == here                                           # same process
    assert _child({"config": config_json, "z": z.tolist()})["logits"] == here      # fresh process


def test_config_round_trips_through_json():
    cfg = tiny(target_modules=["c_attn"], lora_alpha=16.0)
    back = SubLoRAConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.target_modules == ("c_attn",)
    with pytest.raises(BoundInputError, match="unknown SubLoRAConfig keys"):
        SubLoRAConfig.from_dict({**cfg.to_dict(), "intrinsic_dimension": 5})


def test_seeds_change_what_they_should():
    x = tokens()
    base = build_sublora(tiny())
    base.set_z(seeded_z(50))
    for change in [dict(projection_seed=1), dict(lora_seed=1), dict(seed=1)]:
        other = build_sublora(tiny(**change))
        other.set_z(seeded_z(50))
        assert not torch.equal(other(x), base(x)), change


@pytest.mark.parametrize("kw,match", [
    (dict(intrinsic_dim=10_000), "exceeds the number of LoRA parameters"),
    (dict(intrinsic_dim=0), "d must be >= 1"),
    (dict(projector="gaussian"), "unknown projector"),
    (dict(model="gpt3-tiny"), "unknown model name"),
    (dict(target_modules=("q_proj",)), "target module 'q_proj' does not exist"),
    (dict(lora_rank=0), "lora_rank must be >= 1"),
])
def test_bad_input_raises_with_the_fix(kw, match):
    with pytest.raises(BoundInputError, match=match):
        build_sublora(tiny(**kw))


def test_set_z_rejects_wrong_shape_and_nan():
    m = build_sublora(tiny())
    with pytest.raises(BoundInputError, match="shape"):
        m.set_z(torch.zeros(49))
    with pytest.raises(BoundInputError, match="NaN"):
        m.set_z(torch.full((50,), float("nan")))


def test_benchmark_times_all_three_modes_on_a_tiny_model():
    from llm_bounds_cli.benchmarks.subspace import time_projector, time_steps

    r = time_steps("gpt2-l1-d32", 257, d=100, batch=1, seq=16, repeats=2, device=torch.device("cpu"))
    assert r["D"] == build_sublora(tiny()).D and r["d"] == 100
    assert all(r[k] > 0 for k in ("full", "lora", "sublora", "sub_over_lora"))
    f, fb = time_projector("fastfood", 1000, 100, repeats=2, device=torch.device("cpu"))
    assert f > 0 and fb > 0


def test_all_weights_subspace_is_the_intrinsic_dimension_form():
    m = build_sublora(tiny(subspace_params="all"))
    base = build_base_model(TINY["model"], 257, n_positions=64)
    assert m.D == sum(p.numel() for p in base.parameters())  # tied wte/lm_head counted once
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["z"]
    x = tokens()
    torch.testing.assert_close(m(x), base(input_ids=x).logits, rtol=0, atol=1e-6)  # z = 0 is the base
    m.set_z(seeded_z(m.d, scale=1.0))
    moved = m.lora_tensors()
    emb = moved["transformer.wte.weight"]
    # the tied head moves with the embedding: logits equal h @ wte^T with the moved embedding
    out = torch.func.functional_call(m.lm, moved, args=(), kwargs={"input_ids": x, "output_hidden_states": True})
    torch.testing.assert_close(out.logits, out.hidden_states[-1] @ emb.T, rtol=1e-5, atol=1e-5)
    m.zero_grad()
    m(x).logsumexp(-1).mean().backward()
    assert m.z.grad is not None and m.z.grad.abs().sum() > 0


def test_lora_plus_norms_adds_layernorm_gains_and_biases():
    lora_only, with_norms = build_sublora(tiny()), build_sublora(tiny(subspace_params="lora+norms"))
    names = with_norms._names
    assert any(".ln_" in n for n in names) and any(n.endswith(".bias") for n in names)
    assert with_norms.D > lora_only.D
    with pytest.raises(BoundInputError):
        build_sublora(tiny(subspace_params="everything"))


def test_tensor_scales_multiply_each_tensors_share_of_the_projected_update():
    # theta_t = theta0_t + exp(u_t) * (P w)_t, z = (w, u): check against the formula, tensor by tensor.
    plain = build_sublora(tiny(subspace_params="all", intrinsic_dim=60))
    scaled = build_sublora(tiny(subspace_params="all", intrinsic_dim=60, update_scales="tensor"))
    k = len(scaled._sizes)
    assert scaled.n_scales == k and scaled.projector.d == 60 - k and plain.n_scales == 0
    x = tokens()
    torch.testing.assert_close(scaled(x), plain(x), rtol=0, atol=0)  # z = 0: both are theta0
    w = seeded_z(60 - k, seed=1)
    u = torch.linspace(-1.0, 1.5, k)
    scaled.set_z(torch.cat([w, u]))
    update = scaled.projector(w)
    got = torch.split(scaled.theta() - scaled.theta0, scaled._sizes)
    want = torch.split(update, scaled._sizes)
    for t in range(k):
        torch.testing.assert_close(got[t], torch.exp(u[t]) * want[t], rtol=1e-6, atol=1e-7)
    # u = 0 is the unscaled update of the same projection
    scaled.set_z(torch.cat([w, torch.zeros(k)]))
    torch.testing.assert_close(scaled.theta(), scaled.theta0 + update, rtol=0, atol=0)


def test_tensor_scales_get_gradients_and_round_trip_through_the_config():
    m = build_sublora(tiny(subspace_params="all", intrinsic_dim=60, update_scales="tensor"))
    m.set_z(seeded_z(60, scale=0.5))
    m(tokens()).logsumexp(-1).mean().backward()
    assert m.z.grad[-m.n_scales:].abs().min() > 0  # every tensor's scale is trained
    again = build_sublora(SubLoRAConfig.from_dict(json.loads(json.dumps(m.config.to_dict()))))
    again.set_z(m.z.detach().clone())
    assert again.config.update_scales == "tensor"
    torch.testing.assert_close(again(tokens()), m(tokens()), rtol=0, atol=0)


def test_tensor_scales_reject_bad_settings():
    with pytest.raises(BoundInputError, match="unknown update scales"):
        build_sublora(tiny(update_scales="row"))
    with pytest.raises(BoundInputError, match="leaves no room"):
        build_sublora(tiny(subspace_params="all", intrinsic_dim=5, update_scales="tensor"))
