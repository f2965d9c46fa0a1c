"""The message "θ0 unchanged": the single byte 0x00, decoded to z = 0 exactly.

The model before training (the pretrained checkpoint θ0, or the seeded init) is θ = θ0 + P·0, a
hypothesis the data never touched. The quantized-vector format of :mod:`llm_bounds.message.format`
codes z = 0 in at least 12 bytes (a 10-byte header and a one-level float16 codebook); this message
is one byte, 0x00: "d = 0", no coordinate coded. It costs 8 bits plus 1 bit of Elias-delta length
prefix in K. The other format starts with b"zq", so the two never collide (and every byte string is
a codeword of the length-prefixed code, so Kraft's inequality is unchanged).

The dimension of z is not in the message: like θ0 and P it is a setting of the run, fixed before
the data is seen (``RunConfig.intrinsic_dim``), so the decoder takes it from there
(:func:`decode_untrained` ``d``). It decodes to a one-level :class:`~llm_bounds.message.quantize.Quantized`
with the codebook [0], so every reader of messages handles it as a quantized vector whose values are
exactly zero. All sizes in **bits** unless a name says bytes.
"""
from __future__ import annotations

import numpy as np

from llm_bounds.message.bitio import MessageError
from llm_bounds.message.quantize import Quantized

UNTRAINED = b"\x00"


def untrained_message() -> bytes:
    """The message of z = 0: the model θ0 unchanged."""
    return UNTRAINED


def is_untrained_message(data) -> bool:
    """Whether ``data`` is the untrained message."""
    return isinstance(data, (bytes, bytearray, memoryview)) and bytes(data) == UNTRAINED


def decode_untrained(data: bytes, d: int | None) -> Quantized:
    """z = 0 of the run's dimension ``d``, as a one-level quantized vector (codebook [0])."""
    if not is_untrained_message(data):
        raise MessageError("not the untrained message (the single byte 0x00)")
    if d is None or not (isinstance(d, (int, np.integer)) and int(d) >= 1):
        raise MessageError(f"the untrained message (0x00, z = 0) decodes to z of the run's own dimension d; "
                           f"pass d = --intrinsic-dim (got {d!r})")
    return Quantized(codebook=np.zeros(1, dtype=np.float16), indices=np.zeros(int(d), dtype=np.int32))


def untrained_report(q: Quantized, data: bytes) -> dict:
    """:func:`llm_bounds.message.accounting.message_report` for the untrained message: all of it is header."""
    real = 8 * len(data)
    return {"d": q.d, "levels": q.levels, "model": "untrained", "real_bits": real, "ideal_bits": 0.0,
            "overhead_bits": float(real), "overhead_bound_bits": float(real), "header_bits": real, "codebook_bits": 0,
            "model_side_bits": 0, "payload_bits": 0, "candidate_bits": {"untrained": real}}
