"""Bad input to scripts/bound.py: one clear line, exit code 2, and nothing left behind in --out."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    (d / "ok").mkdir()
    for i in range(20):
        (d / "ok" / f"{i:02d}.txt").write_text(f"{i}: in the beginning was the word, and the word was with god. " * 20)
    (d / "empty.txt").write_text("   \n")
    (d / "bad.jsonl").write_text('{"text": "fine"}\nnot json\n')
    return d


CASES = {
    "missing dataset": lambda d: ["--dataset", str(d / "nope.txt")],
    "empty file": lambda d: ["--dataset", str(d / "empty.txt")],
    "bad jsonl": lambda d: ["--dataset", str(d / "bad.jsonl")],
    "window/stride": lambda d: ["--dataset", str(d / "ok"), "--window", "128", "--stride", "48"],
    "negative lr": lambda d: ["--dataset", str(d / "ok"), "--lr", "-1"],
    "batch size 0": lambda d: ["--dataset", str(d / "ok"), "--batch-size", "0"],
    "unknown device": lambda d: ["--dataset", str(d / "ok"), "--device", "tpu"],
    "unknown projector": lambda d: ["--dataset", str(d / "ok"), "--projector", "gaussian"],
    "d > D": lambda d: ["--dataset", str(d / "ok"), "--intrinsic-dim", "100000000"],
    "track beyond the steps": lambda d: ["--dataset", str(d / "ok"), "--track", "50"],
}


EXPECTED = {"missing dataset": "does not exist", "empty file": "no non-empty documents", "bad jsonl": "jsonl",
            "window/stride": "stride 48 must divide window 128", "negative lr": "lr must be > 0",
            "batch size 0": "batch_size must be >= 1", "unknown device": "unknown device 'tpu'",
            "unknown projector": "unknown projector 'gaussian'", "d > D": "intrinsic",
            "track beyond the steps": "--track 50 needs at least 49 training steps"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_leaves_no_folder(case, text, tmp_path):
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "bound.py"), "--preset", "smoke", "--quiet",
                          "--out", str(out), *CASES[case](text)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2, res.stderr[-1500:]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-1500:]
    assert not out.exists(), f"{case}: left {sorted(p.name for p in out.rglob('*'))}"
    assert EXPECTED[case] in lines[0], lines[0]   # the intended check fired, not an earlier one
