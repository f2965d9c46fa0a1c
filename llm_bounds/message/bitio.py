"""Bit-level I/O for the message: MSB-first bit fields, Elias-delta integers and LEB128 varints.

Reading past the end or an implausible field raises :class:`MessageError` (a one-line reason)."""
from __future__ import annotations

from llm_bounds.core.errors import BoundInputError


class MessageError(BoundInputError):
    """The bytes are not a valid message (truncated, corrupted, wrong magic/version/checksum)."""


class BitWriter:
    """Appends bit fields most-significant bit first; ``to_bytes`` zero-pads to a whole byte."""

    def __init__(self):
        self.value, self.nbits = 0, 0

    def write(self, value: int, nbits: int) -> None:
        """Append ``value`` as an unsigned ``nbits``-bit field."""
        assert 0 <= value < (1 << nbits) or nbits == 0 and value == 0
        self.value = (self.value << nbits) | value
        self.nbits += nbits

    def write_elias_delta(self, n: int) -> None:
        """Append the Elias-delta codeword of the positive integer ``n`` (elias_delta_bits(n) bits)."""
        N = n.bit_length() - 1
        m = N + 1
        self.write(0, m.bit_length() - 1)
        self.write(m, m.bit_length())
        self.write(n - (1 << N), N)

    def to_bytes(self) -> bytes:
        """The fields so far, zero-padded to a whole number of bytes."""
        nbytes = (self.nbits + 7) // 8
        return (self.value << (8 * nbytes - self.nbits)).to_bytes(nbytes, "big")


class BitReader:
    """Reads the fields a :class:`BitWriter` wrote; reading past the end raises MessageError."""

    def __init__(self, data: bytes):
        self.value, self.total, self.pos = int.from_bytes(data, "big"), 8 * len(data), 0

    def read(self, nbits: int) -> int:
        """The next ``nbits`` bits as an unsigned integer."""
        if self.pos + nbits > self.total:
            raise MessageError("message truncated: the side information ends early; resend the full bytes")
        self.pos += nbits
        return (self.value >> (self.total - self.pos)) & ((1 << nbits) - 1)

    def read_elias_delta(self) -> int:
        """The next Elias-delta coded positive integer."""
        zeros = 0
        while self.read(1) == 0:
            zeros += 1
            if zeros > 40:
                raise MessageError("corrupted message: an Elias-delta count is implausibly long")
        m = (1 << zeros) | self.read(zeros)
        N = m - 1
        return (1 << N) | self.read(N)

    @property
    def bytes_used(self) -> int:
        return (self.pos + 7) // 8


def varint(n: int) -> bytes:
    """Unsigned LEB128 encoding of ``n``."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode an unsigned LEB128 integer at ``pos``; returns (value, next position)."""
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            raise MessageError("message truncated inside the header; resend the full bytes")
        if shift > 42:
            raise MessageError("corrupted header: a size field is implausibly long")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return value, pos
