"""The message "θ0 unchanged": z = 0 exactly, in a few bytes.

The model before training (the pretrained checkpoint θ0, or the seeded init) is θ = θ0 + P·0, a
hypothesis the data never touched. The quantized-vector format of :mod:`llm_bounds.message.format`
codes z = 0 in at least 12 bytes (a 10-byte header and a one-level float16 codebook); this message
says the same in

    ZERO_MARKER (the byte 0x00)   1 byte; the other format starts with b"zq", so the two never collide
    d                             unsigned LEB128 varint: 2 bytes for 128 <= d < 16,384

i.e. 3 bytes (24 bits, plus 4 bits of Elias-delta length prefix in K) for the dimensions used here.
There is no checksum: a certificate pins the message by its sha256, and a changed byte either breaks
the marker or names another d, which the model refuses. It decodes to a one-level
:class:`~llm_bounds.message.quantize.Quantized` with the codebook [0], so every reader of messages
handles it as a quantized vector whose values are exactly zero. All sizes in **bits** unless a name
says bytes.
"""
from __future__ import annotations

import numpy as np

from llm_bounds.message.bitio import MessageError, read_varint, varint
from llm_bounds.message.quantize import Quantized

ZERO_MARKER = 0x00
MAX_D = 1 << 36  # as in the quantized-vector format


def untrained_message(d: int) -> bytes:
    """The message of z = 0 for a subspace of dimension ``d``: the model θ0 unchanged."""
    if not (1 <= int(d) <= MAX_D):
        raise MessageError(f"d = {d} is outside the message format's range [1, {MAX_D}]")
    return bytes([ZERO_MARKER]) + varint(int(d))


def is_untrained_message(data: bytes) -> bool:
    """Whether ``data`` is an untrained message (by its first byte; :func:`decode_untrained` checks the rest)."""
    return isinstance(data, (bytes, bytearray, memoryview)) and len(data) >= 1 and bytes(data[:1]) == bytes([ZERO_MARKER])


def decode_untrained(data: bytes) -> Quantized:
    """z = 0 of the coded dimension, as a one-level quantized vector (codebook [0])."""
    data = bytes(data)
    if not is_untrained_message(data):
        raise MessageError("not an untrained (z = 0) message: its first byte is not 0x00")
    d, end = read_varint(data, 1)
    if end != len(data) or not (1 <= d <= MAX_D) or data != untrained_message(d):
        raise MessageError("corrupted untrained message: after the 0x00 byte it holds exactly d as a minimal varint")
    return Quantized(codebook=np.zeros(1, dtype=np.float16), indices=np.zeros(d, dtype=np.int32))


def untrained_report(q: Quantized, data: bytes) -> dict:
    """:func:`llm_bounds.message.accounting.message_report` for an untrained message: all of it is header."""
    real = 8 * len(data)
    return {"d": q.d, "levels": q.levels, "model": "untrained", "real_bits": real, "ideal_bits": 0.0,
            "overhead_bits": float(real), "overhead_bound_bits": float(real), "header_bits": real, "codebook_bits": 0,
            "model_side_bits": 0, "payload_bits": 0, "candidate_bits": {"untrained": real}}
