"""Projectors: adjoint, scale, orthonormality, no dead coordinates, determinism, errors, speed."""
import hashlib
import math
import subprocess
import sys

import pytest
import torch

from llm_bounds.core.errors import BoundInputError
from llm_bounds.subspace.projectors import (PROJECTORS, FastfoodProjector, KroneckerProjector, fwht, kron_factors,
                                 make_projector)

# (D, d) pairs: degenerate, perfect squares on both sides, primes, d = D, non-powers of two.
SHAPES = [(1, 1), (7, 7), (16, 9), (49, 16), (50, 25), (101, 36), (257, 17), (1000, 64), (1031, 100)]


def materialize(P) -> torch.Tensor:
    """P as a dense [D, d] matrix, column by column through forward()."""
    return torch.stack([P(e) for e in torch.eye(P.d)], dim=1)


@pytest.mark.parametrize("name", PROJECTORS)
@pytest.mark.parametrize("D,d", SHAPES)
def test_adjoint_and_no_dead_coordinates(name, D, d):
    P = make_projector(name, D, d, seed=3)
    g = torch.Generator().manual_seed(D * 1000 + d)
    z, y = torch.randn(d, generator=g), torch.randn(D, generator=g)
    lhs, rhs = torch.dot(P(z), y).item(), torch.dot(z, P.transpose(y)).item()
    assert lhs == pytest.approx(rhs, rel=1e-4, abs=1e-4 * math.sqrt(D))
    M = materialize(P)
    assert M.shape == (D, d)
    assert (M.abs().sum(dim=1) > 0).all(), "some theta entry is never reached"
    assert (M.abs().sum(dim=0) > 0).all(), "some z coordinate moves nothing"
    # the transpose is the transpose of the same matrix
    MT = torch.stack([P.transpose(e) for e in torch.eye(D)[: min(D, 20)]], dim=0)
    torch.testing.assert_close(MT, M[: min(D, 20)], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", PROJECTORS)
def test_gradient_through_projector_is_its_transpose(name):
    P = make_projector(name, 300, 20, seed=1).double()
    z = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(P, (z,))


@pytest.mark.parametrize("name", ["dense", "sparse", "fastfood"])
def test_expected_squared_norm_equals_squared_norm_of_z(name):
    # E||Pz||^2 = ||z||^2 by design; average the ratio over independent seeds.
    D, d, seeds = 512, 32, 200   # 512 = 16 fastfood blocks of 32 outputs, so no truncation
    z = torch.randn(d, generator=torch.Generator().manual_seed(0))
    ratios = torch.tensor([(make_projector(name, D, d, seed=s)(z).norm() / z.norm()).item() ** 2
                           for s in range(seeds)])
    # standard error of the mean is below 0.02 for each of these; allow 5 of them
    assert ratios.mean().item() == pytest.approx(1.0, abs=0.1)


def test_kronecker_is_orthonormal_when_D_factors():
    # D = 30 * 30: a1 = a2 = 30, no truncated rows, so P^T P = I and norms are preserved exactly.
    for D, d in [(900, 25), (900, 900), (900, 37), (12, 6)]:
        a1, a2, _, _ = kron_factors(D, d)
        assert a1 * a2 == D
        P = KroneckerProjector(D, d, seed=5)
        M = materialize(P)
        torch.testing.assert_close(M.T @ M, torch.eye(d), atol=2e-5, rtol=0)
        z = torch.randn(d)
        assert P(z).norm().item() == pytest.approx(z.norm().item(), rel=1e-5)


def test_kronecker_with_leftover_rows_is_a_contraction_with_expected_loss():
    D, d = 1031, 100                     # a1 = 33, a2 = 32: 25 dropped rows
    a1, a2, _, _ = kron_factors(D, d)
    z = torch.randn(d)
    ratios = [(KroneckerProjector(D, d, seed=s)(z).norm() / z.norm()).item() ** 2 for s in range(50)]
    assert max(ratios) <= 1.0 + 1e-5
    assert sum(ratios) / len(ratios) == pytest.approx(D / (a1 * a2), abs=0.01)


def test_kron_factors_fit_for_every_small_pair():
    for D in range(1, 200):
        for d in range(1, D + 1):
            a1, a2, b1, b2 = kron_factors(D, d)
            assert a1 * a2 >= D and b1 * b2 >= d and b1 <= a1 and b2 <= a2
            assert a1 * a2 - D < a1 and b1 * b2 - d < b1


def test_fwht_matches_sylvester_hadamard_matrix():
    H = torch.ones(1, 1)
    for _ in range(6):
        H = torch.cat([torch.cat([H, H], 1), torch.cat([H, -H], 1)], 0)
    x = torch.randn(3, 64, dtype=torch.float64)
    torch.testing.assert_close(fwht(x), x @ H.double().T)
    torch.testing.assert_close(fwht(fwht(x)), 64 * x)


def test_fastfood_scale_per_instance_is_close_to_one_at_large_size():
    # With many blocks the squared norm concentrates: the reference's fastfood was off by ~100x.
    P = FastfoodProjector(65536, 1000, seed=0)
    z = torch.randn(1000)
    assert (P(z).norm() / z.norm()).item() == pytest.approx(1.0, abs=0.05)


def _digests(seed: int) -> dict:
    out = {}
    for name in PROJECTORS:
        P = make_projector(name, 3000, 120, seed=seed)
        z = torch.randn(120, generator=torch.Generator().manual_seed(1))
        out[name] = hashlib.sha256(P(z).numpy().tobytes()).hexdigest()
    return out


def test_same_seed_gives_bitwise_identical_projection_in_another_process():
    code = ("import json; from tests.test_projectors import _digests; print(json.dumps(_digests(11)))")
    import json
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    other = json.loads(res.stdout.strip().splitlines()[-1])
    assert other == _digests(11)
    assert _digests(12) != _digests(11)


@pytest.mark.parametrize("name", PROJECTORS)
def test_bad_dimensions_raise_clear_errors(name):
    with pytest.raises(BoundInputError, match="exceeds"):
        make_projector(name, 10, 11)
    with pytest.raises(BoundInputError, match="d must be >= 1"):
        make_projector(name, 10, 0)


def test_unknown_projector_names_the_choices():
    with pytest.raises(BoundInputError, match="choose one of kron"):
        make_projector("gaussian", 10, 5)


def test_dense_refuses_huge_sizes():
    with pytest.raises(BoundInputError, match="kron"):
        make_projector("dense", 351_744, 50_000)


def test_sparse_columns_have_unit_norm_and_distinct_rows():
    for D, d in [(257, 17), (50, 25), (1000, 64), (7, 7)]:
        P = make_projector("sparse", D, d, seed=4)
        M = materialize(P)
        assert ((M != 0).sum(dim=0) == P.k).all()
        torch.testing.assert_close(M.norm(dim=0), torch.ones(d))
