"""`llm-bounds card RUN_DIR`: a certificate as a model-card section, its YAML model-index metadata, and
the `llm-bounds` program (console script and `python -m llm_bounds`) that prints it."""
import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llm_bounds.certificate.card import model_card
from llm_bounds_cli.card import card_main
from llm_bounds_cli.main import COMMANDS, main

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[1]
GOLDEN = json.loads((ROOT / "tests" / "golden" / "smoke-certificate.json").read_text())


def front_matter(card: str) -> dict:
    """The YAML block between the card's first two `---` lines."""
    lines = card.splitlines()
    assert lines[0] == "---"
    end = lines.index("---", 1)
    return yaml.safe_load("\n".join(lines[1:end]))


def test_the_card_states_the_bound_its_terms_and_how_to_verify_it():
    card = model_card(GOLDEN, "runs/smoke")
    assert f"**{GOLDEN['bound_bits_per_byte']:.4f} bits per byte**" in card
    for row in GOLDEN["decomposition"]:
        assert f"| {row['stage']} | {row['bpd']:.4f} | {row['bits_per_byte']:.4f} |" in card
    assert f"{GOLDEN['message_bits']} bits" in card and GOLDEN["claims"]["statement"] in card
    assert "llm-bounds verify smoke/certificate.json" in card and GOLDEN["message_sha256"] in card
    assert "seeded random init" in card and "--unseen-dataset" not in card


def test_the_metadata_is_a_hugging_face_model_index():
    meta = front_matter(model_card(GOLDEN))
    (entry,) = meta["model-index"]
    assert entry["name"] == GOLDEN["model"]
    (result,) = entry["results"]
    assert result["task"]["type"] == "text-generation"
    assert result["dataset"]["type"] == "kjv" and result["dataset"]["name"]
    metrics = {m["type"]: m for m in result["metrics"] if m["type"].endswith("bound")}
    assert metrics["bits_per_byte_bound"]["value"] == GOLDEN["bound_bits_per_byte"]  # exactly: repr round-trips
    assert metrics["bits_per_token_bound"]["value"] == GOLDEN["bound_bpd"]
    assert metrics["top1_error_bound"]["value"] == GOLDEN["top1_error_bound"]
    assert metrics["bits_per_byte_bound"]["args"]["delta"] == GOLDEN["delta"]
    assert all(isinstance(m["name"], str) and m["name"] for m in result["metrics"])


def test_names_with_yaml_syntax_survive_the_metadata():
    name = 'me/a "model": [x] # not a comment'
    assert front_matter(model_card(GOLDEN, name=name))["model-index"][0]["name"] == name


def test_the_card_reads_the_certificate_generically_and_hides_local_folders():
    cert = copy.deepcopy(GOLDEN)
    cert["terms"]["complexity"]["hyperparameters"]["checkpoints"] = 8       # a grid a later version charges
    cert["checkpoint_choice"] = {"statement": "The reported checkpoint was chosen among 8."}
    cert["config"].update(dataset="/home/someone/private/unseen-2025.jsonl", dataset_unseen_by_weights=True)
    card = model_card(cert)
    assert "checkpoints, chosen among 8: 3.00 bits" in card
    assert "**Checkpoint choice.** The reported checkpoint was chosen among 8." in card
    assert "`--unseen-dataset`" in card and "unseen-2025.jsonl" in card and "/home/someone" not in card
    assert front_matter(card)["model-index"][0]["results"][0]["dataset"]["type"] == "unseen-2025"


def test_llm_bounds_card_prints_the_card_and_refuses_a_folder_without_one(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(ROOT / "tests" / "golden" / "smoke-certificate.json", run / "certificate.json")
    assert main(["card", str(run), "--name", "me/smoke"]) == 0
    out = capsys.readouterr().out
    assert out == model_card(GOLDEN, str(run), "me/smoke")
    assert card_main([str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("card: error: ") and err.count("\n") == 1


def test_the_program_dispatches_every_command_and_refuses_an_unknown_one(capsys):
    assert set(COMMANDS) == {"bound", "verify", "compare", "calc", "unseen-corpus", "card"}
    assert main(["nope"]) == 2 and "unknown command 'nope'" in capsys.readouterr().err
    assert main([]) == 2
    for command in COMMANDS:
        with pytest.raises(SystemExit) as done:
            main([command, "--help"])
        assert done.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: llm-bounds {command}")


def test_the_console_script_and_python_m_llm_bounds(tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"llm-bounds": "llm_bounds_cli.main:main"}
    shutil.copy(ROOT / "tests" / "golden" / "smoke-certificate.json", tmp_path / "certificate.json")
    res = subprocess.run([sys.executable, "-m", "llm_bounds", "card", str(tmp_path)], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    assert res.returncode == 0, res.stderr
    assert f"{GOLDEN['bound_bits_per_byte']:.4f} bits per byte" in res.stdout
