"""Tokenizers: text -> token ids, with one end-of-document (EOD) token and the bytes each id stands for.

Three kinds, all behind :func:`get_tokenizer`:

* ``bytes``: UTF-8 bytes plus one EOD token, V = 257. Needs no files.
* ``gpt2``: the GPT-2 byte-level BPE (V = 50,257, EOD = ``<|endoftext|>`` = 50256), from the files
  shipped in the package (:data:`BUNDLED_GPT2_DIR`, see its NOTICE.md: no download), or from a folder
  (``--tokenizer DIR``). Loaded through ``transformers`` (vocab.json + merges.txt) or ``tiktoken``
  (OpenAI's encoder.json + vocab.bpe, or ``tiktoken:gpt2``).
* a GGUF checkpoint (a ``.gguf`` path or a packaged name such as ``smollm2-135m-instruct``): the
  tokenizer stored in the file, read by transformers' GGUF support.
* any other name: a Hugging Face tokenizer id or directory.

``token_nbytes[i]`` is the number of UTF-8 bytes that token ``i`` stands for (EOD and other special
tokens: 0), so that bits per byte = total bits / ``token_nbytes[targets].sum()`` compares across
tokenizers. It is exact for byte-level vocabularies (bytes, GPT-2, tiktoken); for SentencePiece-style
vocabularies it counts the piece's text with "▁" as one space, and the run counts the real bytes of
each document (:mod:`llm_bounds.data.text_bytes`: a dummy prefix "▁" is not a byte of the text).
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from llm_bounds.core.checkpoints import is_gguf_name, locate_gguf
from llm_bounds.core.hub import cached_snapshot, downloads_allowed, quiet_transformers
from llm_bounds.core.errors import BoundInputError, require
from llm_bounds.core.model_folder import SAFE_LOAD, check_folder, remote_code_refusal

GPT2_VOCAB_SIZE = 50257
BUNDLED_GPT2_DIR = Path(__file__).resolve().parent / "gpt2_bpe"   # vocab.json + merges.txt, MIT (NOTICE.md)
GPT2_FILES_HINT = ("pass --tokenizer DIR, a folder with the GPT-2 vocab.json and merges.txt, or reinstall "
                   "llm-bounds, which ships them")


class Tokenizer:
    """Common interface: ``name``, ``vocab_size`` (V), ``eod_id``, ``bos_id`` (a beginning-of-sequence
    token distinct from EOD, or None), ``token_nbytes`` [V], ``fingerprint``."""

    name: str
    vocab_size: int
    eod_id: int
    bos_id: int | None = None
    token_nbytes: np.ndarray
    fingerprint: str

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no EOD appended)."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (no EOD appended)."""
        return [a.tolist() for a in self.encode_arrays(texts)]

    def encode_arrays(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each text as int64 arrays (no EOD appended); the fast path for corpora."""
        raise NotImplementedError

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (EOD and special tokens dropped)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size}, eod_id={self.eod_id})"


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes 0..255 as ids 0..255, EOD = 256, V = 257."""

    def __init__(self) -> None:
        self.name = "bytes"
        self.vocab_size = 257
        self.eod_id = 256
        self.token_nbytes = np.ones(257, dtype=np.int64)
        self.token_nbytes[256] = 0
        self.fingerprint = "bytes-v1"

    def encode_arrays(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.int64) for t in texts]

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")


def byte_to_unicode_map() -> dict[int, str]:
    """The GPT-2 byte-level alphabet: each byte 0..255 as one printable unicode character.

    Printable Latin-1 bytes stand for themselves; the 68 others (controls, space, ...) are mapped in
    order onto code points 256, 257, ... That is how byte-level BPE vocabularies spell their tokens.
    """
    printable = set(range(ord("!"), ord("~") + 1)) | set(range(ord("¡"), ord("¬") + 1)) | set(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


class HFTokenizer(Tokenizer):
    """A ``transformers`` fast tokenizer behind the common interface."""

    def __init__(self, hf_tokenizer, name: str) -> None:
        self._tok = hf_tokenizer
        self._tok.model_max_length = sys.maxsize  # corpora are long; silence the length warning
        self.name = name
        self.vocab_size = len(hf_tokenizer)
        eod = hf_tokenizer.eos_token_id
        require(eod is not None, f"tokenizer {name!r} has no end-of-sequence token to mark document ends; "
                                 "choose a tokenizer with an eos_token")
        self.eod_id = int(eod)
        bos = hf_tokenizer.bos_token_id
        self.bos_id = int(bos) if bos is not None and int(bos) != self.eod_id else None
        spec = json.loads(hf_tokenizer.backend_tokenizer.to_str())
        canonical = json.dumps({"class": type(hf_tokenizer).__name__, "tokenizer": spec}, sort_keys=True)
        self.fingerprint = "hf-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        self.token_nbytes = self._token_nbytes(spec)

    def _token_nbytes(self, spec: dict) -> np.ndarray:
        """UTF-8 bytes per id: exact via the byte alphabet for byte-level BPE, piece length otherwise."""
        tokens = self._tok.convert_ids_to_tokens(list(range(self.vocab_size)))
        special = set(self._tok.all_special_ids) | {self.eod_id}
        byte_level = (spec.get("decoder") or {}).get("type") == "ByteLevel"
        char_to_byte = {c: b for b, c in byte_to_unicode_map().items()}
        hex_piece = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")
        nbytes = np.zeros(self.vocab_size, dtype=np.int64)
        for i, tok in enumerate(tokens):
            if i in special or tok is None:
                continue
            if byte_level and all(c in char_to_byte for c in tok):
                nbytes[i] = len(tok)
            elif hex_piece.match(tok):
                nbytes[i] = 1
            else:
                nbytes[i] = len(tok.replace("\u2581", " ").encode("utf-8"))
        return nbytes

    def encode_arrays(self, texts: Sequence[str]) -> list[np.ndarray]:
        out = []
        for start in range(0, len(texts), 256):  # bounded memory for large corpora
            # split_special_tokens: a literal "<|endoftext|>" in a document is text, not a boundary
            ids = self._tok(list(texts[start:start + 256]), add_special_tokens=False,
                            split_special_tokens=True)["input_ids"]
            out.extend(np.asarray(x, dtype=np.int64) for x in ids)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)


class TiktokenGPT2(Tokenizer):
    """GPT-2 BPE through ``tiktoken``, built from local files (no download)."""

    def __init__(self, vocab_bpe: Path, encoder_json: Path) -> None:
        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks

        ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=str(vocab_bpe), encoder_json_file=str(encoder_json))
        self._enc = tiktoken.Encoding(
            name="gpt2-local",
            pat_str=r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
            mergeable_ranks=ranks,
            special_tokens={"<|endoftext|>": len(ranks)},
        )
        self.name = "gpt2"
        self.vocab_size = self._enc.n_vocab
        self.eod_id = self._enc.eot_token
        self.token_nbytes = np.array([len(self._enc.decode_single_token_bytes(i)) for i in range(self.vocab_size)],
                                     dtype=np.int64)
        self.token_nbytes[self.eod_id] = 0
        h = hashlib.sha256()
        for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
            h.update(len(token).to_bytes(2, "little") + token)
        self.fingerprint = "tiktoken-gpt2-" + h.hexdigest()

    def encode_arrays(self, texts: Sequence[str]) -> list[np.ndarray]:
        ids = self._enc.encode_ordinary_batch(list(texts))
        return [np.asarray(x, dtype=np.int64) for x in ids]

    def decode(self, ids: Sequence[int]) -> str:
        return self._enc.decode([int(i) for i in ids if int(i) != self.eod_id])


def _from_hf(name_or_dir: str, *, local_only: bool, display: str, gpt2: bool = False) -> HFTokenizer:
    from transformers import AutoTokenizer, GPT2TokenizerFast

    # A bare folder of vocab.json + merges.txt has no config naming its class, so GPT-2 is named here.
    cls = GPT2TokenizerFast if gpt2 else AutoTokenizer
    tok = cls.from_pretrained(name_or_dir, local_files_only=local_only, **SAFE_LOAD)
    require(getattr(tok, "is_fast", False), f"tokenizer {display!r} loaded without a fast (Rust) backend; "
                                            "supply tokenizer.json or vocab/merges files")
    # transformers can return an empty tokenizer instead of failing when the files are missing.
    if len(tok) <= len(set(tok.all_special_ids)) + 1 or (gpt2 and len(tok) != GPT2_VOCAB_SIZE):
        raise OSError(f"{name_or_dir!r} gave a tokenizer with {len(tok)} tokens: the vocabulary files are missing")
    return HFTokenizer(tok, display)


def _gpt2_from_dir(d: Path, backend: str) -> Tokenizer:
    require(d.is_dir(), f"tokenizer folder {str(d)!r} does not exist; {GPT2_FILES_HINT}")
    hf_files = (d / "vocab.json").is_file() and (d / "merges.txt").is_file()
    openai_files = (d / "encoder.json").is_file() and (d / "vocab.bpe").is_file()
    if backend == "tiktoken":
        if openai_files:
            return TiktokenGPT2(d / "vocab.bpe", d / "encoder.json")
        if hf_files:  # the same files under Hugging Face names
            return TiktokenGPT2(d / "merges.txt", d / "vocab.json")
    elif hf_files or (d / "tokenizer.json").is_file():
        return _from_hf(str(d), local_only=True, display="gpt2", gpt2=True)
    elif openai_files:
        return TiktokenGPT2(d / "vocab.bpe", d / "encoder.json")
    raise BoundInputError(f"{str(d)!r} has no GPT-2 tokenizer files (vocab.json + merges.txt); {GPT2_FILES_HINT}")


def get_tokenizer(name: str = "bytes", tokenizer_dir: str | Path | None = None, *,
                  allow_download: bool | None = None) -> Tokenizer:
    """The tokenizer called ``name``: ``bytes``, ``gpt2`` (``tiktoken:gpt2`` for the tiktoken backend),
    or a Hugging Face tokenizer id / directory.

    ``gpt2`` reads ``tokenizer_dir`` if given, else the files shipped in the package (never the
    network). Other names may be downloaded when ``allow_download`` (default: unless the hub is
    offline or unreachable). When none works it raises :class:`BoundInputError` saying how to
    supply the files.
    """
    require(isinstance(name, str) and name.strip() != "", f"tokenizer name must be a non-empty string, got {name!r}; "
                                                          "use 'bytes', 'gpt2' or a Hugging Face tokenizer id")
    if name == "bytes":
        return ByteTokenizer()
    if name in ("gpt2", "tiktoken:gpt2"):
        backend = "tiktoken" if name.startswith("tiktoken") else "hf"
        return _gpt2_from_dir(Path(tokenizer_dir) if tokenizer_dir is not None else BUNDLED_GPT2_DIR, backend)
    if tokenizer_dir is None and is_gguf_name(name):
        from transformers import AutoTokenizer

        loc = locate_gguf(name)
        check_folder(loc.folder, f"tokenizer {name!r}")
        with quiet_transformers():
            return HFTokenizer(AutoTokenizer.from_pretrained(loc.folder, gguf_file=loc.filename, **SAFE_LOAD), name)
    source = str(tokenizer_dir) if tokenizer_dir is not None else name
    local_only = Path(source).is_dir() or not downloads_allowed(allow_download)
    # the folder transformers will read (a directory, or the hub cache's copy): no custom code
    check_folder(source if Path(source).is_dir() else cached_snapshot(source), f"tokenizer {name!r}")
    try:
        return _from_hf(source, local_only=local_only, display=name)
    except (OSError, ValueError) as e:
        if isinstance(e, BoundInputError):
            raise
        refusal = remote_code_refusal(e, f"tokenizer {name!r}")
        if refusal is not None:
            raise refusal from None
        raise BoundInputError(f"tokenizer {name!r} is not available{' offline' if local_only else ''} "
                              f"({type(e).__name__}); use 'bytes' or 'gpt2', or pass --tokenizer DIR with its "
                              "tokenizer files") from e
