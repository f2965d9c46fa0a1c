"""compare.py: the same settings over several sizes, written as a table, a CSV and a plot."""
import csv

from llm_bounds.certificate.sweep import compare_models
from llm_bounds_cli.compare import plot_png


def test_compare_writes_table_csv_and_png(tmp_path):
    rows = compare_models(["gpt2-l2-d64", "gpt2-l1-d32"], tmp_path, "smoke", progress=False, plot=plot_png,
                          max_steps=5, n_documents=0, n_samples=16, heldout_samples=8)
    assert [r["model"] for r in rows] == ["gpt2-l1-d32", "gpt2-l2-d64"]  # sorted by parameters
    assert rows[0]["params_total"] < rows[1]["params_total"]
    table = (tmp_path / "comparison.md").read_text()
    assert table.count("\n") == 4 and "gpt2-l1-d32" in table
    with open(tmp_path / "comparison.csv") as f:
        parsed = list(csv.DictReader(f))
    assert [float(r["bound_bpd"]) for r in parsed] == [r["bound_bpd"] for r in rows]
    png = (tmp_path / "comparison.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    for r in rows:
        assert (tmp_path / r["model"] / "certificate.json").is_file()
