"""Training z: exact resume, safe checkpoints, schedule, stateless batches, it learns real text."""
import math

import numpy as np
import pytest
import torch

from llm_bounds.core.errors import BoundInputError
from llm_bounds.subspace.sublora import SubLoRAConfig, build_sublora
from llm_bounds.subspace.train import (CHECKPOINT_NAME, TrainConfig, load_checkpoint, lr_at, sample_batch,
                            train_sublora)

TINY = SubLoRAConfig(model="gpt2-l1-d32", vocab_size=257, n_positions=64, intrinsic_dim=200)


@pytest.fixture(scope="module")
def shakespeare_bytes(shared_data) -> np.ndarray:
    """Tiny Shakespeare as byte tokens (0..255), a real text stream."""
    raw = (shared_data / "corpora" / "tinyshakespeare.txt").read_bytes()
    return np.frombuffer(raw, dtype=np.uint8).astype(np.int64)


def small_run(**kw) -> TrainConfig:
    return TrainConfig(**{"steps": 8, "batch_size": 2, "seq_len": 32, "warmup_steps": 2, "lr": 0.05,
                          "grad_accum": 2, "checkpoint_every": 3, "device": "cpu", "seed": 1, **kw})


def test_interrupted_then_resumed_run_equals_uninterrupted(shakespeare_bytes, tmp_path):
    # lora_dropout > 0 makes the run depend on the torch RNG too, which the checkpoint must restore.
    cfg = SubLoRAConfig(**{**TINY.to_dict(), "lora_dropout": 0.1})
    tc = small_run()
    whole = build_sublora(cfg)
    r_whole = train_sublora(whole, shakespeare_bytes, tc, tmp_path / "a", progress=False)

    first = build_sublora(cfg)
    train_sublora(first, shakespeare_bytes, tc, tmp_path / "b", progress=False, stop_after=5)
    assert load_checkpoint(tmp_path / "b" / CHECKPOINT_NAME)["next_step"] == 5
    resumed = build_sublora(cfg)             # a fresh model, as after a crash
    r_res = train_sublora(resumed, shakespeare_bytes, tc, tmp_path / "b", resume=True, progress=False)

    assert torch.equal(resumed.z, whole.z)
    assert r_res["losses_nats"] == r_whole["losses_nats"] and len(r_res["losses_nats"]) == 8
    assert r_res["steps"] == r_whole["steps"] == 8
    # and without restoring, a restart from scratch with fewer steps would not match
    assert not torch.equal(first.z, whole.z)


def test_checkpoint_is_weights_only_and_written_atomically(shakespeare_bytes, tmp_path):
    m = build_sublora(TINY)
    train_sublora(m, shakespeare_bytes, small_run(steps=3), tmp_path, progress=False)
    path = tmp_path / CHECKPOINT_NAME
    state = torch.load(path, weights_only=True)      # raises if anything but tensors/containers
    assert torch.equal(state["z"], m.z.detach())
    assert state["next_step"] == 3 and state["model_config"] == m.config.to_dict()  # targets resolved from auto
    assert m.config.target_modules == ("c_attn", "lm_head")
    assert set(state["optimizer"]["state"][0]) >= {"exp_avg", "exp_avg_sq", "step"}
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]   # no tmp file left behind


def test_training_lowers_the_loss_on_real_text(shakespeare_bytes):
    m = build_sublora(SubLoRAConfig(model="gpt2-l1-d32", vocab_size=257, n_positions=64, intrinsic_dim=500))
    tc = TrainConfig(steps=60, batch_size=8, seq_len=48, warmup_steps=5, lr=0.05, device="cpu")
    r = train_sublora(m, shakespeare_bytes, tc, progress=False)
    first, last = r["losses_nats"][0], np.mean(r["losses_nats"][-5:])
    assert first == pytest.approx(math.log(257), abs=0.3)      # a fresh model is near uniform
    assert last < first - 1.0, r["losses_nats"]
    assert r["tokens_per_s"] > 0 and r["tokens_seen"] == 60 * 8 * 48
    assert not m.training                                          # handed back in eval mode


def test_learning_rate_schedule():
    tc = TrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    lrs = [lr_at(s, tc) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[55] == pytest.approx(0.55, abs=0.02)      # halfway down the cosine: (1 + 0.1) / 2
    assert lr_at(100, tc) == pytest.approx(0.1)


def test_batches_are_stateless_windows_of_the_stream():
    stream = np.arange(1000) * 3
    tc = TrainConfig(batch_size=4, seq_len=16, seed=5)
    b = sample_batch(stream, 7, 1, tc)
    assert b.shape == (4, 17) and b.dtype == torch.int64
    assert (torch.diff(b, dim=1) == 3).all()                 # contiguous slices
    assert torch.equal(b, sample_batch(stream, 7, 1, tc))
    assert not torch.equal(b, sample_batch(stream, 8, 1, tc))
    assert not torch.equal(b, sample_batch(stream, 7, 0, tc))


def test_progress_bar_shows_loss_and_tokens_per_second(shakespeare_bytes, capsys):
    m = build_sublora(TINY)
    train_sublora(m, shakespeare_bytes, small_run(steps=2, checkpoint_every=0), progress=True)
    err = capsys.readouterr().err
    assert "loss=" in err and "tok_s=" in err


def test_progress_bar_into_a_log_is_not_redrawn_every_step(shakespeare_bytes, capsys):
    """stderr is not a terminal here (as in `bound.py > log 2>&1`): one draw per step would leave
    thousands of copies of the bar in a long run's log."""
    m = build_sublora(TINY)
    train_sublora(m, shakespeare_bytes, small_run(steps=30, checkpoint_every=0), progress=True)
    err = capsys.readouterr().err
    assert 1 <= err.count("loss=") <= 3 and "30/30" in err


@pytest.mark.parametrize("kw,match", [
    (dict(steps=0), "steps must be >= 1"),
    (dict(lr=-1.0), "lr must be > 0"),
    (dict(grad_accum=0), "grad_accum must be >= 1"),
    (dict(device="tpu"), "device must be"),
])
def test_bad_train_config(kw, match):
    with pytest.raises(BoundInputError, match=match):
        train_sublora(build_sublora(TINY), np.arange(500) % 257, small_run(**kw), progress=False)


def test_too_little_data_and_resume_without_directory():
    m = build_sublora(TINY)
    with pytest.raises(BoundInputError, match="lower seq_len or add data"):
        train_sublora(m, np.arange(20), small_run(), progress=False)
    with pytest.raises(BoundInputError, match="needs checkpoint_dir"):
        train_sublora(m, np.arange(500) % 257, small_run(), resume=True, progress=False)


def test_resume_refuses_a_different_config(shakespeare_bytes, tmp_path):
    train_sublora(build_sublora(TINY), shakespeare_bytes, small_run(steps=2), tmp_path, progress=False)
    with pytest.raises(BoundInputError, match=r"different \['lr'\]"):
        train_sublora(build_sublora(TINY), shakespeare_bytes, small_run(steps=2, lr=0.1), tmp_path,
                      resume=True, progress=False)
    other = SubLoRAConfig(**{**TINY.to_dict(), "projection_seed": 9})
    with pytest.raises(BoundInputError, match="different SubLoRAConfig"):
        train_sublora(build_sublora(other), shakespeare_bytes, small_run(steps=2), tmp_path,
                      resume=True, progress=False)


def test_the_window_prefix_is_context_in_training_too():
    from llm_bounds.subspace.train import next_token_loss, with_prefix

    class Echo(torch.nn.Module):  # causal logits: at each position, the counts of the ids so far
        def forward(self, ids):
            return torch.nn.functional.one_hot(ids, 11).float().cumsum(1)

    batch = torch.tensor([[1, 2, 3, 4], [5, 6, 7, 8]])
    x = with_prefix(batch[:, :-1], 9)
    assert x.tolist() == [[9, 1, 2, 3], [9, 5, 6, 7]]
    got = next_token_loss(Echo(), batch, torch.device("cpu"), prefix_id=9)
    logits = Echo()(x)[:, 1:]  # the prefix's own prediction is not a target
    want = torch.nn.functional.cross_entropy(logits.reshape(-1, 11), batch[:, 1:].reshape(-1))
    assert torch.equal(got, want) and not torch.equal(got, next_token_loss(Echo(), batch, torch.device("cpu")))
