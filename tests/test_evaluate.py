"""Batched one-pass evaluation against a naive per-token loop; determinism; clear errors."""
import math

import numpy as np
import pytest
import torch

from llm_bounds.data.corpus import build_corpus, load_documents
from llm_bounds.core.errors import BoundInputError
from llm_bounds.evaluation.evaluate import DEFAULT_KS, evaluate_units, sample_units
from llm_bounds.evaluation.token_metrics import target_rank
from llm_bounds.data.scoring import ScoringGrid, make_units
from llm_bounds.data.tokenizers import ByteTokenizer, get_tokenizer
from llm_bounds.bound.concentration import betting_lambda_grid

ALPHAS = [0.001, 0.05, 0.5]
T, S = 32, 8
TIE = 1e-5
LAMBDAS = betting_lambda_grid()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: the machine is shared, and oversubscribed thread pools stall."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_gpt2(vocab_size: int, eod: int, seed: int = 0, n_embd: int = 32):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=T, n_embd=n_embd, n_layer=2, n_head=2,
                     bos_token_id=eod, eos_token_id=eod)
    return GPT2LMHeadModel(cfg).eval()


def context_of(granularity, units, u, t):
    """The window start whose forward pass scores target t of unit u, from the rule in words:
    token level: the first window (start 0) for units inside it, else the window ending at the unit;
    document level: the first window of the document if it reaches t, else the window whose last S
    targets hold t."""
    if granularity == "token":
        return 0 if u < T // S else (u + 1) * S - T
    c = units.context_start[u]
    r = t - c
    return c if r <= T else c + math.ceil((r - T) / S) * S


def naive(model, tokens, units, unit_ids, token_nbytes, V):
    """Per-token loop: forward each target's own context alone, fp64 maths, ranks by sorting."""
    rows = []
    for u in unit_ids:
        sm, un, ex, sq, nb = np.zeros(len(ALPHAS)), 0.0, np.zeros(len(ALPHAS)), np.zeros(len(ALPHAS)), 0
        lw = np.zeros((len(ALPHAS), len(LAMBDAS)))
        err, err_hi = np.zeros(len(DEFAULT_KS)), np.zeros(len(DEFAULT_KS))
        targets = range(units.score_start[u], units.score_end[u])
        for t in targets:
            c = context_of(units.granularity, units, u, t)
            x = torch.tensor(np.asarray(tokens[c:t], dtype=np.int64))[None]
            with torch.no_grad():
                z = model(x).logits[0, -1].double().numpy()
            y = int(tokens[t])
            logp = z - z.max() - np.log(np.exp(z - z.max()).sum())
            p = np.exp(logp)
            un += -logp[y] / np.log(2)
            # ids with a larger logit, via sorting; logits within TIE of the target's count as ties either way,
            # since a random tiny model has near-ties that float rounding may order differently
            zs = np.sort(z)
            rank_lo = V - np.searchsorted(zs, z[y] + TIE, side="right")
            rank_hi = V - np.searchsorted(zs, z[y] - TIE, side="right")
            err += np.array([rank_lo >= k for k in DEFAULT_KS], dtype=float)
            err_hi += np.array([rank_hi >= k for k in DEFAULT_KS], dtype=float)
            for i, a in enumerate(ALPHAS):
                q = (1 - a) * p + a / V
                loss = -np.log2(q[y])
                h = -(q * np.log2(q)).sum()
                sm[i] += loss
                ex[i] += h
                sq[i] += (loss - h) ** 2
                width = np.log2(V / a) - np.log2(V / ((1 - a) * V + a))  # hi − lo, from the formulas
                lw[i] += np.log1p(LAMBDAS * (h - loss) / width)
            nb += int(token_nbytes[y])
        n = len(targets)
        rows.append(dict(sm=sm / n, un=un / n, err=err / n, err_hi=err_hi / n, ex=ex, sq=sq, nb=nb, n=n, sm_sum=sm, lw=lw))
    return rows


def check_against_naive(res, ref):
    assert res.smoothed_bits.shape == (len(ALPHAS), len(ref)) and res.topk_error.shape == (len(DEFAULT_KS), len(ref))
    np.testing.assert_allclose(res.smoothed_bits, np.stack([r["sm"] for r in ref], 1), atol=1e-5, rtol=0)
    np.testing.assert_allclose(res.smoothed_bits_sum, np.stack([r["sm_sum"] for r in ref], 1), atol=1e-5 * S, rtol=1e-6)
    np.testing.assert_allclose(res.unsmoothed_bits, [r["un"] for r in ref], atol=1e-5, rtol=0)
    err_lo, err_hi = np.stack([r["err"] for r in ref], 1), np.stack([r["err_hi"] for r in ref], 1)
    assert np.all(res.topk_error >= err_lo - 1e-12) and np.all(res.topk_error <= err_hi + 1e-12)
    assert (err_hi - err_lo).mean() < 0.01, "near-ties should be rare"
    np.testing.assert_allclose(res.expected_smoothed_bits_sum, np.stack([r["ex"] for r in ref], 1), atol=1e-5, rtol=1e-6)
    np.testing.assert_allclose(res.smoothed_sq_dev_sum, np.stack([r["sq"] for r in ref], 1), atol=1e-4, rtol=1e-5)
    np.testing.assert_allclose(res.log_wealth_sum, np.stack([r["lw"] for r in ref], -1), atol=1e-5, rtol=1e-5)
    np.testing.assert_array_equal(res.num_bytes, [r["nb"] for r in ref])
    np.testing.assert_array_equal(res.num_tokens, [r["n"] for r in ref])
    total_bits = sum(r["un"] * r["n"] for r in ref)
    assert res.bits_per_byte == pytest.approx(total_bits / sum(r["nb"] for r in ref), abs=1e-5)


@pytest.fixture(scope="module")
def byte_corpus():
    docs = [d[:40 + 23 * i] for i, d in enumerate(load_documents("kjv", max_documents=8))]  # 40..201 bytes
    docs[3] = "Ünïcödé: 日本語 🙂 " + docs[3]
    return build_corpus(docs, ByteTokenizer(), heldout_fraction=0.0, seed=0, cache_dir=False)


@pytest.mark.parametrize("granularity", ["token", "document"])
def test_bytes_batched_equals_naive_loop(byte_corpus, granularity):
    tok = ByteTokenizer()
    units = make_units(granularity, ScoringGrid(T, S), byte_corpus.num_train_tokens, byte_corpus.train_doc_offsets)
    ids = sample_units(units.num_units, 7, seed=1)
    if granularity == "token":
        ids[:3] = [0, 2, units.num_units - 1]  # inside the first window, and the last unit
    model = tiny_gpt2(257, tok.eod_id)
    res = evaluate_units(model, byte_corpus.train_tokens, units, ids, alphas=ALPHAS, batch_size=3,
                         token_nbytes=tok.token_nbytes, progress=False)
    check_against_naive(res, naive(model, byte_corpus.train_tokens, units, ids, tok.token_nbytes, 257))


def test_gpt2_batched_equals_naive_loop(gpt2_tokenizer_dir):
    tok = get_tokenizer("gpt2", gpt2_tokenizer_dir)
    corpus = build_corpus(load_documents("kjv", max_documents=2), tok, heldout_fraction=0.0, seed=0, cache_dir=False)
    units = make_units("token", ScoringGrid(T, S), corpus.num_train_tokens)
    ids = np.concatenate([[1], sample_units(units.num_units, 4, seed=2)])
    model = tiny_gpt2(tok.vocab_size, tok.eod_id, n_embd=16)
    res = evaluate_units(model, corpus.train_tokens, units, ids, alphas=ALPHAS, batch_size=2,
                         token_nbytes=tok.token_nbytes, progress=False)
    check_against_naive(res, naive(model, corpus.train_tokens, units, ids, tok.token_nbytes, tok.vocab_size))


def test_sampling_is_seeded_and_uniform():
    a, b = sample_units(1000, 50_000, seed=7), sample_units(1000, 50_000, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_units(1000, 50_000, seed=8))
    assert a.min() >= 0 and a.max() < 1000
    counts = np.bincount(a, minlength=1000)
    chi2 = ((counts - 50.0) ** 2 / 50.0).sum()
    assert chi2 < 1000 + 5 * math.sqrt(2000)  # χ² with 999 d.o.f.: far out only if not uniform
    with pytest.raises(BoundInputError):
        sample_units(0, 5, seed=0)


def test_batch_size_invariance_and_determinism(byte_corpus):
    tok = ByteTokenizer()
    units = make_units("token", ScoringGrid(T, S), byte_corpus.num_train_tokens)
    ids = sample_units(units.num_units, 40, seed=3)  # n > num_units: repeats are certain
    model = tiny_gpt2(257, tok.eod_id)
    kw = dict(alphas=ALPHAS, token_nbytes=tok.token_nbytes, progress=False)
    r1 = evaluate_units(model, byte_corpus.train_tokens, units, ids, batch_size=1, **kw)
    r7 = evaluate_units(model, byte_corpus.train_tokens, units, ids, batch_size=7, **kw)
    again = evaluate_units(model, byte_corpus.train_tokens, units, sample_units(units.num_units, 40, seed=3),
                           batch_size=7, **kw)
    for name in ["smoothed_bits", "unsmoothed_bits", "topk_error", "expected_smoothed_bits_sum", "smoothed_sq_dev_sum",
                 "log_wealth_sum"]:
        np.testing.assert_allclose(getattr(r1, name), getattr(r7, name), atol=1e-6, rtol=0)
        np.testing.assert_array_equal(getattr(r7, name), getattr(again, name))
    u, first = np.unique(ids, return_index=True)
    dup = [i for i in range(len(ids)) if i not in set(first.tolist())]
    assert dup, "the sample should repeat some unit"
    for i in dup:
        j = first[np.searchsorted(u, ids[i])]
        assert r7.smoothed_bits[:, i].tolist() == r7.smoothed_bits[:, j].tolist()
    assert r7.tokens_forwarded == T * len(u) - T * (sum(x < T // S for x in u) - (1 if (u < T // S).any() else 0))


def test_bf16_forward_keeps_fp32_loss_arithmetic(byte_corpus):
    tok = ByteTokenizer()
    units = make_units("token", ScoringGrid(T, S), byte_corpus.num_train_tokens)
    ids = sample_units(units.num_units, 6, seed=4)
    model = tiny_gpt2(257, tok.eod_id)
    kw = dict(alphas=ALPHAS, token_nbytes=tok.token_nbytes, progress=False, batch_size=4)
    ref = evaluate_units(model, byte_corpus.train_tokens, units, ids, **kw)
    bf = evaluate_units(model, byte_corpus.train_tokens, units, ids, autocast_dtype=torch.bfloat16, **kw)
    assert bf.smoothed_bits.dtype == np.float64 and np.all(np.isfinite(bf.smoothed_bits))
    np.testing.assert_allclose(bf.smoothed_bits, ref.smoothed_bits, atol=0.05)


def test_bad_inputs(byte_corpus):
    tok = ByteTokenizer()
    units = make_units("token", ScoringGrid(T, S), byte_corpus.num_train_tokens)
    wrong_vocab = tiny_gpt2(300, 0)
    with pytest.raises(BoundInputError, match="vocabulary"):
        evaluate_units(wrong_vocab, byte_corpus.train_tokens, units, [0], alphas=ALPHAS, token_nbytes=tok.token_nbytes, progress=False)

    class PlainLM(torch.nn.Module):  # no HF config: the mismatch shows only in the logits
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(257, 300)

        def forward(self, x):
            return self.emb(x)

    with pytest.raises(BoundInputError, match="V = 257"):
        evaluate_units(PlainLM(), byte_corpus.train_tokens, units, [0], alphas=ALPHAS, token_nbytes=tok.token_nbytes, progress=False)
    model = tiny_gpt2(257, 256)
    with pytest.raises(BoundInputError, match="unit ids"):
        evaluate_units(model, byte_corpus.train_tokens, units, [units.num_units], alphas=ALPHAS, progress=False)
    with pytest.raises(BoundInputError, match="alpha"):
        evaluate_units(model, byte_corpus.train_tokens, units, [0], alphas=[1.5], progress=False)
    long_units = make_units("token", ScoringGrid(2 * T, S), byte_corpus.num_train_tokens)
    with pytest.raises(BoundInputError, match="context"):
        evaluate_units(model, byte_corpus.train_tokens, long_units, [0], alphas=ALPHAS, progress=False)


def test_ties_count_against_the_target_so_the_top_k_set_holds_k_ids():
    logits = torch.tensor([[1.0, 1.0, 1.0, 0.0], [2.0, 1.0, 2.0, 2.0], [0.0, 3.0, 1.0, 3.0]])
    targets = torch.tensor([2, 0, 3])
    # row 0: ids 0 and 1 tie with the target and come first; row 1: nothing beats id 0;
    # row 2: id 1 ties and comes first
    assert target_rank(logits, targets).tolist() == [2, 0, 1]


def test_a_constant_model_is_wrong_at_top_1_unless_the_target_has_the_lowest_id():
    """Every logit ties: the top-k set is ids 0..k-1, so the error is the share of targets ≥ k.
    Counting only strictly larger logits would report a top-1 error of 0."""
    class Constant(torch.nn.Module):
        def forward(self, ids):
            return torch.zeros(*ids.shape, 257)

    tok = ByteTokenizer()
    corpus = build_corpus(["abcabc hello world " * 20], tok, heldout_fraction=0.0, seed=0, cache_dir=False)
    units = make_units("token", ScoringGrid(T, S), corpus.num_train_tokens)
    ids = np.arange(units.num_units)
    res = evaluate_units(Constant(), corpus.train_tokens, units, ids, alphas=[0.1], ks=(1, 100, 257),
                         token_nbytes=tok.token_nbytes, vocab_size=257, progress=False)
    targets = np.concatenate([corpus.train_tokens[units.score_start[u]:units.score_end[u]] for u in ids])
    per_unit = [corpus.train_tokens[units.score_start[u]:units.score_end[u]] for u in ids]
    for i, k in enumerate((1, 100, 257)):
        expect = np.array([np.mean(t >= k) for t in per_unit])
        np.testing.assert_allclose(res.topk_error[i], expect, rtol=0, atol=1e-12)
    assert res.topk_error[0].mean() > 0.9 and np.all(targets < 257)


def test_a_units_results_do_not_depend_on_which_units_share_its_batch(byte_corpus):
    """Every forward pass has one shape (the last batch is padded), so a unit's metrics are the
    same bits whatever else was sampled: the evaluated function does not depend on the sample."""
    tok = ByteTokenizer()
    model = tiny_gpt2(257, 256, seed=3)
    units = make_units("token", ScoringGrid(T, S), byte_corpus.num_train_tokens)
    mine = np.array([2, 9, 17])
    others = np.setdiff1d(np.arange(units.num_units), mine)[:10]
    kw = dict(alphas=ALPHAS, batch_size=4, token_nbytes=tok.token_nbytes, vocab_size=257, progress=False)
    alone = evaluate_units(model, byte_corpus.train_tokens, units, mine, **kw)
    mixed = evaluate_units(model, byte_corpus.train_tokens, units, np.concatenate([others, mine]), **kw)
    for name in ("smoothed_bits", "unsmoothed_bits", "topk_error", "smoothed_sq_dev_sum", "log_wealth_sum"):
        a, b = getattr(alone, name), getattr(mixed, name)
        assert a[..., :].tobytes() == b[..., -len(mine):].tobytes(), name


def test_a_window_prefix_is_context_only_and_scores_the_same_targets():
    """With ``prefix_id`` every window is forwarded as [prefix, window]; each target is then predicted
    from the prefix and its own context (the logits one position later), and nothing else changes."""
    tok = ByteTokenizer()
    V = tok.vocab_size
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(3)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=V, n_positions=T + 1, n_embd=32, n_layer=2, n_head=2)).eval()
    corpus = build_corpus(load_documents("kjv", max_documents=3), tok, heldout_fraction=0.34, seed=0, cache_dir=False)
    units = make_units("token", ScoringGrid(T, S), corpus.num_train_tokens)
    ids = np.array([0, 5, 9, 9])
    res = evaluate_units(model, corpus.train_tokens, units, ids, alphas=ALPHAS, batch_size=3, prefix_id=7,
                         token_nbytes=tok.token_nbytes, progress=False)
    plain = evaluate_units(model, corpus.train_tokens, units, ids, alphas=ALPHAS, batch_size=3,
                           token_nbytes=tok.token_nbytes, progress=False)
    tokens = np.asarray(corpus.train_tokens, dtype=np.int64)
    for j, u in enumerate(ids):
        total = 0.0
        for t in range(units.score_start[u], units.score_end[u]):
            c = context_of("token", units, u, t)
            x = torch.tensor(np.concatenate([[7], tokens[c:t]]))[None]
            with torch.no_grad():
                z = model(x).logits[0, -1].double()
            total += float(-torch.log_softmax(z, -1)[int(tokens[t])] / math.log(2))
        assert res.unsmoothed_bits_sum[j] == pytest.approx(total, rel=1e-5)
    assert np.array_equal(res.num_tokens, plain.num_tokens) and not np.allclose(res.unsmoothed_bits, plain.unsmoothed_bits)
    with pytest.raises(BoundInputError, match="prefix token"):  # T + 1 inputs must fit the context
        evaluate_units(tiny_gpt2(V, tok.eod_id), corpus.train_tokens, units, ids, alphas=ALPHAS, prefix_id=7,
                       progress=False)


def test_the_window_prefix_rule():
    from llm_bounds.certificate.config import preset_config
    from llm_bounds.certificate.context import window_prefix

    class Tok:
        name, bos_id = "t", 2

    scratch, pretrained = preset_config("smoke"), preset_config("smoke", init="pretrained", model="gpt2")
    assert window_prefix(scratch, Tok()) is None and window_prefix(pretrained, Tok()) == 2
    assert window_prefix(preset_config("smoke", window_prefix="none", init="pretrained", model="gpt2"), Tok()) is None
    assert window_prefix(preset_config("smoke", window_prefix="bos"), Tok()) == 2
    Tok.bos_id = None
    assert window_prefix(pretrained, Tok()) is None
    with pytest.raises(BoundInputError, match="no beginning-of-sequence token"):
        window_prefix(preset_config("smoke", window_prefix="bos"), Tok())
