import numpy as np
import pytest
import torch

from llm_bounds.core.errors import BoundInputError
from llm_bounds.message.format import decode_message, encode_message
from llm_bounds.message.qat import qat_finetune, straight_through_quantize
from llm_bounds.message.quantize import Quantized, assign_nearest, quantize


def test_forward_is_the_hard_float16_quantization():
    rng = np.random.default_rng(0)
    z = rng.standard_normal(5000).astype(np.float32)
    codebook = rng.standard_normal(9).astype(np.float32)          # unsorted, not float16
    out = straight_through_quantize(torch.tensor(z), torch.tensor(codebook))
    c16 = np.sort(codebook.astype(np.float16))
    expected = c16.astype(np.float32)[assign_nearest(z, c16)]
    assert out.detach().numpy().tobytes() == expected.tobytes()


def test_straight_through_gradients():
    z = torch.tensor([0.1, 0.9, 1.2, -3.0], requires_grad=True)
    codebook = torch.tensor([1.0, 0.0], requires_grad=True)       # sorted: [0, 1]
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0])
    (straight_through_quantize(z, codebook) * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)
    # Level 0.0 (position 1) holds z[0], z[3]; level 1.0 (position 0) holds z[1], z[2].
    assert torch.equal(codebook.grad, torch.tensor([2.0 + 3.0, 1.0 + 4.0]))


def test_zero_steps_returns_the_starting_quantization():
    z = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    q = quantize(z, 11, "kmeans")
    out = qat_finetune(z, q, lambda v: (v ** 2).sum(), steps=0, lr=0.1, seed=0)
    assert out.values().tobytes() == q.values().tobytes()


def test_finetuning_lowers_the_loss_of_the_hard_result_and_is_reproducible():
    rng = np.random.default_rng(2)
    z = rng.standard_normal(2000).astype(np.float32)
    target = torch.tensor(z + 0.3 * rng.standard_normal(2000).astype(np.float32))
    q = quantize(z, 5)
    # A stochastic loss, to check the seeded RNG: noise on the target each step.
    loss = lambda v: ((v - target - 0.01 * torch.randn(v.shape)) ** 2).mean()
    hard_loss = lambda qq: float(((torch.tensor(qq.values()) - target) ** 2).mean())
    before_state = torch.random.get_rng_state()
    history = []
    a = qat_finetune(z, q, loss, steps=60, lr=0.02, seed=3, history=history)
    assert torch.equal(torch.random.get_rng_state(), before_state)
    b = qat_finetune(torch.tensor(z), q, loss, steps=60, lr=0.02, seed=3)
    assert a.values().tobytes() == b.values().tobytes()
    assert len(history) == 60
    assert hard_loss(a) < 0.9 * hard_loss(q)
    assert a.codebook.dtype == np.float16 and np.all(np.diff(a.codebook.astype(np.float64)) >= 0)
    assert decode_message(encode_message(a)).values().tobytes() == a.values().tobytes()


def test_frozen_codebook_keeps_levels():
    z = np.random.default_rng(4).standard_normal(500).astype(np.float32)
    q = quantize(z, 7)
    out = qat_finetune(z, q, lambda v: (v ** 2).sum(), steps=10, lr=0.05, train_codebook=False)
    assert out.codebook.tobytes() == q.codebook.tobytes()


def test_bad_input():
    z = np.zeros(10, np.float32)
    q = Quantized(codebook=np.array([0.0, 1.0], np.float16), indices=np.zeros(10, np.int32))
    ok = lambda v: v.sum()
    with pytest.raises(BoundInputError, match="steps"):
        qat_finetune(z, q, ok, steps=-1, lr=0.1)
    with pytest.raises(BoundInputError, match="lr"):
        qat_finetune(z, q, ok, steps=1, lr=0.0)
    with pytest.raises(BoundInputError, match="d = 10"):
        qat_finetune(np.zeros(3), q, ok, steps=1, lr=0.1)
    with pytest.raises(BoundInputError, match="scalar"):
        qat_finetune(z, q, lambda v: v, steps=1, lr=0.1)


def test_learning_rate_decays_along_a_cosine():
    # A constant gradient makes every Adam step exactly lr_t long, so z ends at -sum_t lr_t:
    # lr * steps / 2 * (1 + 1/steps) = 1.05 with the cosine schedule (2.0 at a constant lr).
    levels = np.array([-2.0, -1.5, -1.0, -0.5, 0.0], dtype=np.float16)
    q = Quantized(codebook=levels, indices=np.full(3, 4, dtype=np.int32))
    out = qat_finetune(torch.zeros(3), q, lambda zq: zq.sum(), steps=20, lr=0.1, train_codebook=False)
    assert out.values().tolist() == [-1.0, -1.0, -1.0]
