import math
import zlib

import numpy as np
import pytest

from llm_bounds.message.complexity import elias_delta_bits, message_complexity
from llm_bounds.core.errors import BoundInputError
from llm_bounds.message.accounting import message_report, overhead_bound_bits
from llm_bounds.message.bitio import BitReader, BitWriter, MessageError
from llm_bounds.message.format import (MODELS, candidate_messages, decode_message, empirical_entropy_bits, encode_message,
                                       encode_with_model, kt_blocks, parametric_weights)
from llm_bounds.message.quantize import Quantized, quantize


def _same(a: Quantized, b: Quantized) -> bool:
    return (a.values().tobytes() == b.values().tobytes() and a.codebook.tobytes() == b.codebook.tobytes()
            and np.array_equal(a.indices, b.indices))


def _entropy_bits(indices) -> float:
    """d·H(p̂) computed independently of the module."""
    _, c = np.unique(indices, return_counts=True)
    p = c / c.sum()
    return float(-(c * np.log2(p)).sum())


# d from 1 to 10^6 and L from 2 to 256, drawn once with a fixed seed.
_rng = np.random.default_rng(2024)
CASES = [(1, 2), (2, 256), (1_000_000, 17)] + [
    (int(10 ** _rng.uniform(0, 5)), int(_rng.integers(2, 257))) for _ in range(9)]


@pytest.mark.parametrize("d,L", CASES)
def test_round_trip_random(d, L):
    rng = np.random.default_rng(d * 1000 + L)
    z = rng.standard_normal(d) * rng.uniform(0.01, 10)
    q = quantize(z, L, method="kmeans" if d % 2 else "uniform", seed=d)
    data = encode_message(q)
    back = decode_message(data)
    assert _same(back, q)
    assert 8 * len(data) <= _entropy_bits(q.indices) + overhead_bound_bits(q)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", ["all_equal", "one_level_used", "d1", "skewed", "uniform_indices"])
def test_every_model_round_trips_including_degenerate(model, case):
    rng = np.random.default_rng(7)
    L = 13
    codebook = np.sort(rng.standard_normal(L)).astype(np.float16)
    indices = {
        "all_equal": np.zeros(500, np.int32),
        "one_level_used": np.full(777, 6, np.int32),
        "d1": np.array([12], np.int32),
        "skewed": np.where(rng.random(3000) < 0.995, 3, rng.integers(0, L, 3000)).astype(np.int32),
        "uniform_indices": rng.integers(0, L, 4000).astype(np.int32),
    }[case]
    q = Quantized(codebook=codebook, indices=indices)
    for trim in (False, True):
        data = encode_with_model(q, model, trim=trim)
        assert _same(decode_message(data), q)


def test_single_level_and_unsorted_codebook():
    q = Quantized(codebook=np.array([1.5], np.float16), indices=np.zeros(10, np.int32))
    assert _same(decode_message(encode_message(q)), q)
    q = Quantized(codebook=np.array([3.0, -1.0, 0.25, 0.25], np.float16),
                  indices=np.random.default_rng(0).integers(0, 4, 999))
    for data in candidate_messages(q).values():
        assert _same(decode_message(data), q)


def test_real_bits_within_stated_overhead_on_hard_distributions():
    rng = np.random.default_rng(11)
    for d, L, kind in [(200_000, 256, "zipf"), (100_000, 64, "rare"), (50_000, 200, "dirichlet"), (3, 256, "uniform")]:
        if kind == "zipf":
            p = 1.0 / np.arange(1, L + 1) ** 2
        elif kind == "rare":
            p = np.full(L, 1e-7); p[0] = 1.0
        elif kind == "dirichlet":
            p = rng.dirichlet(np.full(L, 0.05))
        else:
            p = np.ones(L)
        idx = rng.choice(L, size=d, p=p / p.sum()).astype(np.int32)
        q = Quantized(codebook=np.linspace(-1, 1, L).astype(np.float16), indices=idx)
        bound = _entropy_bits(idx) + overhead_bound_bits(q)
        assert 8 * len(encode_with_model(q, "static", trim=False)) <= bound
        assert 8 * len(encode_message(q)) <= bound


def test_report_is_consistent():
    z = np.random.default_rng(3).standard_normal(20_000)
    q = quantize(z, 17)
    data = encode_message(q)
    r = message_report(q, data, {"levels": 4})
    assert r["real_bits"] == 8 * len(data)
    assert math.isclose(r["ideal_bits"], _entropy_bits(q.indices), rel_tol=1e-12)
    assert math.isclose(r["overhead_bits"], r["real_bits"] - r["ideal_bits"])
    assert r["header_bits"] + r["codebook_bits"] + r["model_side_bits"] + r["payload_bits"] == r["real_bits"]
    assert r["codebook_bits"] == 16 * 17
    assert set(r["candidate_bits"]) == set(MODELS)
    assert r["real_bits"] <= min(r["candidate_bits"].values())
    assert r["model"] in MODELS and r["real_bits"] <= r["candidate_bits"][r["model"]]
    assert r["complexity"] == message_complexity(len(data), {"levels": 4}).to_dict()
    other = quantize(z + 1.0, 17)
    with pytest.raises(MessageError, match="does not decode"):
        message_report(other, data)


def test_parametric_model_beats_the_counts_table_for_gaussian_z():
    q = quantize(np.random.default_rng(9).standard_normal(50_000), 17)
    c = candidate_messages(q)
    assert len(c["gaussian"]) < len(c["static"])
    # And it is within a few dozen bytes of the ideal entropy plus header and codebook.
    assert 8 * len(c["gaussian"]) <= _entropy_bits(q.indices) + 8 * 12 + 16 * 17 + 32 + 300


def test_truncation_is_always_detected():
    q = quantize(np.random.default_rng(4).standard_normal(300), 11)
    data = encode_message(q)
    for n in range(len(data)):
        with pytest.raises(MessageError):
            decode_message(data[:n])


def test_every_single_bit_flip_is_detected():
    q = quantize(np.random.default_rng(5).standard_normal(200), 7, method="kmeans")
    data = bytearray(encode_message(q))
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(MessageError):
                decode_message(bytes(bad))


def test_header_errors_name_the_problem():
    data = encode_message(quantize(np.arange(50.0), 4))
    with pytest.raises(MessageError, match="magic"):
        decode_message(b"xx" + data[2:])
    with pytest.raises(MessageError, match="version"):
        decode_message(data[:2] + bytes([99]) + data[3:])
    with pytest.raises(MessageError, match="checksum"):
        decode_message(data + b"\0")
    # Reserved flag bits set, with the checksum recomputed: rejected by the flags check.
    body = bytearray(data[7:])
    body[0] |= 0x80
    crc = zlib.crc32(bytes(body), zlib.crc32(data[:3])).to_bytes(4, "big")
    with pytest.raises(MessageError, match="flags"):
        decode_message(data[:3] + crc + bytes(body))
    with pytest.raises(MessageError):
        decode_message("not bytes")
    with pytest.raises(BoundInputError):
        encode_message(np.zeros(3))
    assert issubclass(MessageError, BoundInputError)


def test_elias_delta_writer_matches_the_stated_cost():
    ns = [1, 2, 3, 7, 8, 1000, 2 ** 20 + 5, 10 ** 9]
    bw = BitWriter()
    for n in ns:
        before = bw.nbits
        bw.write_elias_delta(n)
        assert bw.nbits - before == elias_delta_bits(n)
    br = BitReader(bw.to_bytes())
    assert [br.read_elias_delta() for _ in ns] == ns


def test_kt_blocks_tile_the_sequence():
    for d in (1, 2, 17, 1000, 123_457):
        blocks = kt_blocks(d)
        assert blocks[0][0] == 0 and blocks[-1][1] == d
        assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
        assert all(1 <= stop - start <= 4096 for start, stop in blocks)


def test_parametric_weights_are_positive_integers_matching_the_distribution():
    c = np.linspace(-3, 3, 13).astype(np.float16)
    w = parametric_weights(c, "gaussian", 0.0, 1.0)
    assert np.all(w >= 1) and np.all(w == np.round(w))
    # The middle cell is [-0.25, 0.25]: mass 2Φ(0.25) − 1.
    expected = math.erf(0.25 / math.sqrt(2)) * 2 ** 24
    assert abs(w[6] - expected) <= 1
    assert abs(w.sum() - 2 ** 24) <= 13


def test_empirical_entropy_bits():
    assert empirical_entropy_bits(np.array([5, 5])) == pytest.approx(10.0)
    assert empirical_entropy_bits(np.array([7, 0, 0])) == 0.0
