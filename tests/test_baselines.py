"""Classical compressors on the scored bytes: sizes, units (bits per byte) and the content-hash cache."""
import bz2
import gzip
import lzma

import numpy as np
import pytest

from llm_bounds.data import baselines
from llm_bounds.data.baselines import COMPRESSORS, baseline_bits_per_byte, compressed_bits


def test_bits_are_eight_times_the_standard_library_sizes():
    data = b"and god said, let there be light: and there was light. " * 50
    bits = compressed_bits(data)
    assert list(bits) == list(COMPRESSORS)
    assert bits["gzip -9"] == 8 * len(gzip.compress(data, compresslevel=9, mtime=0))
    assert bits["bzip2 -9"] == 8 * len(bz2.compress(data, compresslevel=9))
    assert bits["xz -9e"] == 8 * len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    assert gzip.decompress(gzip.compress(data, compresslevel=9, mtime=0)) == data


def test_random_bytes_cost_at_least_8_bits_per_byte_and_repetition_far_less(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    for name, v in baseline_bits_per_byte(noise).items():
        if name in COMPRESSORS:
            assert v > 8.0, name  # incompressible: container overhead on top of 8 bits per byte
    text = baseline_bits_per_byte(b"abcd" * 5000)
    assert all(text[name] < 0.2 for name in COMPRESSORS) and text["bytes"] == 20_000


def test_the_cache_is_keyed_by_content(tmp_path, monkeypatch):
    first = baseline_bits_per_byte(b"in the beginning " * 100, cache_dir=tmp_path)
    monkeypatch.setattr(baselines, "compressed_bits", lambda data: pytest.fail("recomputed a cached result"))
    assert baseline_bits_per_byte(b"in the beginning " * 100, cache_dir=tmp_path) == first
    with pytest.raises(pytest.fail.Exception):  # other content is not read from the cache
        baseline_bits_per_byte(b"in the end " * 100, cache_dir=tmp_path)
