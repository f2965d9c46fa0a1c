"""Data parallelism: two gloo processes under torchrun certify the same bound as one process."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llm_bounds.core import distributed
from llm_bounds.evaluation.results import merge_evaluations

ROOT = Path(__file__).resolve().parents[1]


def test_single_process_helpers_are_identities():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    batch = torch.arange(12).reshape(4, 3)
    assert distributed.local_rows(batch) is batch
    assert distributed.shard_bounds(7) == (0, 7)
    assert distributed.gather_objects("x") == ["x"]


def test_merge_evaluations_joins_shards_in_order():
    from llm_bounds.evaluation.evaluate import EvalResult
    import numpy as np

    def part(ids):
        n = len(ids)
        a = np.asarray(ids, dtype=float)
        return EvalResult(granularity="token", vocab_size=5, alphas=np.array([0.1, 0.5]), ks=np.array([1]),
                          unit_ids=np.asarray(ids), num_tokens=np.full(n, 4), num_bytes=np.full(n, 4),
                          smoothed_bits=np.stack([a, 2 * a]), unsmoothed_bits=a, topk_error=a[None] / 10,
                          smoothed_bits_sum=np.stack([4 * a, 8 * a]), unsmoothed_bits_sum=4 * a,
                          expected_smoothed_bits_sum=np.stack([a, a]), smoothed_sq_dev_sum=np.stack([a, a]),
                          tokens_forwarded=10 * n, seconds=float(n))
    whole = merge_evaluations([part([3, 1]), part([4, 1, 5])])
    assert whole.unit_ids.tolist() == [3, 1, 4, 1, 5]
    assert whole.smoothed_bits[1].tolist() == [6, 2, 8, 2, 10]
    assert whole.tokens_forwarded == 50 and whole.seconds == 3.0


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path):
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun is not on PATH (it ships with torch)")
    common = ["--preset", "smoke", "--device", "cpu", "--quiet"]
    one = subprocess.run([sys.executable, str(ROOT / "scripts" / "bound.py"), *common, "--out", str(tmp_path / "one")],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert one.returncode == 0, one.stderr[-2000:]
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(ROOT / "scripts" / "bound.py"),
                          *common, "--out", str(tmp_path / "two")], capture_output=True, text=True, timeout=900,
                         cwd=ROOT)
    assert two.returncode == 0, two.stderr[-3000:]
    a = json.loads((tmp_path / "one" / "certificate.json").read_text())
    b = json.loads((tmp_path / "two" / "certificate.json").read_text())
    assert b["bound_bpd"] == pytest.approx(a["bound_bpd"], rel=1e-6)
    assert b["top1_error_bound"] == pytest.approx(a["top1_error_bound"], rel=1e-6)
    assert b["n"] == a["n"] and b["m"] == a["m"]
    verify = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify.py"), str(tmp_path / "two" /
                             "certificate.json"), "--quiet"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert verify.returncode == 0, verify.stderr
