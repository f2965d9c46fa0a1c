"""compare.py: the same settings over several sizes, written as a table, a CSV and a plot."""
import csv

import pytest

from llm_bounds.core.errors import BoundInputError

from llm_bounds.certificate.sweep import compare_models
from llm_bounds_cli.compare import plot_png


def test_compare_writes_table_csv_and_png(tmp_path):
    rows = compare_models(["gpt2-l2-d64", "gpt2-l1-d32"], tmp_path, "smoke", progress=False, plot=plot_png,
                          max_steps=5, n_documents=0, n_samples=16, heldout_samples=8)
    assert [r["model"] for r in rows] == ["gpt2-l1-d32", "gpt2-l2-d64"]  # sorted by parameters
    assert rows[0]["params_total"] < rows[1]["params_total"]
    table = (tmp_path / "comparison.md").read_text()
    assert table.startswith("Budget: the training steps of the smoke preset for every model.") and "gpt2-l1-d32" in table
    assert table.count("\n") == 6 and [r["train_steps"] for r in rows] == [5, 5]
    with open(tmp_path / "comparison.csv") as f:
        parsed = list(csv.DictReader(f))
    assert [float(r["bound_bpd"]) for r in parsed] == [r["bound_bpd"] for r in rows]
    for r in rows:  # the decomposition in bits per byte adds up to the bound
        assert r["empirical_bits_per_byte"] + r["subsample_term_bits_per_byte"] + r["complexity_term_bits_per_byte"] \
            == pytest.approx(r["bound_bits_per_byte"], rel=1e-12)
        assert r["zero_shot_heldout_bits_per_byte"] is None and r["seconds"] > 0  # seeded models: no zero-shot
    png = (tmp_path / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    for r in rows:
        assert (tmp_path / r["model"] / "certificate.json").is_file()


def test_equal_flops_budget_gives_the_smaller_model_more_steps(tmp_path):
    from llm_bounds.certificate.sweep import Budget, base_parameters
    from llm_bounds.certificate.config import preset_config

    small, large = (base_parameters(preset_config("smoke", model=m)) for m in ("gpt2-l1-d32", "gpt2-l2-d64"))
    budget = Budget("flops", 6.0 * large * 4 * 128 * 6)  # six steps of the larger model (batch 4 x 128 tokens)
    rows = compare_models(["gpt2-l2-d64", "gpt2-l1-d32"], tmp_path, "smoke", progress=False, budget=budget,
                          n_documents=0, n_samples=16, heldout_samples=8)
    steps = {r["model"]: r["train_steps"] for r in rows}
    assert steps["gpt2-l2-d64"] == 6 and steps["gpt2-l1-d32"] == int(6 * large // small)
    assert all(r["train_flops"] <= budget.value for r in rows)
    assert all(r["train_flops"] > budget.value - 6.0 * p * 4 * 128 for r, p in zip(rows, (small, large)))
    assert (tmp_path / "comparison.md").read_text().startswith(
        f"Budget: {budget.value:.4g} training flops per model (the smoke preset for every model).")
    with pytest.raises(BoundInputError, match="no training step"):
        compare_models(["gpt2-l1-d32"], tmp_path / "x", "smoke", progress=False, budget=Budget("tokens", 10))
    with pytest.raises(BoundInputError, match="unknown budget"):
        Budget("hours", 1)
