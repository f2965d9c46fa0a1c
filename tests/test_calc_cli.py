"""The calculator command: JSON output with every term, and one-line errors with exit code 2."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

CALC = [sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "calc.py")]
EXAMPLE = ["--level", "document", "--empirical", "10.0", "--complexity-bits", "100373", "--m", "8009762",
           "--n", "10000", "--alpha", "0.1", "--vocab-size", "50257", "--delta", "0.05"]


def run(*args):
    return subprocess.run(CALC + list(args), capture_output=True, text=True, timeout=120)


def test_example_hoeffding_and_best():
    hoeff = run(*EXAMPLE, "--method", "hoeffding")
    assert hoeff.returncode == 0, hoeff.stderr
    out = json.loads(hoeff.stdout)
    assert out["bound"] == pytest.approx(11.46815, abs=1e-4)
    for key in ("empirical", "subsample_term", "complexity_term", "loss_range", "delta_complexity",
                "delta_subsample", "total_bits", "m", "n"):
        assert key in out
    best = json.loads(run(*EXAMPLE, "--method", "best").stdout)
    assert best["bound"] <= out["bound"]


def test_token_level_with_huge_m_and_an_alpha_grid():
    args = [a if a != "8009762" else "9.04e9" for a in EXAMPLE]
    args[args.index("--level") + 1] = "token"
    args[args.index("--alpha") + 1] = "0.01,0.1,0.5"
    args[args.index("--empirical") + 1] = "9.0,10.0,11.0"
    res = run(*args)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["m"] == 9040000000 and len(out["per_alpha"]) == 3
    assert out["grid_bits"] == pytest.approx(1.5849625007)
    assert out["bound"] == min(p["bound"] for p in out["per_alpha"])


@pytest.mark.parametrize("change", [
    ("--delta", "0"), ("--delta", "1.2"), ("--alpha", "1.0"), ("--alpha", "0"), ("--empirical", "nan"),
    ("--empirical", "-2"), ("--empirical", "25"), ("--complexity-bits", "-1"), ("--n", "0"), ("--m", "-5"),
    ("--level", "word"), ("--vocab-size", "1"),
])
def test_bad_input_is_one_line_exit_2(change):
    args = list(EXAMPLE)
    flag, value = change
    args[args.index(flag) + 1] = value
    res = run(*args)
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr and "error" in lines[0]


def test_an_alpha_grid_needs_one_empirical_value_per_alpha():
    """One --empirical for the whole grid would let the grid pick an α whose real risk is higher."""
    args = list(EXAMPLE)
    args[args.index("--alpha") + 1] = "0.01,0.1"
    res = run(*args)
    assert res.returncode == 2 and res.stdout == ""
    assert len(res.stderr.strip().splitlines()) == 1 and "one value per alpha" in res.stderr
    args[args.index("--empirical") + 1] = "10.5,10.0"
    ok = run(*args, "--subsample-variance", "4.0")
    assert ok.returncode == 2 and "--subsample-variance needs one value per alpha" in ok.stderr
    ok = run(*args, "--subsample-variance", "4.1,4.0")
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["per_alpha"]) == 2
