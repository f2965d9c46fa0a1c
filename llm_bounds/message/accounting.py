"""Where the message's bits go: header, codebook, model side information and payload, against the
ideal entropy, with a proven bound on the overhead. All sizes in **bits**."""
from __future__ import annotations

import numpy as np

from llm_bounds.message.bitio import MessageError, varint
from llm_bounds.message.complexity import elias_delta_bits, message_complexity
from llm_bounds.message.format import (CODER_SLACK_BITS, CODER_SLACK_PER_SYMBOL_PER_LEVEL, candidate_messages,
                                       decode_message, empirical_entropy_bits, parse_message, side_information)
from llm_bounds.message.quantize import Quantized
from llm_bounds.message.untrained import is_untrained_message, untrained_report


def header_bits(d: int, levels: int) -> int:
    """Bits of magic, version, CRC, flags and the d, L varints."""
    return 8 * (2 + 1 + 4 + 1 + len(varint(d)) + len(varint(levels)))


def counts_table_bits(counts: np.ndarray) -> int:
    """Bits of the static model's table: Elias-delta(count + 1) for all but the last level."""
    return int(sum(elias_delta_bits(int(c) + 1) for c in np.asarray(counts)[:-1]))


def overhead_bound_bits(q: Quantized) -> float:
    """A stated upper bound, in bits, on (message bits − d·H(p̂)) for the chosen message.

    The static candidate alone stays within: header + codebook (16·L) + counts table + side-info
    padding (7) + CODER_SLACK_BITS (flush and word rounding) + d·L·2^-20 (the coder approximates
    the model's probabilities in 24-bit fixed point; each level's probability is off by about one
    2^-24 unit, costing ≲ L·2^-24·log2(e) bits per symbol, so 2^-20 per level leaves a 10× margin;
    measured worst case about 2^-25). The encoder keeps the shortest candidate, so the bound covers it too.
    """
    slack = CODER_SLACK_BITS + q.d * q.levels * CODER_SLACK_PER_SYMBOL_PER_LEVEL
    return header_bits(q.d, q.levels) + 16 * q.levels + counts_table_bits(q.counts()) + 7 + slack


def message_report(q: Quantized, data: bytes, hyperparameter_grids: dict | None = None) -> dict:
    """What the message costs and why, in bits; checks first that ``data`` decodes to ``q`` exactly.

    Keys: d, levels, model (chosen), real_bits (8·len(data)), ideal_bits (d·H(p̂)), overhead_bits
    (real − ideal), overhead_bound_bits, header_bits, codebook_bits, model_side_bits (counts table or
    parameters, with padding), payload_bits, candidate_bits (each model's untrimmed message),
    complexity (llm_bounds.message.complexity.message_complexity of the length and the grids).
    """
    decoded = decode_message(data, q.d)
    if decoded.codebook.tobytes() != q.codebook.tobytes() or not np.array_equal(decoded.indices, q.indices):
        raise MessageError("this message does not decode to the given quantized vector")
    if is_untrained_message(data):
        return {**untrained_report(q, data),
                "complexity": message_complexity(len(data), hyperparameter_grids).to_dict()}
    f = parse_message(data)
    hdr = header_bits(q.d, q.levels)
    cb = 16 * q.levels
    # Side-info length: re-derive it from the bits the chosen model writes.
    bw, _ = side_information(q, f["model"], q.counts())
    side_bits = 8 * len(bw.to_bytes())
    real = 8 * len(data)
    ideal = empirical_entropy_bits(q.counts())
    return {
        "d": q.d,
        "levels": q.levels,
        "model": f["model"],
        "real_bits": real,
        "ideal_bits": ideal,
        "overhead_bits": real - ideal,
        "overhead_bound_bits": overhead_bound_bits(q),
        "header_bits": hdr,
        "codebook_bits": cb,
        "model_side_bits": side_bits - cb,
        "payload_bits": real - hdr - side_bits,
        "candidate_bits": {m: 8 * len(b) for m, b in candidate_messages(q).items()},
        "complexity": message_complexity(len(data), hyperparameter_grids).to_dict(),
    }
