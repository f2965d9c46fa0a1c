"""Datasets -> documents -> token streams; held-out split; token cache; clear errors."""
import json

import numpy as np
import pytest

from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.context import RunContext
from llm_bounds.data.corpus import build_corpus, heldout_indices, load_documents, token_dtype
from llm_bounds.core.errors import BoundInputError
from llm_bounds.data.tokenizers import ByteTokenizer, get_tokenizer
from llm_bounds_cli.parsing import unescape


@pytest.fixture(scope="module")
def kjv():
    return load_documents("kjv")


def test_kjv_is_one_document_per_chapter(kjv):
    assert len(kjv) == 1189  # chapters in the 66 books of the Protestant canon
    assert kjv[0].startswith("In the beginning God created the heaven and the earth.")
    assert kjv[0].rstrip().endswith("the sixth day.")                 # Genesis 1:31
    assert kjv[1].startswith("Thus the heavens and the earth were finished")  # Genesis 2:1
    assert kjv[-1].rstrip().endswith("Amen.")                         # Revelation 22:21
    assert min(len(d) for d in kjv) > 0


def test_local_text_sources(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("one\n===\ntwo\n===\n \n===\nthree", encoding="utf-8")
    assert load_documents(str(f)) == [f.read_text()]
    assert [d.strip() for d in load_documents(str(f), separator="===")] == ["one", "two", "three"]
    d = tmp_path / "dir"
    (d / "sub").mkdir(parents=True)
    (d / "b.txt").write_text("bee")
    (d / "a.txt").write_text("ay")
    (d / "sub" / "c.txt").write_text("sea")
    (d / ".hidden").write_text("skip me")
    assert load_documents(str(d)) == ["ay", "bee", "sea"]
    j = tmp_path / "x.jsonl"
    j.write_text("\n".join(json.dumps({"body": s, "id": i}) for i, s in enumerate(["p", "q", "r"])) + "\n")
    assert load_documents(str(j), text_field="body") == ["p", "q", "r"]
    assert load_documents(str(j), text_field="body", max_documents=2) == ["p", "q"]
    with pytest.raises(BoundInputError, match="\"text\" field"):
        load_documents(str(j))


def test_hf_path_on_local_datasets(tmp_path):
    import datasets

    rows = [{"text": f"document number {i}", "n": i} for i in range(5)]
    d = tmp_path / "jsondir"
    d.mkdir()
    (d / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    want = [r["text"] for r in rows]
    assert load_documents(f"hf:{d}") == want
    assert load_documents(f"hf:{d}", streaming=False, max_documents=3) == want[:3]
    assert load_documents(f"hf:{d / 'train.jsonl'}") == want
    saved = tmp_path / "saved"
    datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows)}).save_to_disk(str(saved))
    assert load_documents(f"hf:{saved}::validation") == want
    with pytest.raises(BoundInputError, match="splits"):
        load_documents(f"hf:{saved}")
    with pytest.raises(BoundInputError, match="named \"text\""):
        load_documents(f"hf:{d}", text_field="body")


def test_bad_sources_name_the_fix(tmp_path):
    with pytest.raises(BoundInputError, match="unknown dataset 'no_such_corpus'.*kjv"):
        load_documents("no_such_corpus")
    with pytest.raises(BoundInputError, match="does not exist"):
        load_documents(str(tmp_path / "missing.txt"))
    with pytest.raises(BoundInputError, match="does not exist"):
        load_documents(f"hf:{tmp_path / 'missing_dir'}")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    with pytest.raises(BoundInputError, match="no non-empty documents"):
        load_documents(str(empty))
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(BoundInputError, match="no files"):
        load_documents(str(tmp_path / "emptydir"))
    with pytest.raises(BoundInputError, match="empty"):
        build_corpus([], ByteTokenizer(), heldout_fraction=0.0, seed=0, cache_dir=False)


def test_stream_layout_and_heldout_split():
    docs = [f"doc {i}: " + "ü" * i for i in range(20)]
    tok = ByteTokenizer()
    c = build_corpus(docs, tok, heldout_fraction=0.2, seed=3, cache_dir=False)
    held = set(c.heldout_document_ids.tolist())
    assert len(held) == 4 and c.num_heldout_documents == 4 and c.num_train_documents == 16
    for tokens, offsets, subset in [(c.train_tokens, c.train_doc_offsets, [d for i, d in enumerate(docs) if i not in held]),
                                    (c.heldout_tokens, c.heldout_doc_offsets, [d for i, d in enumerate(docs) if i in held])]:
        assert tokens.dtype == np.uint16 and tokens[0] == tok.eod_id and offsets[-1] == len(tokens)
        for i, doc in enumerate(subset):
            a, b = offsets[i], offsets[i + 1]
            assert tokens[a - 1] == tok.eod_id and tokens[b - 1] == tok.eod_id
            assert tok.decode(tokens[a:b - 1]) == doc
    assert c.train_bytes + c.heldout_bytes == sum(len(d.encode()) for d in docs)
    again = build_corpus(docs, tok, heldout_fraction=0.2, seed=3, cache_dir=False)
    np.testing.assert_array_equal(again.heldout_document_ids, c.heldout_document_ids)
    others = {tuple(heldout_indices(20, 0.2, s)) for s in range(10)}
    assert len(others) > 1, "different seeds should give different held-out sets"
    assert len(heldout_indices(20, 0.0, 0)) == 0
    with pytest.raises(BoundInputError, match="heldout"):
        heldout_indices(20, 1.0, 0)


def test_token_dtype():
    assert token_dtype(257) == np.uint16 and token_dtype(65535) == np.uint16 and token_dtype(65536) == np.uint32


def test_cache_roundtrip_and_key(tmp_path):
    docs = ["alpha beta", "gamma", "delta epsilon zeta", "eta"]
    tok = ByteTokenizer()
    first = build_corpus(docs, tok, heldout_fraction=0.25, seed=1, cache_dir=tmp_path)
    assert isinstance(first.train_tokens, np.ndarray) and not isinstance(first.train_tokens, np.memmap)
    second = build_corpus(docs, tok, heldout_fraction=0.25, seed=1, cache_dir=tmp_path)
    assert isinstance(second.train_tokens, np.memmap)
    np.testing.assert_array_equal(second.train_tokens, first.train_tokens)
    np.testing.assert_array_equal(second.heldout_tokens, first.heldout_tokens)
    np.testing.assert_array_equal(second.train_doc_offsets, first.train_doc_offsets)
    assert second.summary() == first.summary()
    assert not list(tmp_path.glob("*.tmp"))
    build_corpus(docs, tok, heldout_fraction=0.25, seed=2, cache_dir=tmp_path)
    build_corpus(docs + ["more"], tok, heldout_fraction=0.25, seed=1, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 3, "split and content must be part of the cache key"


def test_gpt2_corpus_is_cached_under_its_own_key(gpt2_tokenizer_dir, tmp_path):
    docs = ["In the beginning God created the heaven and the earth.", "And God said, Let there be light."]
    gpt2 = get_tokenizer("gpt2", gpt2_tokenizer_dir)
    c = build_corpus(docs, gpt2, heldout_fraction=0.0, seed=0, cache_dir=tmp_path)
    b = build_corpus(docs, ByteTokenizer(), heldout_fraction=0.0, seed=0, cache_dir=tmp_path)
    assert c.tokenizer_fingerprint != b.tokenizer_fingerprint and len(list(tmp_path.glob("*.json"))) == 2
    assert c.train_tokens.dtype == np.uint16 and c.num_train_tokens == len(gpt2.encode(docs[0])) + len(gpt2.encode(docs[1])) + 3
    assert gpt2.token_nbytes[np.asarray(c.train_tokens)].sum() == c.train_bytes


def test_a_single_text_file_is_split_into_documents_by_the_separator(tmp_path):
    text = tmp_path / "plays.txt"
    text.write_text("\n\n".join(f"Speaker {i}:\nline {i} of the play." for i in range(20)))
    cfg = RunConfig(model="nplm-k2-e4-h8", dataset=str(text), subspace_params="all", intrinsic_dim=50,
                    window=16, stride=8, n_samples=4, n_documents=2, heldout_samples=2)
    with pytest.raises(BoundInputError, match="split a text file with --separator"):
        RunContext.build(cfg)  # one document: no held-out split
    cfg.separator = unescape(r"\n\n")
    ctx = RunContext.build(cfg)
    assert ctx.corpus.num_train_documents + ctx.corpus.num_heldout_documents == 20
    assert unescape(r"a\tb\\n") == "a\tb\\n"
    cfg.separator = ""
    with pytest.raises(BoundInputError, match="--separator must be a non-empty string"):
        cfg.validate()
