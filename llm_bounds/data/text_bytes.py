"""The UTF-8 bytes of the scored text, per stream position: what bits per byte divides by.

A token id's bytes (``Tokenizer.token_nbytes``) are the bytes of its piece. Summed over a document's
tokens they can differ from the document's own UTF-8 bytes: a SentencePiece vocabulary with a dummy
prefix (Llama-2, Mistral, TinyLlama) puts a "▁" before every document, so "hello world" (11 bytes)
becomes "▁hello▁world", whose pieces spell 12. Counted per id, bits per byte would be understated
by one byte per document (about 0.03 % on KJV chapters, up to 1 % on short documents).

:func:`position_nbytes` moves each document's difference onto its first token, so that the bytes of
every document, and of every range of whole documents, are exactly those of its text; a range that
starts inside a document counts its pieces (there, "▁" is a real space). For byte-level
vocabularies (bytes, GPT-2 BPE) the difference is 0 and nothing changes.
"""
from __future__ import annotations

import numpy as np


def position_nbytes(tokens: np.ndarray, doc_offsets: np.ndarray, doc_bytes: np.ndarray,
                    token_nbytes: np.ndarray) -> np.ndarray:
    """Bytes of each position of a stream ``EOD d1 EOD d2 ...`` (int64, one per token): the piece's
    bytes, except that document i's first token (at ``doc_offsets[i]``) takes
    ``doc_bytes[i]`` − (the bytes of all of document i's pieces), so that the positions of document
    i sum to ``doc_bytes[i]``, the UTF-8 bytes of its text. EOD tokens carry 0 bytes."""
    nb = np.asarray(token_nbytes, dtype=np.int64)[np.asarray(tokens, dtype=np.int64)]
    starts = np.asarray(doc_offsets, dtype=np.int64)[:-1]
    if len(starts):
        pieces = np.add.reduceat(nb, starts)  # document i with its closing EOD: [offsets[i], offsets[i+1])
        nb[starts] -= pieces - np.asarray(doc_bytes, dtype=np.int64)
    return nb


def byte_cumsum(corpus, stream: str, token_nbytes: np.ndarray) -> np.ndarray:
    """``c`` of length L + 1 for the ``train`` or ``heldout`` stream of ``corpus`` (L tokens), with
    ``c[j]`` the bytes of positions before j (:func:`position_nbytes`): the targets
    ``[start, end)`` hold ``c[end] - c[start]`` bytes of text."""
    held = stream == "heldout"
    nb = position_nbytes(corpus.heldout_tokens if held else corpus.train_tokens,
                         corpus.heldout_doc_offsets if held else corpus.train_doc_offsets,
                         corpus.heldout_doc_bytes if held else corpus.train_doc_bytes, token_nbytes)
    return np.concatenate([[0], np.cumsum(nb)])
