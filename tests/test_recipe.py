"""Recipes (#24): without --preset, a run's settings come from the model's kind and size, the device
and the training set's length, by the few rules of llm_bounds.certificate.recipe; explicit flags
always win; --dry-run prints the plan and an estimate timed on the model, and writes nothing."""
import json
import os

import pytest

from llm_bounds.certificate import context
from llm_bounds.certificate.config import PRESETS, preset_config
from llm_bounds.certificate.recipe import (BUDGETS, MAX_STEPS, MIN_SAMPLES, MIN_STEPS, RECIPE_TUNING_CHARGE, Facts,
                                           choose_recipe, model_kind, recipe_config)
from llm_bounds.core.errors import BoundInputError
from llm_bounds.subspace.registry import state_sha256
from llm_bounds_cli.bound import bound_main

from test_architectures import save_tiny

SMOL = Facts(kind="pretrained", params=134_515_008, vocab_size=49_152, device="cpu", context=8192, train_tokens=240_000)


def test_model_kinds():
    assert model_kind("nplm-k2-e8-h32", None) == "ngram"
    assert model_kind("gpt2-l2-d64", None) == "scratch" and model_kind("gpt2", "scratch") == "scratch"
    assert model_kind("gpt2", None) == "pretrained" and model_kind("smollm2-135m-instruct", None) == "pretrained"


def test_a_preset_or_the_default_model_decides_alone():
    assert choose_recipe("smoke", "gpt2", SMOL).values == PRESETS["smoke"]
    for model in (None, "nplm-k4-e16-h128"):
        r = choose_recipe(None, model, None)
        assert r.name == "default" and r.values == PRESETS["default"]


def test_a_pretrained_checkpoint_on_a_cpu_gets_sublora_at_the_cpu_budget():
    r = choose_recipe(None, "smollm2-135m-instruct", SMOL)
    v = r.values
    assert r.name == "pretrained-cpu" and v["subspace_params"] == "lora" and v["target_modules"] == ("auto",)
    steps = int(BUDGETS["cpu"].train_flops // (6 * SMOL.params * v["batch_size"] * v["window"]))
    assert v["max_steps"] == max(MIN_STEPS, min(MAX_STEPS["cpu"], steps))
    assert v["n_samples"] == "all"  # 240k tokens fit the evaluation budget: no subsample term
    assert "134.5M parameters on cpu" in r.reason and "every training token scored" in r.reason
    assert v["intrinsic_dim"] == SMOL.train_tokens // 4000 == 60  # one coordinate per 4,000 training tokens
    assert choose_recipe(None, "m", Facts("pretrained", SMOL.params, 49_152, "cpu", 8192, 10 ** 8)).values[
        "intrinsic_dim"] == 1000  # capped on a CPU
    assert choose_recipe(None, "m", Facts("pretrained", SMOL.params, 49_152, "cpu", 8192, 10_000)).values[
        "intrinsic_dim"] == 32  # and at least 32
    # twice the parameters: half the training steps; a corpus beyond the budget is subsampled
    big = choose_recipe(None, "x", Facts("pretrained", 2 * SMOL.params, 262_144, "cpu", 32_768, 10 ** 7)).values
    near = choose_recipe(None, "x", Facts("pretrained", 2 * SMOL.params, 262_144, "cpu", 32_768, 200_000)).values
    assert near["n_samples"] == "all"  # 782 units cost about 1.1 times the budget's 728 windows: all of them
    assert big["max_steps"] in (v["max_steps"] // 2, v["max_steps"] // 2 + 1)
    affordable = BUDGETS["cpu"].eval_flops / (2 * 2 * SMOL.params * big["window"])
    assert big["n_samples"] == int(affordable) >= MIN_SAMPLES


def test_sizes_devices_and_contexts():
    huge = choose_recipe(None, "x", Facts("pretrained", 7 * 10 ** 9, 32_000, "cpu", 4096, 10 ** 6)).values
    assert huge["max_steps"] == MIN_STEPS and huge["n_samples"] == MIN_SAMPLES  # an honest, small budget
    tiny = choose_recipe(None, "x", Facts("scratch", 100_000, 257, "cpu", 128, 10 ** 6))
    assert tiny.name == "scratch-cpu" and tiny.values["max_steps"] == MAX_STEPS["cpu"]
    assert tiny.values["window"] == 128 and tiny.values["stride"] == 128  # within the model's context
    gpu = choose_recipe(None, "gpt2", Facts("pretrained", 124_439_808, 50_257, "cuda", 1024, 9 * 10 ** 9))
    assert gpu.name == "pretrained-cuda" and gpu.values["intrinsic_dim"] == 50_000  # OpenWebText-sized: the paper's d
    assert gpu.values["max_steps"] == 10_000 and gpu.values["n_samples"] == 10_000  # the paper's scale
    ngram = choose_recipe(None, "nplm-k2-e4-h8", Facts("ngram", 3000, 257, "cpu", None, 10 ** 6))
    assert ngram.name == "ngram" and ngram.values["intrinsic_dim"] == 2400 and ngram.values["model"] == "nplm-k2-e4-h8"


def test_recipes_tuned_on_the_certified_data_charge_their_tuning():
    """The rules' numbers were chosen by comparing runs on the KJV and the unseen corpus: those recipes
    charge 2^10 configurations in K; the paper's recipe (scratch-cuda) was fixed beforehand and charges none."""
    charged = {}
    for kind, device in (("scratch", "cpu"), ("scratch", "cuda"), ("pretrained", "cpu"), ("pretrained", "cuda")):
        r = choose_recipe(None, "x", Facts(kind, SMOL.params, 49_152, device, 8192, 10 ** 6))
        charged[r.name] = recipe_config(r, {}).preset_tuning
    assert charged == {"scratch-cpu": RECIPE_TUNING_CHARGE, "scratch-cuda": 1, "pretrained-cpu": RECIPE_TUNING_CHARGE,
                       "pretrained-cuda": RECIPE_TUNING_CHARGE} and RECIPE_TUNING_CHARGE == 2 ** 10
    ngram = choose_recipe(None, "nplm-k2-e4-h8", Facts("ngram", 3000, 257, "cpu", None, 10 ** 6))
    assert ngram.values["preset_tuning"] == PRESETS["default"]["preset_tuning"] == 2 ** 10


def test_the_pretrained_presets_charge_their_tuning_and_the_default_and_smoke_are_unchanged():
    """#29: the pretrained presets' values and window-prefix rule were chosen on the corpora they certify."""
    charged = {name: preset_config(name).preset_tuning for name in PRESETS}
    assert charged == {"smoke": 1, "default": 2 ** 10, "paper": 1, "pretrained": RECIPE_TUNING_CHARGE,
                       "pretrained-smoke": RECIPE_TUNING_CHARGE}


def test_a_given_window_or_a_short_context_keeps_the_grid_valid():
    given = choose_recipe(None, "m", SMOL, {"window": 128, "batch_size": 2}).values
    assert (given["window"], given["stride"], given["batch_size"]) == (128, 128, 2)
    steps = int(BUDGETS["cpu"].train_flops // (6 * SMOL.params * 2 * 128))
    assert given["max_steps"] == max(MIN_STEPS, min(MAX_STEPS["cpu"], steps))  # the steps of the given shape
    gpu = choose_recipe(None, "m", Facts("pretrained", 10 ** 8, 32_000, "cuda", 1024, 10 ** 8, prefixed=True)).values
    assert (gpu["window"], gpu["stride"]) == (1022, 511)  # one position for the prefix; the stride still divides
    assert choose_recipe(None, "m", SMOL, {"window": 128, "stride": 64}).values["stride"] == 64


def test_explicit_flags_win_over_the_recipe():
    r = choose_recipe(None, "smollm2-135m-instruct", SMOL)
    cfg = recipe_config(r, {"model": "smollm2-135m-instruct", "max_steps": 7, "n_samples": 100, "lr": 1e-3})
    assert (cfg.max_steps, cfg.n_samples, cfg.lr, cfg.preset) == (7, 100, 1e-3, "pretrained-cpu")
    assert cfg.recipe_reason == r.reason and cfg.intrinsic_dim == r.values["intrinsic_dim"]
    assert recipe_config(r, {"model": "m", "intrinsic_dim": 500}).intrinsic_dim == 500
    assert recipe_config(choose_recipe("smoke", None, None), {"seed": 3}) == preset_config(
        "smoke", seed=3, recipe_reason="--preset smoke")
    with pytest.raises(BoundInputError, match="unknown preset"):
        choose_recipe("fast", None, None)


def run_cli(argv, capsys):
    rc = bound_main(argv)
    return rc, capsys.readouterr()


def test_dry_run_of_no_flags_is_exactly_the_default_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLM_BOUNDS_CACHE", str(tmp_path / "cache"))
    rc, out = run_cli(["--dry-run"], capsys)
    assert rc == 0, out.err
    plan = json.loads(out.out)
    assert plan["recipe"]["name"] == "default"
    expected = preset_config("default").to_dict()
    described = ("recipe_reason", "window_prefix")  # why, and the resolved 'auto' prefix (none: a seeded model)
    assert {k: v for k, v in plan["config"].items() if k not in described} == \
        {k: v for k, v in expected.items() if k not in described}
    assert plan["config"]["window_prefix"] == "none" and expected["window_prefix"] == "auto"
    est = plan["estimate"]
    assert est["train_tokens"] == (6000 + 500) * 16 * 256 and est["eval_tokens"] > 3_900_000 and est["seconds"] > 0
    assert est["measured"]["train_step_s"] > 0 and est["cheaper"] is None
    assert os.listdir(tmp_path) == []  # no run folder, no cache


def test_a_tiny_pretrained_folder_gets_the_pretrained_recipe(tmp_path, capsys, monkeypatch):
    folder = save_tiny("llama", tmp_path / "tiny-llama")
    text = tmp_path / "text.txt"
    text.write_text("\n\n".join(f"document {i}: the quick brown fox jumps over the lazy dog. " * 8 for i in range(30)))
    rc, out = run_cli(["--model", str(folder), "--tokenizer", "bytes", "--dataset", str(text), "--separator", "\\n\\n",
                       "--dry-run"], capsys)
    assert rc == 0, out.err
    plan = json.loads(out.out)
    cfg = plan["config"]
    assert plan["recipe"]["name"] == "pretrained-cpu" and cfg["subspace_params"] == "lora"
    assert cfg["window"] == 128 and cfg["n_samples"] == "all" and cfg["max_steps"] == MAX_STEPS["cpu"]
    assert plan["estimate"]["seconds"] > 0 and plan["estimate"]["cheaper"] is None
    # an explicit flag wins, and the run certifies and names its recipe
    out_dir = tmp_path / "run"
    hashed = []
    monkeypatch.setattr(context, "state_sha256", lambda lm: hashed.append(lm) or state_sha256(lm))
    rc, out = run_cli(["--model", str(folder), "--tokenizer", "bytes", "--dataset", str(text), "--separator", "\\n\\n",
                       "--max-steps", "3", "--out", str(out_dir), "--quiet"], capsys)
    assert rc == 0, out.err
    cert = json.loads((out_dir / "certificate.json").read_text())
    # the weights are hashed once per run, for the run key and the certificate alike
    assert len(hashed) == 1 and cert["weights"]["sha256"] == state_sha256(hashed[0])
    assert json.loads((out_dir / "stages" / "key.json").read_text())["weights"] == cert["weights"]["sha256"]
    assert cert["recipe"]["name"] == "pretrained-cpu" and "pretrained model" in cert["recipe"]["reason"]
    assert cert["config"]["max_steps"] == 3 and cert["informational"]["estimate"]["seconds"] > 0


def test_an_estimate_over_an_hour_names_a_cheaper_choice(tmp_path, capsys, monkeypatch):
    import llm_bounds.certificate.estimate as estimate

    monkeypatch.setattr(estimate, "train_step_seconds", lambda ctx: (10.0, 0.0))  # a slow machine
    rc, out = run_cli(["--preset", "smoke", "--max-steps", "1000", "--dry-run"], capsys)
    assert rc == 0, out.err
    cheaper = json.loads(out.out)["estimate"]["cheaper"]
    assert cheaper.startswith("cheaper: --max-steps ") and "--preset smoke" in cheaper
