"""The shared pieces of a run: the one atomic writer, the seeds, the run folder's names and the run
context (built once; the only code that sets the model's z; each message decoded once)."""
import json
import os

import numpy as np
import pytest
import torch

from llm_bounds.certificate.config import preset_config
from llm_bounds.certificate.context import RunContext, complexity_for, grid_union, searched_grids
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.core.errors import BoundInputError
from llm_bounds.core.files import sha256_hex, write_atomic
from llm_bounds.core.seeds import cpu_generator, derive_seed, derive_stream_seed
from llm_bounds.message import format as message_format
from llm_bounds.message.format import encode_message
from llm_bounds.message.quantize import quantize


def test_write_atomic_writes_bytes_text_and_writer_functions(tmp_path):
    write_atomic(tmp_path / "a.bin", b"\x00\x01")
    write_atomic(tmp_path / "b.txt", "é")
    write_atomic(tmp_path / "c.npy", lambda f: np.save(f, np.arange(3)))
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "b.txt").read_bytes() == "é".encode()
    assert np.load(tmp_path / "c.npy").tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.txt", "c.npy"]
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o666 & ~mask   # not mkstemp's 0600


def test_write_atomic_failure_keeps_the_old_file_and_leaves_no_debris(tmp_path):
    target = tmp_path / "certificate.json"
    write_atomic(target, "old")

    def broken(f):
        f.write(b"half a fi")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["certificate.json"]


def test_seed_derivations_separate_purposes_and_streams():
    purposes = ("init", "projection", "lora", "train", "certificate-sample-token", "certificate-sample-document",
                "certificate-sample-heldout", "tuning-sample-token", "qat")
    assert len({derive_seed(0, p) for p in purposes}) == len(purposes)
    assert all(0 <= derive_seed(s, "sample") < 2 ** 31 for s in range(20))
    assert derive_stream_seed(5, "kron") != derive_stream_seed(5, "fastfood") != derive_stream_seed(6, "kron")
    assert 0 <= derive_stream_seed(5, "dense", 3) < 2 ** 63
    a = torch.randn(4, generator=cpu_generator(5, "dense", 3))
    assert torch.equal(a, torch.randn(4, generator=cpu_generator(5, "dense", 3)))


def test_run_folder_names_are_the_resume_contract(tmp_path):
    from llm_bounds.certificate.stages import RunKey

    folder = RunFolder(tmp_path)
    message = b"\x01\x02"
    assert folder.message == tmp_path / "message.bin" and folder.certificate == tmp_path / "certificate.json"
    assert folder.candidate(17) == tmp_path / "stages" / "message_L17.bin"
    assert folder.settings == tmp_path / "stages" / "key.json"
    key = RunKey(config={"seed": 0}, data_content_hash="0" * 64, tokenizer_fingerprint="bytes-v1", code="c")
    folder.claim(key)
    assert folder.evaluation("token", message).name.startswith("eval_token_")
    folder.unlock()
    again = RunFolder(tmp_path)
    again.claim(key)  # the same key resumes
    again.unlock()
    with pytest.raises(BoundInputError, match="holds a run with different settings .*; choose a new --out"):
        RunFolder(tmp_path).claim(RunKey({"seed": 1}, "0" * 64, "bytes-v1", "c"))
    assert json.loads(folder.settings.read_text())["config"] == {"seed": 0}


def test_searched_grids_are_charged_in_k_and_in_the_subsample_split_from_one_table():
    one, three = preset_config("smoke", levels=(17,)), preset_config("smoke", levels=(11, 17, 33))
    tuned = preset_config("smoke", levels=(11, 17, 33), configs_compared=16)
    assert (grid_union(one), grid_union(three), grid_union(tuned)) == (1, 3, 48)
    assert searched_grids(tuned) == {"levels": 3, "configs_compared": 16}
    # the default preset's own tuning is charged whatever the user adds: 2^10 times the user's count
    default = preset_config("default", configs_compared=3)
    assert searched_grids(default) == {"levels": 1, "preset_tuning": 1024, "configs_compared": 3}
    assert grid_union(default) == 3072 and searched_grids(preset_config("default"))["preset_tuning"] == 1024
    k1, k3, k48 = (complexity_for(c, b"\x00" * 100) for c in (one, three, tuned))
    assert k3.total_bits - k1.total_bits == pytest.approx(np.log2(3), rel=1e-12)
    assert k48.total_bits - k3.total_bits == pytest.approx(4.0, rel=1e-12)   # log2 16


def test_certificate_and_tuning_samples_use_different_seed_purposes():
    cert, tune = preset_config("smoke"), preset_config("smoke", sample_stream="tuning")
    purposes = {cert.sample_purpose(s) for s in ("token", "document", "heldout")}
    assert purposes.isdisjoint({tune.sample_purpose(s) for s in ("token", "document", "heldout")})
    assert len(purposes) == 3 and "sample" not in purposes   # "sample" was the version-1 purpose
    with pytest.raises(BoundInputError, match="unknown sample stream"):
        preset_config("smoke", sample_stream="test")
    with pytest.raises(BoundInputError, match="--configs-compared must be an integer >= 1"):
        preset_config("smoke", configs_compared=0)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    docs = tmp_path_factory.mktemp("docs")
    rng = np.random.default_rng(0)
    for i in range(20):
        (docs / f"{i:02d}.txt").write_text(" ".join(rng.choice(["in", "the", "beginning", "was", "word"], 300)))
    return RunContext.build(preset_config("smoke", dataset=str(docs)))


def test_run_context_builds_units_and_samples_once(ctx):
    cfg = ctx.cfg
    assert set(ctx.sample_ids) == {"token", "document", "heldout"}
    assert len(ctx.sample_ids["token"]) == cfg.n_samples and len(ctx.sample_ids["heldout"]) == cfg.heldout_samples
    assert ctx.units["token"].stream_length == ctx.corpus.num_train_tokens
    assert ctx.units["heldout"].stream_length == ctx.corpus.num_heldout_tokens
    assert ctx.tokens("heldout") is ctx.corpus.heldout_tokens
    again = RunContext.build(cfg)
    assert all(np.array_equal(again.sample_ids[k], ctx.sample_ids[k]) for k in ctx.sample_ids)
    tuning = RunContext.build(preset_config("smoke", dataset=cfg.dataset, sample_stream="tuning"))
    assert not np.array_equal(tuning.sample_ids["token"], ctx.sample_ids["token"])


def test_messages_are_decoded_once_and_loaded_only_when_the_model_holds_something_else(ctx, monkeypatch):
    decodes, sets = [], []
    real_decode, real_set = message_format.decode_message, ctx.model.set_z
    monkeypatch.setattr("llm_bounds.certificate.context.decode_message", lambda m, *d: decodes.append(1) or real_decode(m, *d))
    monkeypatch.setattr(ctx.model, "set_z", lambda z: sets.append(1) or real_set(z))
    z = np.random.default_rng(1).normal(size=ctx.model.d).astype(np.float32) * 0.1
    message = encode_message(quantize(z, 17))
    q = ctx.load_message(message)
    assert ctx.holds == sha256_hex(message)
    assert ctx.model.z.detach().numpy().tobytes() == q.values().tobytes()
    ctx.load_message(message)
    ctx.decoded(message)
    assert (len(decodes), len(sets)) == (1, 1)
    ctx.load_z(z, "fp32 z")
    assert ctx.holds == "fp32 z" and np.array_equal(ctx.model.z.detach().numpy(), z)
    ctx.load_message(message)
    assert (len(decodes), len(sets)) == (1, 3) and ctx.holds == sha256_hex(message)
    assert not ctx.model.training


def test_scored_text_is_exactly_the_scored_training_bytes(ctx):
    text = ctx.scored_text()
    assert len(text) == ctx.scored_bytes()
    units = ctx.units["token"]
    start, end = int(units.score_start.min()), int(units.score_end.max())
    ids = np.asarray(ctx.corpus.train_tokens[start:end])
    assert text == bytes(int(i) for i in ids if i < 256)
