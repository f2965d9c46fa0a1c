"""Tokenizers: ids, EOD, bytes per token, and clear errors when files are missing."""
import numpy as np
import pytest

from llm_bounds.core.errors import BoundInputError
from llm_bounds.data.tokenizers import ByteTokenizer, byte_to_unicode_map, get_tokenizer

TEXT = "Hello world, the quick brown fox.\n  Ünïcödé 日本語 🙂 <|endoftext|> end"


def test_bytes_tokenizer_roundtrip_and_counts():
    tok = get_tokenizer("bytes")
    assert isinstance(tok, ByteTokenizer)
    assert (tok.vocab_size, tok.eod_id, tok.fingerprint) == (257, 256, "bytes-v1")
    ids = tok.encode(TEXT)
    assert ids == list(TEXT.encode("utf-8"))
    assert tok.decode(ids + [tok.eod_id]) == TEXT
    assert tok.token_nbytes[ids].sum() == len(TEXT.encode("utf-8"))
    assert tok.token_nbytes[tok.eod_id] == 0
    assert [a.tolist() for a in tok.encode_arrays(["ab", ""])] == [[97, 98], []]


def test_byte_alphabet_is_a_bijection_onto_printable_characters():
    m = byte_to_unicode_map()
    assert len(set(m.values())) == 256
    assert m[ord("A")] == "A" and m[ord(" ")] == "\u0120" and m[ord("\n")] == "\u010a"  # GPT-2's 'Ġ' and 'Ċ'


def test_gpt2_known_ids_and_bytes(gpt2_tokenizer_dir):
    tok = get_tokenizer("gpt2", gpt2_tokenizer_dir)
    assert (tok.vocab_size, tok.eod_id) == (50257, 50256)
    # reference ids from ../shared/data/README.md
    assert tok.encode("Hello world, the quick brown fox.") == [15496, 995, 11, 262, 2068, 7586, 21831, 13]
    ids = tok.encode(TEXT)
    assert tok.eod_id not in ids, "a literal <|endoftext|> in a document must stay text"
    assert tok.token_nbytes[ids].sum() == len(TEXT.encode("utf-8"))
    assert tok.token_nbytes[tok.eod_id] == 0
    assert tok.decode(ids) == TEXT


def test_tiktoken_backend_matches_transformers(gpt2_tokenizer_dir):
    pytest.importorskip("tiktoken", reason="tiktoken is the optional `gpt2` extra: pip install -e '.[gpt2]'")
    hf = get_tokenizer("gpt2", gpt2_tokenizer_dir)
    tt = get_tokenizer("tiktoken:gpt2", gpt2_tokenizer_dir)
    assert tt.vocab_size == hf.vocab_size and tt.eod_id == hf.eod_id
    assert tt.encode_batch([TEXT, "a\n\nb  c"]) == hf.encode_batch([TEXT, "a\n\nb  c"])
    np.testing.assert_array_equal(tt.token_nbytes, hf.token_nbytes)


def test_any_hf_tokenizer_by_directory(gpt2_tokenizer_dir, tmp_path):
    from transformers import GPT2TokenizerFast

    GPT2TokenizerFast.from_pretrained(str(gpt2_tokenizer_dir)).save_pretrained(str(tmp_path))
    generic = get_tokenizer(str(tmp_path))
    gpt2 = get_tokenizer("gpt2", gpt2_tokenizer_dir)
    assert generic.vocab_size == 50257 and generic.encode(TEXT) == gpt2.encode(TEXT)
    np.testing.assert_array_equal(generic.token_nbytes, gpt2.token_nbytes)


BUNDLED_SHA256 = {"vocab.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
                  "merges.txt": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"}


def test_gpt2_is_shipped_and_needs_no_download(gpt2_tokenizer_dir, monkeypatch):
    import hashlib

    from llm_bounds.data.tokenizers import BUNDLED_GPT2_DIR

    for name, digest in BUNDLED_SHA256.items():  # the files the hub serves for gpt2, unchanged
        assert hashlib.sha256((BUNDLED_GPT2_DIR / name).read_bytes()).hexdigest() == digest
    assert (BUNDLED_GPT2_DIR / "NOTICE.md").is_file() and (BUNDLED_GPT2_DIR / "LICENSE").is_file()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    shipped = get_tokenizer("gpt2", allow_download=False)
    reference = get_tokenizer("gpt2", gpt2_tokenizer_dir)
    assert shipped.fingerprint == reference.fingerprint
    assert shipped.encode(TEXT) == reference.encode(TEXT)
    np.testing.assert_array_equal(shipped.token_nbytes, reference.token_nbytes)


def test_missing_tokenizer_folder_and_unknown_id(tmp_path):
    with pytest.raises(BoundInputError, match="--tokenizer DIR"):
        get_tokenizer("gpt2", tmp_path / "nope")
    with pytest.raises(BoundInputError, match="vocab.json"):
        get_tokenizer("gpt2", tmp_path)  # exists, but holds no files
    with pytest.raises(BoundInputError, match="not available"):
        get_tokenizer("no-such-org/no-such-tokenizer", allow_download=False)
