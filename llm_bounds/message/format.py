"""The coded message: a quantized vector as bytes that decode back to it exactly.

Layout (all of it counts in the message length)::

    magic  b"zq"                      2 bytes
    format version                    1 byte
    CRC-32 of every other byte        4 bytes (big-endian)
    flags                             1 byte: bits 0-1 entropy model, bits 2-3 codebook dtype
                                      (0 = float16), bits 4-5 index dtype (0 = int32), bits 6-7 zero
    d, L                              unsigned LEB128 varints
    side information, bit-packed      L float16 levels (16·L bits), then the model's parameters;
                                      zero-padded to a byte
    payload                           constriction range-coder words, big-endian; trailing bytes
                                      the decoder can do without (it pads with 0xFF) are dropped

Entropy models (the encoder codes with each and keeps the shortest message; the choice is the
2-bit model field, paid for inside the flags byte):

* ``static``: i.i.d. categorical with the empirical counts, which travel as Elias-delta(count+1) for
  the first L−1 levels (the last is d minus the rest). This is the reference's model, made real.
* ``kt``: adaptive Krichevsky–Trofimov, probabilities ∝ counts-so-far + ½, no table. The counts
  are updated between blocks (sizes fixed by d alone) so that numpy/constriction stay vectorised.
* ``gaussian`` / ``laplace``: the distribution's mass on each quantization cell of the sorted
  codebook (cell edges at midpoints between levels), location and scale sent as float16.

The single byte 0x00 is the untrained message "z = 0" of :mod:`llm_bounds.message.untrained`;
:func:`decode_message` reads both.

Every model is rebuilt by the decoder from integers (counts, or parametric masses rounded to
integer weights of 2^-24), so floating-point differences between machines cannot change it.
All sizes here are in **bits** unless a name says bytes.
"""
from __future__ import annotations

import math
import zlib

import numpy as np
import constriction

from llm_bounds.core.errors import BoundInputError
from llm_bounds.message.bitio import BitReader, BitWriter, MessageError, read_varint, varint
from llm_bounds.message.quantize import MAX_LEVELS, Quantized
from llm_bounds.message.untrained import decode_untrained, is_untrained_message

MAGIC = b"zq"
FORMAT_VERSION = 1
MODELS = ("static", "kt", "gaussian", "laplace")
CODEBOOK_DTYPES = {0: np.float16}
INDEX_DTYPES = {0: np.int32}
MAX_D = 1 << 36
PARAMETRIC_PRECISION_BITS = 24   # parametric masses become integer weights in units of 2^-24
KT_MAX_BLOCK = 4096              # the KT model is refreshed at least every this many symbols
KT_GROWTH_DIVISOR = 16           # ... and after each block of (symbols seen so far)/16
MAX_TRIM_BYTES = 7
CODER_SLACK_BITS = 96            # range-coder flush (2 words) + rounding the payload to whole words
CODER_SLACK_PER_SYMBOL_PER_LEVEL = 2.0 ** -20   # fixed-point approximation of the model, bits


# ---------------------------------------------------------------------------------------------
# bit-level helpers for the side information
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# entropy models: each is rebuilt exactly from integers by the decoder
# ---------------------------------------------------------------------------------------------

def empirical_entropy_bits(counts: np.ndarray) -> float:
    """d·H(p̂) in bits: the ideal code length of the indices under their own empirical distribution."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    d = c.sum()
    return float(-(c * np.log2(c / d)).sum())


def kt_blocks(d: int) -> list[tuple[int, int]]:
    """The (start, stop) blocks of the adaptive model; the model is refreshed before each block.

    Block size = clip(seen // KT_GROWTH_DIVISOR, 1, KT_MAX_BLOCK): symbol-by-symbol at first, then at
    most a 1/16 lag behind the sequential KT estimate, and O(d / 4096) blocks for large d.
    """
    blocks, start = [], 0
    while start < d:
        size = min(max(start // KT_GROWTH_DIVISOR, 1), KT_MAX_BLOCK, d - start)
        blocks.append((start, start + size))
        start += size
    return blocks


def _categorical(weights: np.ndarray):
    """A constriction categorical model from non-negative float64 weights (integers or halves)."""
    return constriction.stream.model.Categorical(np.asarray(weights, dtype=np.float64), perfect=False)


def _cells(codebook: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order of the codebook and the lower/upper edges of each sorted level's cell (float64)."""
    order = np.argsort(codebook.astype(np.float64), kind="stable")
    c = codebook.astype(np.float64)[order]
    mid = (c[1:] + c[:-1]) / 2          # exact: float16 values halve exactly in float64
    lo = np.concatenate([[-math.inf], mid])
    hi = np.concatenate([mid, [math.inf]])
    return order, lo, hi


def _cdf(family: str, x: float, loc: float, scale: float) -> float:
    """CDF of a Gaussian (scale = σ) or Laplace (scale = b) at x, with Python's libm functions."""
    if x == math.inf:
        return 1.0
    if x == -math.inf:
        return 0.0
    t = (x - loc) / scale
    if family == "gaussian":
        return 0.5 * math.erfc(-t / math.sqrt(2.0))
    return 0.5 * math.exp(t) if t < 0 else 1.0 - 0.5 * math.exp(-t)


def parametric_weights(codebook: np.ndarray, family: str, loc: float, scale: float) -> np.ndarray:
    """Integer weights (float64) ∝ the family's mass on each level's cell, in units of 2^-24, at least 1.

    Rounding to integers makes the model identical on any machine unless a mass lies within one
    float64 ulp of a rounding boundary (then the CRC reports the mismatch; nothing decodes silently).
    """
    order, lo, hi = _cells(codebook)
    mass = np.array([_cdf(family, b, loc, scale) - _cdf(family, a, loc, scale) for a, b in zip(lo, hi)])
    w_sorted = np.maximum(np.round(mass * 2.0 ** PARAMETRIC_PRECISION_BITS), 1.0)
    w = np.empty_like(w_sorted)
    w[order] = w_sorted
    return w


def _cross_entropy_bits(counts: np.ndarray, weights: np.ndarray) -> float:
    """Σ_i counts_i · (−log2 (w_i / Σ w)) in bits."""
    p = weights / weights.sum()
    used = counts > 0
    return float(-(counts[used] * np.log2(p[used])).sum())


def fit_parametric(codebook: np.ndarray, counts: np.ndarray, family: str) -> tuple[float, float]:
    """Float16-representable (loc, scale) minimising the coded length of ``counts`` (bits).

    Start from the moments of the quantized values (mean/std for Gaussian, median/mean |dev| for
    Laplace), then refine by a pattern search over (loc, log scale).
    """
    c = codebook.astype(np.float64)
    w = counts.astype(np.float64)
    if family == "gaussian":
        loc0 = float((w * c).sum() / w.sum())
        s0 = float(math.sqrt((w * (c - loc0) ** 2).sum() / w.sum()))
    else:
        order = np.argsort(c, kind="stable")
        cum = np.cumsum(w[order])
        loc0 = float(c[order][np.searchsorted(cum, cum[-1] / 2)])
        s0 = float((w * np.abs(c - loc0)).sum() / w.sum())
    spacing = np.diff(np.unique(c))
    s0 = max(s0, float(spacing.min()) / 8 if spacing.size else 0.0, 1e-4)

    def cost(loc: float, log_scale: float) -> float:
        with np.errstate(over="ignore"):
            loc, scale = float(np.float16(loc)), float(np.float16(math.exp(min(log_scale, 20.0))))
        if not (math.isfinite(loc) and math.isfinite(scale) and scale > 0):
            return math.inf
        return _cross_entropy_bits(counts, parametric_weights(codebook, family, loc, scale))

    # Pattern search: move to a better neighbour, else halve the steps, down to float16 resolution.
    loc, log_s = loc0, math.log(s0)
    best = cost(loc, log_s)
    step_loc, step_log = s0 / 4, 0.25
    while step_log > 2.0 ** -12:
        moved = False
        for dl, ds in ((step_loc, 0), (-step_loc, 0), (0, step_log), (0, -step_log)):
            trial = cost(loc + dl, log_s + ds)
            if trial < best:
                best, loc, log_s, moved = trial, loc + dl, log_s + ds, True
                break
        if not moved:
            step_loc, step_log = step_loc / 2, step_log / 2
    return float(np.float16(loc)), float(np.float16(math.exp(log_s)))


# ---------------------------------------------------------------------------------------------
# coding with constriction
# ---------------------------------------------------------------------------------------------

def _encode_symbols(indices: np.ndarray, model: str, weights: np.ndarray | None, levels: int) -> np.ndarray:
    """Range-code ``indices`` (int32) with one model; returns the constriction uint32 words."""
    enc = constriction.stream.queue.RangeEncoder()
    if model == "kt":
        counts = np.full(levels, 0.5)
        for start, stop in kt_blocks(indices.size):
            block = indices[start:stop]
            enc.encode(block, _categorical(counts))
            counts += np.bincount(block, minlength=levels)
    else:
        enc.encode(indices, _categorical(weights))
    return enc.get_compressed()


def _decode_symbols(words: np.ndarray, d: int, model: str, weights: np.ndarray | None, levels: int) -> np.ndarray:
    """Inverse of :func:`_encode_symbols`: d int32 symbols from the uint32 words."""
    dec = constriction.stream.queue.RangeDecoder(words)
    if model == "kt":
        out = np.empty(d, dtype=np.int32)
        counts = np.full(levels, 0.5)
        for start, stop in kt_blocks(d):
            out[start:stop] = dec.decode(_categorical(counts), stop - start)
            counts += np.bincount(out[start:stop], minlength=levels)
        return out
    return np.asarray(dec.decode(_categorical(weights), d), dtype=np.int32)


def _words_from_payload(payload: bytes) -> np.ndarray:
    """uint32 words from payload bytes: pad with 0xFF to whole words, then append one 0xFFFFFFFF word.

    The range coder's final words hold the lower end of its last interval; dropped trailing bytes
    read back as 0xFF, which rounds that point up inside the interval whenever the interval is
    wide enough. The encoder keeps a trim only after decoding it successfully.
    """
    pad = (-len(payload)) % 4
    return np.frombuffer(payload + b"\xff" * (pad + 4), dtype=">u4").astype(np.uint32)


def side_information(q: Quantized, model: str, counts: np.ndarray) -> tuple[BitWriter, np.ndarray | None]:
    """The bit-packed side information (codebook + model parameters) and the static weights."""
    bw = BitWriter()
    for u in q.codebook.astype(">f2").view(">u2").tolist():
        bw.write(int(u), 16)
    if q.levels == 1:
        return bw, None
    if model == "static":
        for c in counts[:-1].tolist():
            bw.write_elias_delta(int(c) + 1)
        return bw, counts.astype(np.float64)
    if model in ("gaussian", "laplace"):
        loc, scale = fit_parametric(q.codebook, counts, model)
        for v in (loc, scale):
            bw.write(int(np.array(v, dtype=">f2").view(">u2")), 16)
        return bw, parametric_weights(q.codebook, model, loc, scale)
    return bw, None


def _header(model: str, d: int, levels: int) -> tuple[bytes, bytes]:
    """The header split around the CRC field: (magic + version, flags + d + L)."""
    flags = MODELS.index(model) | (0 << 2) | (0 << 4)
    return MAGIC + bytes([FORMAT_VERSION]), bytes([flags]) + varint(d) + varint(levels)


def _assemble(head: bytes, tail: bytes, side: bytes, payload: bytes) -> bytes:
    """Concatenate the parts with the CRC-32 of everything except the CRC itself."""
    body = tail + side + payload
    crc = zlib.crc32(body, zlib.crc32(head))
    return head + crc.to_bytes(4, "big") + body


def _trim_payload(words: np.ndarray, decodes_ok) -> bytes:
    """Payload bytes with as many trailing bytes (≤ 7) dropped as the decoder's 0xFF padding allows.

    Every candidate is checked by a full decode, the untrimmed payload included.
    """
    full = words.astype(">u4").tobytes()
    if not decodes_ok(_words_from_payload(full)):
        raise RuntimeError("range coder round trip failed; this is a bug in llm_bounds.message.format")
    best = full
    for k in range(1, min(MAX_TRIM_BYTES, len(full)) + 1):
        if not decodes_ok(_words_from_payload(full[:-k])):
            break
        best = full[:-k]
    return best


def encode_with_model(q: Quantized, model: str, trim: bool = True) -> bytes:
    """The message for ``q`` using the named entropy model (one of MODELS)."""
    if model not in MODELS:
        raise BoundInputError(f"unknown entropy model {model!r}; choose one of {', '.join(MODELS)}")
    _check_quantized(q)
    d, L = q.d, q.levels
    if d > MAX_D:
        raise BoundInputError(f"d = {d} exceeds the format's limit {MAX_D}; split the vector")
    counts = q.counts()
    bw, weights = side_information(q, model, counts)
    if L == 1:
        payload = b""
    else:
        words = _encode_symbols(q.indices, model, weights, L)

        def ok(w: np.ndarray) -> bool:
            try:
                return bool(np.array_equal(_decode_symbols(w, d, model, weights, L), q.indices))
            except Exception:  # constriction rejects some streams outright (AssertionError)
                return False

        payload = _trim_payload(words, ok) if trim else words.astype(">u4").tobytes()
    head, tail = _header(model, d, L)
    return _assemble(head, tail, bw.to_bytes(), payload)


def _check_quantized(q) -> None:
    """Raise BoundInputError unless ``q`` is a :class:`Quantized`."""
    if not isinstance(q, Quantized):
        raise BoundInputError(f"messages encode a llm_bounds.message.quantize.Quantized (from quantize()), got {type(q).__name__}")


def candidate_messages(q: Quantized, trim: bool = False) -> dict[str, bytes]:
    """The message under every applicable entropy model (only ``static`` when L = 1)."""
    _check_quantized(q)
    models = ("static",) if q.levels == 1 else MODELS
    return {m: encode_with_model(q, m, trim=trim) for m in models}


def encode_message(q: Quantized) -> bytes:
    """The shortest message for ``q`` over the entropy models (ties → the earlier model in MODELS).

    Candidates are compared before the payload tail is trimmed; the chosen one is then trimmed.
    """
    cands = candidate_messages(q, trim=False)
    best = min(cands, key=lambda m: (len(cands[m]), MODELS.index(m)))
    return encode_with_model(q, best, trim=True)


def parse_message(data: bytes) -> dict:
    """Check and split a message; returns its fields. Raises MessageError on any inconsistency."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MessageError(f"a message is bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < 10:
        raise MessageError(f"message truncated: {len(data)} bytes is shorter than the 10-byte minimum header")
    if data[:2] != MAGIC:
        raise MessageError(f"not a quantized-vector message: magic {data[:2]!r}, expected {MAGIC!r}")
    if data[2] != FORMAT_VERSION:
        raise MessageError(f"unsupported message format version {data[2]}; this decoder reads version {FORMAT_VERSION}")
    stored = int.from_bytes(data[3:7], "big")
    if zlib.crc32(data[7:], zlib.crc32(data[:3])) != stored:
        raise MessageError("message checksum mismatch: the bytes are truncated or corrupted; resend them")
    flags = data[7]
    model_id, cb_code, ix_code = flags & 3, (flags >> 2) & 3, (flags >> 4) & 3
    if flags >> 6 or cb_code not in CODEBOOK_DTYPES or ix_code not in INDEX_DTYPES:
        raise MessageError(f"unsupported flags byte {flags:#04x} (reserved bits or unknown dtypes)")
    d, pos = read_varint(data, 8)
    L, pos = read_varint(data, pos)
    if not (1 <= d <= MAX_D and 1 <= L <= MAX_LEVELS):
        raise MessageError(f"corrupted header: d = {d}, L = {L} out of range")
    if L == 1 and model_id != 0:
        raise MessageError("corrupted header: a one-level message must use the static model")
    return {"data": data, "model": MODELS[model_id], "d": d, "levels": L, "side_start": pos}


def decode_message(data: bytes, d: int | None = None) -> Quantized:
    """Rebuild the quantized vector from a message: bitwise the one that was encoded.

    Raises :class:`MessageError` (a BoundInputError) on truncated or corrupted bytes, a wrong magic,
    version or checksum, or tables inconsistent with the header. The untrained message
    (:mod:`llm_bounds.message.untrained`) decodes to z = 0 of the run's dimension ``d``, a one-level
    vector with the codebook [0] (every other message carries its own d, and ``d`` is not used).
    """
    if is_untrained_message(data):
        return decode_untrained(data, d)
    f = parse_message(data)
    data, model, d, L = f["data"], f["model"], f["d"], f["levels"]
    br = BitReader(data[f["side_start"]:])
    raw = np.array([br.read(16) for _ in range(L)], dtype=">u2")
    codebook = raw.view(">f2").astype(np.float16)
    if not np.isfinite(codebook).all():
        raise MessageError("corrupted message: the codebook has a non-finite level")
    if L == 1:
        if br.bytes_used != len(data) - f["side_start"]:
            raise MessageError("corrupted message: bytes after a one-level codebook")
        return Quantized(codebook=codebook, indices=np.zeros(d, dtype=np.int32))
    weights, table = None, None
    if model == "static":
        table = np.array([br.read_elias_delta() - 1 for _ in range(L - 1)], dtype=np.int64)
        rest = d - int(table.sum())
        if rest < 0:
            raise MessageError("corrupted message: the counts table sums past d")
        table = np.append(table, rest)
        weights = table.astype(np.float64)
    elif model in ("gaussian", "laplace"):
        loc = float(np.array(br.read(16), dtype=">u2").view(">f2"))
        scale = float(np.array(br.read(16), dtype=">u2").view(">f2"))
        if not (math.isfinite(loc) and math.isfinite(scale) and scale > 0):
            raise MessageError(f"corrupted message: parametric model loc = {loc}, scale = {scale}")
        weights = parametric_weights(codebook, model, loc, scale)
    payload = data[f["side_start"] + br.bytes_used:]
    try:
        indices = _decode_symbols(_words_from_payload(payload), d, model, weights, L)
    except Exception as exc:  # constriction reports malformed streams with its own exceptions
        raise MessageError(f"corrupted message: the range decoder failed ({exc})") from exc
    if indices.min() < 0 or indices.max() >= L:
        raise MessageError("corrupted message: a decoded index lies outside the codebook")
    if table is not None and not np.array_equal(np.bincount(indices, minlength=L), table):
        raise MessageError("corrupted message: decoded indices disagree with the counts table")
    return Quantized(codebook=codebook, indices=indices)


