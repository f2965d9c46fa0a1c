"""End to end: the smoke preset writes a certificate that verifies, and tampering is caught."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("bound_bpd", "empirical_bpd", "random_guess_bpd", "bound_bits_per_byte", "heldout_bpd", "top1_error_bound",
        "top1_error_empirical", "message_bits", "complexity_bits", "m", "n", "delta", "alpha", "level", "model",
        "params_total", "intrinsic_dim", "seed", "message_sha256")


def script(name, *args, timeout=600):
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    res = script("bound.py", "--preset", "smoke", "--out", out, "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    return out, res.stdout


def test_smoke_writes_certificate_with_required_keys(smoke_run):
    out, stdout = smoke_run
    cert = json.loads((out / "certificate.json").read_text())
    missing = [k for k in KEYS if k not in cert]
    assert not missing
    assert cert["bound_bpd"] >= cert["empirical_bpd"] > 0
    assert cert["message_bits"] == 8 * (out / "message.bin").stat().st_size
    assert cert["complexity_bits"] > cert["message_bits"]
    assert (out / "summary.md").read_text().startswith("# Generalization bound")
    assert "token-level bound" in stdout
    assert not list(out.glob(".*tmp*")), "a temporary file was left behind"


def test_verify_accepts_the_untouched_run(smoke_run):
    out, _ = smoke_run
    res = script("verify.py", out / "certificate.json", "--quiet")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[-1] == "verified"
    cert = json.loads((out / "certificate.json").read_text())  # the bound the verifier re-derived, to quote
    assert f"token level: {cert['bound_bpd']:.6f} bits per token = {cert['bound_bits_per_byte']:.6f} bits per byte" \
        in res.stdout


def test_verify_rejects_a_flipped_message_byte(smoke_run, tmp_path):
    out, _ = smoke_run
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    data = bytearray((bad / "message.bin").read_bytes())
    data[len(data) // 2] ^= 0x01
    (bad / "message.bin").write_bytes(bytes(data))
    res = script("verify.py", bad / "certificate.json", "--quiet")
    assert res.returncode != 0 and "sha256" in res.stderr


def test_verify_rejects_a_changed_number(smoke_run, tmp_path):
    out, _ = smoke_run
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    cert = json.loads((bad / "certificate.json").read_text())
    cert["bound_bpd"] *= 0.99
    (bad / "certificate.json").write_text(json.dumps(cert))
    res = script("verify.py", bad / "certificate.json", "--quiet")
    assert res.returncode != 0 and "mismatch: bound_bpd: the certificate claims the upper bound" in res.stderr


def test_verify_rejects_a_recoded_message_with_matching_hash(smoke_run, tmp_path):
    """A corrupted message whose hash was also updated must still fail: it no longer decodes."""
    import hashlib

    out, _ = smoke_run
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    data = bytearray((bad / "message.bin").read_bytes())
    data[-1] ^= 0x10
    (bad / "message.bin").write_bytes(bytes(data))
    cert = json.loads((bad / "certificate.json").read_text())
    cert["message_sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    (bad / "certificate.json").write_text(json.dumps(cert))
    res = script("verify.py", bad / "certificate.json", "--quiet")
    assert res.returncode != 0


@pytest.mark.slow
def test_same_seed_gives_same_message_and_bound(smoke_run, tmp_path):
    out, _ = smoke_run
    res = script("bound.py", "--preset", "smoke", "--out", tmp_path / "again", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    a = json.loads((out / "certificate.json").read_text())
    b = json.loads((tmp_path / "again" / "certificate.json").read_text())
    assert a["message_sha256"] == b["message_sha256"]
    assert a["bound_bpd"] == b["bound_bpd"]


def test_bad_cli_input_is_one_line_exit_2(tmp_path):
    for args in (["--preset", "nope"], ["--delta", "2"], ["--levels", "x"], ["--model", "gpt2-nonsense"],
                 ["--dataset", str(tmp_path / "missing.txt")], ["--update-scales", "rows"]):
        res = script("bound.py", *args, "--out", tmp_path / "o", "--quiet", timeout=300)
        assert res.returncode == 2, (args, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr, (args, res.stderr)
    assert not (tmp_path / "o" / "certificate.json").exists()


def test_quantization_aware_finetuning_run_verifies(tmp_path):
    """With QAT the message is of the fine-tuned z; the verifier still re-derives every number."""
    from llm_bounds.certificate.run import run
    from llm_bounds.certificate.config import preset_config
    from llm_bounds.certificate.verify import verify_certificate

    cfg = preset_config("smoke", qat_steps=3, qat_lr=1e-2, max_steps=5, n_documents=0, n_samples=16,
                        heldout_samples=8)
    cert = run(cfg, tmp_path / "qat", progress=False)
    assert cert["config"]["qat_steps"] == 3
    assert verify_certificate(tmp_path / "qat", progress=False) == []  # a run folder works too


def test_certificate_records_environment_baselines_and_its_sample_stream(smoke_run):
    out, _ = smoke_run
    cert = json.loads((out / "certificate.json").read_text())
    env = cert["environment"]
    assert env["device"] == "cpu" and env["eval_dtype"] == "float32"
    assert env["versions"]["torch"] and env["versions"]["transformers"] and env["versions"]["python"]
    base = cert["baseline_bits_per_byte"]
    assert set(base) >= {"gzip -9", "bzip2 -9", "xz -9e", "bytes"} and base["bytes"] == cert["m_bytes"]
    assert all(1.0 < base[k] < 4.0 for k in ("gzip -9", "bzip2 -9", "xz -9e"))  # English text
    assert cert["sample_stream"] == "certificate" and cert["certificate_version"] == 4
    summary = (out / "summary.md").read_text()
    assert "xz -9e" in summary and "classical compressors" in summary
    # the claims: 4 token + 4 document bounds, each at 1 − δ on its own; the tuning charge stated
    assert cert["claims"]["count"] == 8 and not cert["claims"]["joint"] and cert["claims"]["delta_each"] == cert["delta"]
    assert "1 - 8*0.05 = 0.6" in summary and "--joint-claims" in summary
    assert cert["tuning_charge"] == {"configs_compared": 1, "preset_tuning": 1, "bits": 0.0, "subsample_delta_split": 1}
    assert "No charge for choosing this configuration" in summary
    quant = cert["informational"]["quantization"]
    assert quant["units"] == cert["n"] and quant["quantized_empirical_bpd"] == pytest.approx(cert["empirical_bpd"])


def test_verify_notes_other_versions_and_still_verifies(smoke_run, tmp_path):
    out, _ = smoke_run
    other = tmp_path / "other"
    shutil.copytree(out, other)
    cert = json.loads((other / "certificate.json").read_text())
    cert["environment"]["versions"]["torch"] = "0.0.1"
    (other / "certificate.json").write_text(json.dumps(cert))
    res = script("verify.py", other / "certificate.json", "--quiet")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "verified"
    assert "note: verifying under another environment (torch 0.0.1 when certified" in res.stderr


def test_verify_refuses_a_version_1_certificate_with_the_commit_that_verifies_it(smoke_run, tmp_path):
    out, _ = smoke_run
    old = tmp_path / "old"
    shutil.copytree(out, old)
    cert = json.loads((old / "certificate.json").read_text())
    cert["certificate_version"] = 1
    (old / "certificate.json").write_text(json.dumps(cert))
    res = script("verify.py", old / "certificate.json", "--quiet")
    assert res.returncode == 1 and "version-1 certificate" in res.stderr and "commit" in res.stderr


def test_every_unit_and_tuning_runs_on_a_small_text(tmp_path):
    """--n-samples all: the whole training set is scored, no subsample term; --tuning draws its
    samples from another stream; --configs-compared is charged in K."""
    text = tmp_path / "small"
    text.mkdir()
    for i in range(12):
        (text / f"{i:02d}.txt").write_text(f"Chapter {i}. In the beginning God created the heaven and the earth. " * 8)
    common = ["--preset", "smoke", "--dataset", text, "--max-steps", "3", "--n-documents", "0", "--quiet"]
    res = script("bound.py", *common, "--n-samples", "all", "--configs-compared", "4", "--out", tmp_path / "all")
    assert res.returncode == 0, res.stderr[-2000:]
    cert = json.loads((tmp_path / "all" / "certificate.json").read_text())
    nll = cert["terms"]["token"]["nll"]
    assert cert["every_unit_evaluated"] and nll["subsample_term"] == 0.0 and nll["n"] is None
    assert nll["complexity_method"] == "betting" and 0 < nll["betting_lambda"] <= 1  # every token's terms known
    assert cert["terms"]["complexity"]["hyperparameters"] == {"levels": 1, "configs_compared": 4}
    assert nll["subsample_union"] == 4 * len(cert["config"]["alphas"])  # the configs and the α grid
    res = script("verify.py", tmp_path / "all", "--quiet")
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1] == "verified", res.stderr[-2000:]
    res = script("bound.py", *common, "--n-samples", "16", "--tuning", "--out", tmp_path / "tune")
    assert res.returncode == 0, res.stderr[-2000:]
    tune = json.loads((tmp_path / "tune" / "certificate.json").read_text())
    assert tune["sample_stream"] == "tuning" and "Tuning run" in (tmp_path / "tune" / "summary.md").read_text()
