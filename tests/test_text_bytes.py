"""Bits per byte divides by the UTF-8 bytes of the scored text (#29): a SentencePiece vocabulary with a
dummy prefix (Llama-2, Mistral, TinyLlama) spells "hello world" (11 bytes) as "▁hello▁world" (12), and
counting bytes per token id charged every document one byte that is not in its text. The tokenizer here
is built locally (no download) with the `tokenizers` package's SentencePiece BPE and its Metaspace
pre-tokenizer, which prepends "▁" as SentencePiece's add_dummy_prefix does."""
import numpy as np
import pytest

from llm_bounds.certificate.config import preset_config
from llm_bounds.certificate.context import RunContext
from llm_bounds.data.corpus import build_corpus
from llm_bounds.data.text_bytes import position_nbytes
from llm_bounds.data.tokenizers import ByteTokenizer, HFTokenizer, get_tokenizer

WORDS = "in the beginning god created the heaven and the earth and darkness was upon the face of the deep".split()


def documents(n=40, seed=0):
    rng = np.random.default_rng(seed)
    docs = ["hello world", " a document that starts with a space", "ünïcödé words and the earth"]
    return docs + [" ".join(rng.choice(WORDS, int(rng.integers(3, 30)))) for _ in range(n)]


@pytest.fixture(scope="module")
def dummy_prefix_dir(tmp_path_factory):
    """A folder holding a tiny SentencePiece-style tokenizer with a dummy prefix."""
    from tokenizers import SentencePieceBPETokenizer
    from transformers import PreTrainedTokenizerFast

    sp = SentencePieceBPETokenizer(add_prefix_space=True)
    sp.train_from_iterator(documents() * 5, vocab_size=150, min_frequency=1,
                           special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    hf = PreTrainedTokenizerFast(tokenizer_object=sp._tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    folder = tmp_path_factory.mktemp("sp")
    hf.save_pretrained(str(folder))
    return folder


def per_document(nb, offsets):
    return np.add.reduceat(nb, offsets[:-1])


def test_a_dummy_prefix_is_not_counted_as_a_byte_of_the_text(dummy_prefix_dir):
    tok = get_tokenizer(str(dummy_prefix_dir), str(dummy_prefix_dir))
    assert isinstance(tok, HFTokenizer)
    ids = tok.encode("hello world")
    assert int(tok.token_nbytes[ids].sum()) == 12  # the pieces "▁hello" "▁world": one byte more than the text
    docs = documents()
    corpus = build_corpus(docs, tok, heldout_fraction=0.1, seed=0, cache_dir=False)
    train = [d for i, d in enumerate(docs) if i not in set(corpus.heldout_document_ids.tolist())]
    real = np.array([len(d.encode("utf-8")) for d in train])
    pieces = per_document(tok.token_nbytes[np.asarray(corpus.train_tokens, dtype=np.int64)], corpus.train_doc_offsets)
    exact = per_document(position_nbytes(corpus.train_tokens, corpus.train_doc_offsets, corpus.train_doc_bytes,
                                         tok.token_nbytes), corpus.train_doc_offsets)
    assert np.array_equal(exact, real)
    starts_with_space = np.array([d[0].isspace() for d in train])
    assert np.array_equal(pieces - real, np.where(starts_with_space, 0, 1))  # the old count: +1 per document


@pytest.mark.parametrize("name", ["bytes", "gpt2"])
def test_byte_level_vocabularies_count_as_before(name):
    tok = ByteTokenizer() if name == "bytes" else get_tokenizer("gpt2")
    docs = documents()
    corpus = build_corpus(docs, tok, heldout_fraction=0.1, seed=0, cache_dir=False)
    for tokens, offsets, doc_bytes in ((corpus.train_tokens, corpus.train_doc_offsets, corpus.train_doc_bytes),
                                       (corpus.heldout_tokens, corpus.heldout_doc_offsets, corpus.heldout_doc_bytes)):
        per_id = tok.token_nbytes[np.asarray(tokens, dtype=np.int64)]
        assert np.array_equal(position_nbytes(tokens, offsets, doc_bytes, tok.token_nbytes), per_id)
    assert corpus.train_bytes == int(corpus.train_doc_bytes.sum())


def test_the_run_scores_the_bytes_of_the_text(dummy_prefix_dir, tmp_path):
    docs = documents(60)
    data = tmp_path / "docs.jsonl"
    import json

    data.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    cfg = preset_config("smoke", dataset=str(data), tokenizer=str(dummy_prefix_dir),
                        tokenizer_dir=str(dummy_prefix_dir), window=16, stride=8, intrinsic_dim=50, n_samples=16,
                        n_documents=12, heldout_samples=4)
    ctx = RunContext.build(cfg)
    held = set(ctx.corpus.heldout_document_ids.tolist())
    train = [d for i, d in enumerate(docs) if i not in held]
    units = ctx.units["document"]
    assert np.array_equal(ctx.unit_bytes("document", np.arange(units.num_units)),
                          [len(d.encode("utf-8")) for d in train])
    res = ctx.evaluate("document", progress=False)
    assert np.array_equal(res.num_bytes, [len(train[i].encode("utf-8")) for i in ctx.sample_ids["document"]])
    token_units = ctx.units["token"]
    nb = ctx.tokenizer.token_nbytes[np.asarray(ctx.corpus.train_tokens, dtype=np.int64)]
    old = int(nb[int(token_units.score_start[0]):int(token_units.score_end[-1])].sum())
    first_tokens = ctx.corpus.train_doc_offsets[:-1]
    inside = (first_tokens >= token_units.score_start[0]) & (first_tokens < token_units.score_end[-1])
    prefixed = sum(1 for d, i in zip(train, inside) if i and not d[0].isspace())
    assert ctx.scored_bytes() == old - prefixed > 0  # one byte less per scored document with a dummy prefix
