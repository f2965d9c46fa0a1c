"""A certificate is never wrong (#23): bad input is refused in one line (exit 2) before any work and
leaves no folder; a run that cannot finish says why in one line (exit 1); a stage is never read back
under other data, settings or code; two runs never share a folder.

The command lines run in this process (``bound_main`` and friends), so a traceback fails the test."""
import contextlib
import errno
import fcntl
import json
import os

import numpy as np
import pytest

from llm_bounds.certificate.run import run
from llm_bounds.certificate.config import preset_config
from llm_bounds.certificate.stages import RunFolder
from llm_bounds.core.errors import BoundInputError, RunError
from llm_bounds_cli.bound import bound_main
from llm_bounds_cli.compare import main as compare_main
from llm_bounds_cli.verify import verify_main

# a small, quick run: the smoke model on a few documents, no document sample
QUICK = ["--preset", "smoke", "--max-steps", "6", "--n-samples", "16", "--n-documents", "0", "--heldout-samples", "4",
         "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    words = "in the beginning god created the heaven and the earth and darkness was upon the deep".split()
    docs = [" ".join(rng.choice(words, 120)) for _ in range(24)]
    (d / "corpus.txt").write_text("\n\n".join(docs))
    (d / "null.jsonl").write_text('{"text": "fine words"}\n{"text": null}\n')
    (d / "number.jsonl").write_text('{"text": "fine words"}\n{"text": 123}\n')
    (d / "not.gguf").write_bytes(b"PK\x03\x04 a zip file, not a checkpoint")
    (d / "afile").write_text("x")
    (d / "loop").symlink_to(d / "loop")  # a link to itself
    return d


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def data(corpus):
    return ["--dataset", str(corpus / "corpus.txt"), "--separator", "\\n\\n"]


BAD = {  # case: (arguments, the words the one line must contain)
    "empty out": (lambda c, o: ["--out", ""], "--out is empty"),
    "out is a file": (lambda c, o: ["--out", str(c / "afile")], "is a file"),
    "out under a file": (lambda c, o: ["--out", str(c / "afile" / "run")], "which is a file"),
    "window beyond the context": (lambda c, o: ["--window", "512", "--stride", "256"], "context of gpt2-l2-d64 (256"),
    "negative seed": (lambda c, o: ["--seed", "-1"], "--seed must be an integer in [0, 2^32)"),
    "not a gguf file": (lambda c, o: ["--model", str(c / "not.gguf")], "is not a GGUF file"),
    "a billion samples": (lambda c, o: ["--n-samples", "1000000000"], "GiB to evaluate"),
    "jsonl null text": (lambda c, o: ["--dataset", str(c / "null.jsonl")], "null.jsonl:2: the 'text' field is NoneType"),
    "jsonl number text": (lambda c, o: ["--dataset", str(c / "number.jsonl")], "number.jsonl:2: the 'text' field is int"),
    "dataset is a symlink loop": (lambda c, o: ["--dataset", str(c / "loop")], "loop is a symlink loop"),
    "out inside a symlink loop": (lambda c, o: ["--out", str(c / "loop" / "run")], "loop, a symlink loop"),
    "model is a symlink loop": (lambda c, o: ["--model", str(c / "loop"), "--init", "pretrained"],
                                "loop is a symlink loop (links that lead back to themselves)"),
    "bos prefix without a bos token": (lambda c, o: ["--window-prefix", "bos"], "has no beginning-of-sequence token"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_exit_2_before_any_work_and_leaves_no_folder(case, corpus, tmp_path, capsys):
    out = tmp_path / "run"
    args, words = BAD[case]
    argv = QUICK + data(corpus) + ["--out", str(out)] + args(corpus, out)
    assert bound_main(argv) == 2
    line = one_line(capsys)
    assert words in line and "does not exist" not in line, line
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--alpha", "--levels"])
def test_an_empty_grid_is_a_usage_error(flag, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bound_main(QUICK + [flag, ",", "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "expected a comma list" in one_line(capsys) and not (tmp_path / "o").exists()
    with pytest.raises(BoundInputError, match="empty"):
        preset_config("smoke", alphas=()) if flag == "--alpha" else preset_config("smoke", levels=())


def test_an_unwritable_out_is_refused(corpus, tmp_path, capsys, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    assert bound_main(QUICK + data(corpus) + ["--out", str(tmp_path / "run")]) == 2
    assert "is not writable" in one_line(capsys) and not (tmp_path / "run").exists()


def test_divergence_names_the_learning_rate_and_keeps_nothing(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert bound_main(QUICK + data(corpus) + ["--out", str(out), "--lr", "1e30"]) == 1
    line = one_line(capsys)
    assert "training diverged" in line and "--lr" in line and "nothing was kept" in line, line
    assert not out.exists()
    assert bound_main(QUICK + data(corpus) + ["--out", str(out), "--lr", "0.01"]) == 0  # a rerun starts afresh
    assert (out / "certificate.json").is_file()


def test_a_full_disk_names_the_folder_and_the_rerun_resumes(corpus, tmp_path, capsys, monkeypatch):
    import llm_bounds.core.files as files

    out = tmp_path / "run"
    real_fsync, state = os.fsync, {"writes": 0}

    def fsync(fd):
        state["writes"] += 1
        if state["writes"] == 4:  # the key, a checkpoint, ... then the disk fills up
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 1
    line = one_line(capsys)
    assert "no space left on the device" in line and str(out) in line and "resumes" in line, line
    assert not list(out.rglob(".*.tmp"))  # no half-written file
    monkeypatch.setattr(files.os, "fsync", real_fsync)
    assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 0


def test_a_folder_that_becomes_unwritable_is_one_line(corpus, tmp_path, capsys, monkeypatch):
    import llm_bounds.core.files as files

    def fsync(fd):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(files.os, "fsync", fsync)
    assert bound_main(QUICK + data(corpus) + ["--out", str(tmp_path / "run")]) == 1
    line = one_line(capsys)
    assert "could not write key.json" in line and "Read-only file system" in line, line
    assert not (tmp_path / "run").exists()


def test_two_runs_never_share_a_folder(corpus, tmp_path, capsys):
    out = tmp_path / "run"
    assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 0
    capsys.readouterr()
    fd = os.open(out, os.O_RDONLY)  # another run holds the folder
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 1
        assert "another run is writing to" in one_line(capsys)
    finally:
        os.close(fd)
    assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 0


def test_edited_data_is_refused_and_never_certified_from_stale_evaluations(corpus, tmp_path, capsys):
    """The reported case: the same command after the corpus changed printed a certificate of the old
    evaluations (exit 0). Now the folder's key names the data, and the run refuses in one line."""
    text = tmp_path / "corpus.txt"
    text.write_text((corpus / "corpus.txt").read_text())
    out = tmp_path / "run"
    argv = QUICK + ["--dataset", str(text), "--separator", "\\n\\n", "--out", str(out)]
    assert bound_main(argv) == 0
    before = json.loads((out / "certificate.json").read_text())
    text.write_text(text.read_text().replace("god", "the lord"))
    capsys.readouterr()
    assert bound_main(argv) == 2
    line = one_line(capsys)
    assert "was started on other data" in line and "the dataset changed" in line, line
    assert json.loads((out / "certificate.json").read_text()) == before  # untouched


def test_a_stage_is_keyed_by_settings_data_tokenizer_and_code(tmp_path):
    from llm_bounds.certificate.stages import RunKey

    key = RunKey(config={"seed": 0}, data_content_hash="a" * 64, tokenizer_fingerprint="bytes-v1", code="c1")
    others = {"different settings (seed 0 then, 1 now)": RunKey({"seed": 1}, "a" * 64, "bytes-v1", "c1"),
              "other data": RunKey({"seed": 0}, "b" * 64, "bytes-v1", "c1"),
              "another tokenizer": RunKey({"seed": 0}, "a" * 64, "gpt2", "c1"),
              "another version of llm-bounds": RunKey({"seed": 0}, "a" * 64, "bytes-v1", "c2"),
              "other weights under the same model name": RunKey({"seed": 0}, "a" * 64, "bytes-v1", "c1", "w2"),
              "another environment (torch unset then, 9.9 now)": RunKey({"seed": 0}, "a" * 64, "bytes-v1", "c1", "",
                                                                        {"versions": {"torch": "9.9"}})}
    folder = RunFolder(tmp_path / "o")
    folder.claim(key)
    folder.unlock()
    names = {folder.evaluation("token", b"\x01\x02").name}
    for words, other in others.items():
        with pytest.raises(BoundInputError) as e:
            RunFolder(tmp_path / "o").claim(other)
        assert words in str(e.value) and "choose a new --out" in str(e.value)
        names.add(RunFolder(tmp_path / "o", key=other).evaluation("token", b"\x01\x02").name)
    assert len(names) == 1 + len(others)  # an evaluation's file name carries the whole key
    again = RunFolder(tmp_path / "o")
    assert again.claim(key) == [] and again.key == key  # the same key resumes, creating nothing
    again.unlock()


def test_run_refuses_a_folder_of_other_settings_before_loading_anything(tmp_path, monkeypatch):
    cfg = preset_config("smoke", max_steps=2, n_samples=8, n_documents=0, heldout_samples=4)
    folder = RunFolder(tmp_path / "o")
    folder.stages.mkdir(parents=True)
    folder.settings.write_text(json.dumps({"config": dict(cfg.to_dict(), seed=7)}))
    import llm_bounds.certificate.run as run_module

    monkeypatch.setattr(run_module.RunContext, "build", lambda cfg: pytest.fail("loaded data for a refused folder"))
    with pytest.raises(BoundInputError, match="different settings"):
        run(cfg, tmp_path / "o", progress=False)


def test_compare_refuses_before_any_run(corpus, tmp_path, capsys):
    out = tmp_path / "cmp"
    cases = [(["--budget", "steps", "inf"], "finite positive number"),
             (["--out", str(corpus / "afile")], "is a file"),
             (["--models", "gpt2-l1-d32,gpt2-l1-d32"], "more than once"),
             (["--dataset", str(corpus / "null.jsonl")], "not a string")]
    for args, words in cases:
        argv = ["--preset", "smoke", "--models", "gpt2-l1-d32", "--out", str(out), "--quiet"] + args
        assert compare_main(argv) == 2, args
        assert words in one_line(capsys), args
        assert not out.exists(), args


def test_verify_refuses_a_tolerance_that_would_accept_anything(tmp_path, capsys):
    for rtol in ("-1", "inf", "nan", "0.5"):
        assert verify_main([str(tmp_path / "certificate.json"), "--rtol", rtol]) == 2
        assert "--rtol must lie in [0, 0.01]" in one_line(capsys)


def test_an_offline_hub_is_not_asked_by_datasets(monkeypatch):
    import datasets.config
    import huggingface_hub.constants

    import llm_bounds.core.hub as hub

    monkeypatch.setattr(hub, "downloads_allowed", lambda allow=None: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    with hub.hub_offline_unless_reachable():
        assert huggingface_hub.constants.HF_HUB_OFFLINE is True and datasets.config.HF_HUB_OFFLINE is True
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False and datasets.config.HF_HUB_OFFLINE is False


def test_run_error_is_not_a_usage_error():
    assert not issubclass(RunError, BoundInputError)


def test_a_hugging_face_dataset_with_text_that_is_not_a_string_is_refused(tmp_path):
    import datasets

    from llm_bounds.data.corpus import load_documents

    datasets.Dataset.from_dict({"text": ["fine words", None]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(BoundInputError, match="record 1: the 'text' field is NoneType, not a string"):
        load_documents(f"hf:{tmp_path / 'ds'}")


def test_pruning_removes_the_marker_last_and_a_partial_entry_is_a_miss(tmp_path, monkeypatch):
    """An interrupted prune leaves an entry the cache still knows as its own (its marker), and a reader
    treats an entry with a file missing as a miss."""
    from llm_bounds.data.cache import prune_cache
    from llm_bounds.data.corpus import build_corpus
    from llm_bounds.data.tokenizers import ByteTokenizer

    docs = ["in the beginning " * 50, "was the word " * 50, "and the word " * 50]
    first = build_corpus(docs, ByteTokenizer(), heldout_fraction=0.34, seed=0, cache_dir=tmp_path)
    (entry,) = {p.name.split(".")[0] for p in tmp_path.iterdir()}
    (tmp_path / f"{entry}.train.bin").unlink()  # a prune interrupted after the marker... or before it
    again = build_corpus(docs, ByteTokenizer(), heldout_fraction=0.34, seed=0, cache_dir=tmp_path)
    assert np.array_equal(np.asarray(again.train_tokens), np.asarray(first.train_tokens))
    removed, real_unlink = [], type(tmp_path).unlink

    def unlink(self, *a, **k):
        removed.append(self.suffix)
        return real_unlink(self, *a, **k)

    monkeypatch.setattr(type(tmp_path), "unlink", unlink)
    assert prune_cache(tmp_path, keep="none", limit=0) == [entry]
    assert removed[-1] == ".json" and len(removed) == 4 and not list(tmp_path.iterdir())


# --- #29: checked before work -------------------------------------------------------------------------

def refuse_loading(monkeypatch, *what):
    """Make loading the corpus or building the model fail the test: a refusal must come first."""
    import llm_bounds.certificate.context as context_module
    import llm_bounds.certificate.plan as plan_module

    for module in (plan_module, context_module):
        for name in what:
            if hasattr(module, name):
                monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail(f"{name} ran before the refusal"))


@pytest.fixture(scope="module")
def done(corpus, tmp_path_factory):
    """A finished quick run: its folder holds stages/key.json and certificate.json."""
    out = tmp_path_factory.mktemp("done") / "run"
    assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 0
    return out


@contextlib.contextmanager
def edited(corpus, old, new):
    """The corpus with ``old`` replaced by ``new``, restored afterwards (the finished run's data file)."""
    path = corpus / "corpus.txt"
    text = path.read_text()
    path.write_text(text.replace(old, new))
    try:
        yield
    finally:
        path.write_text(text)


def copy_of(done, tmp_path, stages=True):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(done, out)
    if not stages:
        shutil.rmtree(out / "stages")
    return out


def test_a_bos_prefix_the_tokenizer_lacks_is_refused_before_the_corpus(corpus, tmp_path, capsys, monkeypatch):
    refuse_loading(monkeypatch, "build_corpus", "load_documents")
    assert bound_main(QUICK + data(corpus) + ["--window-prefix", "bos", "--out", str(tmp_path / "run")]) == 2
    assert "--window-prefix bos: the tokenizer 'bytes' has no beginning-of-sequence token" in one_line(capsys)
    with pytest.raises(BoundInputError, match="no beginning-of-sequence token"):  # the library path too
        from llm_bounds.certificate.context import RunContext
        RunContext.build(preset_config("smoke", window_prefix="bos"))


@pytest.mark.parametrize("stages", [True, False], ids=["stages", "certificate only"])
def test_changed_data_is_refused_before_the_model_is_built(stages, corpus, done, tmp_path, capsys, monkeypatch):
    out = copy_of(done, tmp_path, stages)
    before = (out / "certificate.json").read_bytes()
    refuse_loading(monkeypatch, "build_base_model")
    with edited(corpus, "god", "the lord"):
        assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 2
    line = one_line(capsys)
    words = "was started on other data" if stages else "holds a certificate of other data"
    assert words in line and "choose a new --out" in line, line
    assert (out / "certificate.json").read_bytes() == before and (out / "stages").is_dir() == stages


def test_a_dry_run_says_what_the_run_would_refuse(corpus, done, tmp_path, capsys, monkeypatch):
    out = copy_of(done, tmp_path)
    listing = sorted(str(p) for p in out.rglob("*"))
    assert bound_main(QUICK + data(corpus) + ["--out", str(out), "--seed", "3", "--dry-run"]) == 2
    assert "holds a run with different settings (seed 0 then, 3 now)" in one_line(capsys)
    with monkeypatch.context() as m, edited(corpus, "earth", "world"):
        refuse_loading(m, "build_base_model")
        assert bound_main(QUICK + data(corpus) + ["--out", str(out), "--dry-run"]) == 2
        assert "was started on other data" in one_line(capsys)
    assert bound_main(QUICK + data(corpus) + ["--out", str(out), "--dry-run"]) == 0  # the same run: a plan
    assert json.loads(capsys.readouterr().out)["config"]["seed"] == 0
    assert sorted(str(p) for p in out.rglob("*")) == listing  # a dry run writes nothing


def test_a_certificate_without_stages_is_not_replaced_by_other_settings(corpus, done, tmp_path, capsys, monkeypatch):
    """The reported case: after deleting only stages/, a run with other settings replaced certificate.json."""
    out = copy_of(done, tmp_path, stages=False)
    before = (out / "certificate.json").read_bytes()
    with monkeypatch.context() as m:
        refuse_loading(m, "build_corpus", "build_base_model")
        assert bound_main(QUICK + data(corpus) + ["--out", str(out), "--seed", "1"]) == 2
        line = one_line(capsys)
        assert "holds a certificate.json with different settings (seed 0 then, 1 now)" in line, line
    assert (out / "certificate.json").read_bytes() == before and not (out / "stages").exists()
    # a setting resolved only once the model is built (the window prefix) is compared before the run starts
    cert = json.loads(before)
    (out / "certificate.json").write_text(json.dumps(dict(cert, config=dict(cert["config"], window_prefix="bos"))))
    assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 2
    assert "window_prefix 'bos' then, 'none' now" in one_line(capsys) and not (out / "stages").exists()
    (out / "certificate.json").write_bytes(before)
    assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 0  # the same settings may run again
    assert json.loads((out / "certificate.json").read_text())["message_sha256"] == cert["message_sha256"]


def test_a_run_resumes_only_in_the_environment_it_was_started_in(corpus, done, tmp_path, capsys, monkeypatch):
    """#29: stages from another host or library version are not mixed into this environment's certificate."""
    from importlib import metadata

    out = copy_of(done, tmp_path)
    key = json.loads((out / "stages" / "key.json").read_text())
    assert "threads" not in key["environment"] and key["environment"]["versions"]["tokenizers"]
    key["environment"]["versions"]["torch"] = "0.0.1"
    key["environment"]["cpu_capability"] = "NONE"
    (out / "stages" / "key.json").write_text(json.dumps(key))
    refuse_loading(monkeypatch, "build_base_model")
    assert bound_main(QUICK + data(corpus) + ["--out", str(out)]) == 2
    line = one_line(capsys)
    here = metadata.version("torch")
    assert "was started in another environment" in line and f"torch 0.0.1 then, {here} now" in line, line
    assert "cpu_capability NONE then" in line and "resume it where it was started" in line, line


def test_the_environment_key_leaves_out_the_thread_count():
    import torch

    from llm_bounds.core.environment import results_environment

    threads = torch.get_num_threads()
    first = results_environment("cpu")
    try:
        torch.set_num_threads(max(1, threads - 1) if threads > 1 else 2)
        assert results_environment("cpu") == first
    finally:
        torch.set_num_threads(threads)
    assert {"device", "cpu_capability", "kernel_settings", "versions", "cpu"} <= set(first)


def test_the_corpus_cache_is_keyed_by_the_tokenization_libraries(tmp_path, monkeypatch):
    import llm_bounds.data.corpus as corpus_module
    from llm_bounds.data.tokenizers import ByteTokenizer

    docs = ["in the beginning " * 20, "was the word " * 20, "and the word " * 20]
    corpus_module.build_corpus(docs, ByteTokenizer(), heldout_fraction=0.34, seed=0, cache_dir=tmp_path)
    real = corpus_module.library_versions
    monkeypatch.setattr(corpus_module, "library_versions", lambda names: dict(real(names), tokenizers="0.0.1"))
    corpus_module.build_corpus(docs, ByteTokenizer(), heldout_fraction=0.34, seed=0, cache_dir=tmp_path)
    assert len({p.name.split(".")[0] for p in tmp_path.iterdir()}) == 2  # an upgrade tokenizes again
