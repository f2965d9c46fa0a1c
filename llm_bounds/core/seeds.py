"""Every seed of a run comes from here: one master seed, one named purpose, one derived seed.

Two derivations exist, and each is pinned by the golden message (``tests/golden``), so neither can
change without changing every published certificate:

- :func:`derive_seed` (numpy ``SeedSequence`` over the master seed and the CRC-32 of the purpose,
  31 bits): the run's purposes (``init``, ``projection``, ``lora``, ``train``, ``sample``, ...),
  asked for through :meth:`llm_bounds.certificate.config.RunConfig.seed_for`.
- :func:`derive_stream_seed` (SHA-256 of ``seed|label|...``, 63 bits): the sub-streams inside one
  seeded object (a projection's blocks, the LoRA init), drawn from a seed that :func:`derive_seed`
  already produced.

Both are pure functions of integers and strings: no global state, no device.
"""
from __future__ import annotations

import hashlib
import zlib

import numpy as np
import torch


def derive_seed(seed: int, purpose: str) -> int:
    """An independent 31-bit seed for ``purpose`` from the master ``seed``."""
    ss = np.random.SeedSequence([int(seed), zlib.crc32(purpose.encode())])
    return int(ss.generate_state(1, dtype=np.uint32)[0] >> 1)


def derive_stream_seed(seed: int, *labels) -> int:
    """A 63-bit seed for the sub-stream ``labels`` of an object seeded with ``seed``."""
    text = "|".join(str(x) for x in (int(seed), *labels))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def cpu_generator(seed: int, *labels) -> torch.Generator:
    """A CPU ``torch.Generator`` for the sub-stream ``labels`` (randomness independent of the device)."""
    return torch.Generator(device="cpu").manual_seed(derive_stream_seed(seed, *labels))
