"""Checkpoints certified and chosen among (--track, and θ0 of pretrained weights): which steps, the
untrained message, the charge for the choice (simulated: it is caught when missing), and runs that
write the curve, report the untrained checkpoint, resume and verify."""
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llm_bounds.bound.generalization import generalization_bound
from llm_bounds.certificate import run as run_module
from llm_bounds.certificate.checkpoints import checkpoint_count, checkpoint_steps
from llm_bounds.certificate.config import RunConfig
from llm_bounds.certificate.context import grid_union, searched_grids
from llm_bounds.certificate.run import run
from llm_bounds.certificate.screen import screen_trained
from llm_bounds.certificate.verify import verify_certificate
from llm_bounds.core.errors import BoundInputError
from llm_bounds.message.accounting import message_report
from llm_bounds.message.bitio import MessageError
from llm_bounds.message.complexity import elias_delta_bits, message_complexity
from llm_bounds.message.format import decode_message
from llm_bounds.message.untrained import untrained_message

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_architectures import save_tiny  # noqa: E402  (a tiny checkpoint saved like a published one)


# ---- the untrained message ------------------------------------------------------------------------

def test_untrained_message_is_one_byte_and_decodes_to_zero_of_the_runs_d():
    msg = untrained_message()
    assert msg == b"\x00"
    q = decode_message(msg, 12_000)
    assert q.d == 12_000 and q.levels == 1 and not q.values().any()
    report = message_report(q, msg)
    assert report["model"] == "untrained" and report["real_bits"] == 8 == report["header_bits"]
    assert report["complexity"]["total_bits"] == 8 + elias_delta_bits(1) == 9
    with pytest.raises(MessageError, match="pass d"):
        decode_message(msg)


@pytest.mark.parametrize("bad", [b"\x00\x00", b"\x00\x05", b"\x00zq"])
def test_bytes_after_the_untrained_byte_are_refused(bad):
    with pytest.raises(MessageError):
        decode_message(bad, 100)


# ---- which checkpoints, and the grid that charges them ---------------------------------------------

def test_checkpoints_are_evenly_spaced_with_step_0_and_the_last():
    assert checkpoint_steps(RunConfig(model="gpt2-l2-d64", max_steps=40, track=3)) == [0, 20, 40]
    assert checkpoint_steps(RunConfig(model="gpt2-l2-d64", max_steps=10, track=4)) == [0, 3, 6, 10]
    assert checkpoint_steps(RunConfig(model="gpt2-l2-d64", max_steps=4, track=5)) == [0, 1, 2, 3, 4]
    seeded = RunConfig(model="gpt2-l2-d64", max_steps=40)
    assert checkpoint_steps(seeded) == [40] and "checkpoints" not in searched_grids(seeded)  # the default: no charge
    pretrained = RunConfig(model="gpt2", init="pretrained", max_steps=40, levels=(9, 17))
    assert checkpoint_steps(pretrained) == [0, 40]
    assert searched_grids(pretrained) == {"levels": 2, "checkpoints": 2} and grid_union(pretrained) == 4
    assert checkpoint_steps(RunConfig(model="gpt2", init="pretrained", max_steps=40, untrained_candidate=False)) == [40]
    assert checkpoint_steps(RunConfig(model="gpt2", init="pretrained", max_steps=40, track=3)) == [0, 20, 40]


@pytest.mark.parametrize("kw, match", [(dict(track=1), "--track must be 0"), (dict(track=-2), "--track must be 0"),
                                       (dict(track=9, max_steps=5), "--track 9 needs at least 8 training steps")])
def test_bad_track_is_refused_in_one_line(kw, match):
    with pytest.raises(BoundInputError, match=match) as e:
        RunConfig(model="gpt2-l2-d64", **kw).validate()
    assert "\n" not in str(e.value)


# ---- the charge, simulated ------------------------------------------------------------------------

DELTA, TRIALS = 0.1, 2000


def slack_limit(delta: float, trials: int) -> float:
    return delta + 3 * math.sqrt(delta * (1 - delta) / trials)


def selection_failure_rate(cfg: RunConfig, *, bits: bool, split: bool, m=10 ** 6, n=200, mu=0.5, seed=0) -> float:
    """How often the checkpoint chosen by its bound has a true risk above that bound.

    C = checkpoint_count(cfg) candidates per trial, each a hypothesis with m i.i.d. Bernoulli(mu)
    unit losses (true risk mu), so R̂_m ~ Binomial(m, mu)/m; the certificate's n draws with
    replacement from its m units give R̂_n ~ Binomial(n, R̂_m)/n exactly. The candidates' messages are
    equally long, so the smallest bound is the smallest R̂_n. ``bits`` / ``split``: charge the run's
    grids in K / split the subsample δ over them (the run does both). m ≫ n makes the complexity term
    and R̂_m − mu negligible, so the subsample term carries the claim: a selection on the sample with
    the split missing fails far more often than δ.
    """
    rng = np.random.default_rng(seed)
    full = rng.binomial(m, mu, size=(TRIALS, checkpoint_count(cfg))) / m
    chosen = (rng.binomial(n, full) / n).min(axis=1)
    K = message_complexity(12, searched_grids(cfg) if bits else {}).total_bits
    union = grid_union(cfg) if split else 1
    fails = [mu > generalization_bound(granularity="document", metric="error", method="hoeffding", empirical=float(e),
                                       complexity_bits=K, m=m, n=n, delta=DELTA, subsample_union=union).bound
             for e in chosen]
    return float(np.mean(fails))


@pytest.fixture(scope="module")
def tracked64():
    cfg = RunConfig(model="gpt2-l2-d64", max_steps=100, track=64, levels=(17,))
    assert checkpoint_count(cfg) == 64 and grid_union(cfg) == 64
    return cfg


def test_choosing_the_best_checkpoint_holds_with_the_charge(tracked64):
    assert selection_failure_rate(tracked64, bits=True, split=True) <= slack_limit(DELTA, TRIALS)


def test_a_missing_checkpoint_charge_is_caught(tracked64):
    assert selection_failure_rate(tracked64, bits=False, split=False) > slack_limit(DELTA, TRIALS)
    # the log2 C bits alone do not save it: the subsample split is the charge the selection needs
    assert selection_failure_rate(tracked64, bits=True, split=False) > slack_limit(DELTA, TRIALS)


# ---- the smoke preset with --track 3, from the command line -----------------------------------------

def script(name, *args):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def smoke_tracked(tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked") / "run"
    res = script("bound.py", "--preset", "smoke", "--track", "3", "--out", out, "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    return out, res.stdout


def test_smoke_track_3_writes_the_curve_from_step_0(smoke_tracked):
    out, stdout = smoke_tracked
    cert = json.loads((out / "certificate.json").read_text())
    lines = (out / "curve.csv").read_text().splitlines()
    rows = [dict(zip(lines[0].split(","), line.split(","))) for line in lines[1:]]
    assert [int(r["step"]) for r in rows] == [0, 20, 40] == cert["checkpoints"]["steps"]
    assert rows[0]["levels"] == "0" and rows[0]["message_bits"] == "8"  # the untrained message: z = 0
    assert [r["reported"] for r in rows].count("1") == 1
    reported = next(r for r in rows if r["reported"] == "1")
    assert math.isclose(float(reported["bound_bpd"]), cert["bound_bpd"], rel_tol=1e-12)
    assert min(float(r["bound_bpd"]) for r in rows) == float(reported["bound_bpd"])
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cert["terms"]["complexity"]["hyperparameters"]["checkpoints"] == 3
    assert "## Checkpoints" in (out / "summary.md").read_text() and "curve.csv" in stdout


def test_tracking_leaves_the_final_message_unchanged(smoke_tracked):
    out, _ = smoke_tracked
    assert (out / "stages" / "message_L17.bin").read_bytes() == (GOLDEN / "smoke-message.bin").read_bytes()
    cert = json.loads((out / "certificate.json").read_text())
    if cert["message_sha256"] == hashlib.sha256((GOLDEN / "smoke-message.bin").read_bytes()).hexdigest():
        golden = json.loads((GOLDEN / "smoke-certificate.json").read_text())  # the same message, charged log2 3 more
        assert math.isclose(cert["complexity_bits"], golden["complexity_bits"] + math.log2(3), rel_tol=1e-12)


def test_the_tracked_certificate_verifies(smoke_tracked):
    assert verify_certificate(smoke_tracked[0], progress=False) == []


# ---- pretrained weights: the untrained checkpoint θ0 is a candidate ---------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    lines = [f"Line {i}: the quick brown fox number {i % 17} jumps over the lazy dog {i % 5} times." for i in range(120)]
    (folder / "docs.jsonl").write_text("".join(json.dumps({"text": "\n".join(lines[j:j + 20])}) + "\n"
                                               for j in range(0, 120, 20)))
    return save_tiny("llama", folder / "checkpoint"), folder / "docs.jsonl"


def tiny_config(tiny, **kw) -> RunConfig:
    model, corpus = tiny
    return RunConfig(**{**dict(model=str(model), tokenizer="bytes", dataset=str(corpus), intrinsic_dim=64, max_steps=3,
                               batch_size=2, window=32, stride=32, levels=(9,), alphas=(0.01, 0.1), n_samples="all",
                               n_documents=0, heldout_samples=4, eval_batch_size=32), **kw})


def test_untrained_checkpoint_is_reported_when_training_buys_less_than_it_costs(tiny, tmp_path):
    cert = run(tiny_config(tiny, lr=1e-7), tmp_path / "out", progress=False)  # training moves nothing
    info = cert["informational"]["checkpoints"]
    assert cert["checkpoints"]["steps"] == [0, 3] and cert["checkpoints"]["reported_untrained"]
    trained = info["rows"][1]  # screened only (the screen's own tests are below), or fully evaluated
    assert info["reported_step"] == 0
    assert info["rows"][0]["bound_bpd"] < trained.get("bound_bpd", trained.get("optimistic_bound_bpd"))
    assert (tmp_path / "out" / "message.bin").read_bytes() == untrained_message()
    assert cert["levels"] == 1 and cert["message_bits"] == 8 and cert["complexity_bits"] == 8 + 1 + 1
    # the zero-shot held-out loss is the reported model's own held-out evaluation
    assert cert["informational"]["zero_shot"]["heldout_bpd"] == cert["heldout_bpd"] == info["untrained"]["heldout_bpd"]
    assert "What training bought" in (tmp_path / "out" / "summary.md").read_text()
    assert verify_certificate(tmp_path / "out", progress=False) == []


def test_a_pretrained_certificate_from_before_the_untrained_candidate_still_verifies(tiny, tmp_path):
    cert = run(tiny_config(tiny, untrained_candidate=False), tmp_path / "out", progress=False)
    assert "checkpoints" not in cert and "checkpoints" not in cert["terms"]["complexity"]["hyperparameters"]
    path = tmp_path / "out" / "certificate.json"
    old = json.loads(path.read_text())
    del old["config"]["untrained_candidate"], old["config"]["track"]  # as written before these settings
    path.write_text(json.dumps(old))
    assert verify_certificate(tmp_path / "out", progress=False) == []


def test_an_interrupted_tracked_run_resumes_to_the_same_curve(tiny, tmp_path, monkeypatch):
    cfg = tiny_config(tiny, track=3, max_steps=6, lr=0.05)
    whole = run(cfg, tmp_path / "whole", progress=False)
    train = run_module._train

    def interrupted(ctx, folder, progress, stop_after=None):  # dies before training the last segment
        if stop_after is None:
            raise KeyboardInterrupt
        return train(ctx, folder, progress, stop_after)
    monkeypatch.setattr(run_module, "_train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "resumed", progress=False)
    assert (tmp_path / "resumed" / "stages" / "z_step3.npy").is_file()
    assert not (tmp_path / "resumed" / "certificate.json").exists()
    monkeypatch.setattr(run_module, "_train", train)
    resumed = run(cfg, tmp_path / "resumed", progress=False)
    assert resumed["message_sha256"] == whole["message_sha256"]
    assert (tmp_path / "resumed" / "curve.csv").read_text() == (tmp_path / "whole" / "curve.csv").read_text()


# ---- the screen: the trained candidate evaluated fully only if it could beat θ0 ---------------------

def full_token_evaluations(monkeypatch) -> list:
    """Records every full (limit None) evaluation of the token sample."""
    from llm_bounds.certificate.context import RunContext
    calls, evaluate = [], RunContext.evaluate

    def counted(self, sample, progress=True, limit=None):
        if sample == "token" and limit is None:
            calls.append(self.holds)
        return evaluate(self, sample, progress, limit)
    monkeypatch.setattr(RunContext, "evaluate", counted)
    return calls


def test_the_trained_candidate_is_only_screened_when_training_buys_nothing(tiny, tmp_path, monkeypatch):
    calls = full_token_evaluations(monkeypatch)
    cert = run(tiny_config(tiny, lr=1e-7, window=16, stride=16), tmp_path / "out", progress=False)
    info = cert["informational"]["checkpoints"]
    assert cert["checkpoints"]["reported_untrained"] and info["reported_step"] == 0
    trained = info["rows"][1]
    assert trained["screened"] and not trained["fully_evaluated"] and "bound_bpd" not in trained
    assert trained["screen_units"] == info["screen"]["units"] < info["screen"]["sample_units"] == cert["n"]
    assert not info["screen"]["passed"] and trained["optimistic_bound_bpd"] >= info["rows"][0]["bound_bpd"]
    assert len(calls) == 1  # θ0's full evaluation alone: the trained message's never ran
    names = [p.name for p in (tmp_path / "out" / "stages").iterdir()]
    assert sum(n.startswith("eval_token_") for n in names) == 1 and sum(n.startswith("eval_token-first") for n in names) == 1
    assert cert["informational"]["level_candidates"][0]["screened"]
    est = cert["informational"]["estimate"]  # the screen's windows counted, not a second full pass
    assert "token sample, each level count" not in est["windows"]
    assert est["windows"]["token sample's first units, each level count (the screen)"] < est["if_screen_passes"]["windows"]
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "screened only" in summary and "The screen" in summary
    assert verify_certificate(tmp_path / "out", progress=False) == []
    screens = []
    monkeypatch.setattr(run_module, "screen_trained", lambda *a, **k: screens.append(1) or screen_trained(*a, **k))
    calls.clear()
    again = run(tiny_config(tiny, lr=1e-7, window=16, stride=16), tmp_path / "out", progress=False)  # from the stages
    assert screens and calls == [] and again["bound_bpd"] == cert["bound_bpd"]
    assert again["informational"]["checkpoints"]["rows"][1] == trained


def test_the_trained_candidate_that_helps_is_evaluated_fully_and_reported(tiny, tmp_path, monkeypatch):
    calls = full_token_evaluations(monkeypatch)
    cert = run(tiny_config(tiny, lr=0.05, max_steps=30, window=16, stride=16), tmp_path / "out", progress=False)
    info = cert["informational"]["checkpoints"]
    assert info["screen"]["passed"] and info["screen"]["fully_evaluated"]
    assert not any(r.get("screened") for r in info["rows"])
    assert info["reported_step"] == 30 and not cert["checkpoints"]["reported_untrained"]
    assert info["rows"][1]["bound_bpd"] < info["rows"][0]["bound_bpd"]
    assert len(calls) == 2  # θ0's and the trained message's full evaluations
    assert verify_certificate(tmp_path / "out", progress=False) == []
