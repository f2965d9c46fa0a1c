"""Presets, derived seeds and the command line's choice of tokenizer."""
import pytest

from llm_bounds_cli.bound import bound_parser, config_from_args
from llm_bounds.core.errors import BoundInputError
from llm_bounds.certificate.config import PAPER_ALPHAS, RunConfig, preset_config
from llm_bounds.core.seeds import derive_seed


def test_paper_preset_has_the_papers_hyperparameters():
    cfg = preset_config("paper")
    assert (cfg.intrinsic_dim, cfg.lora_rank, cfg.lr, cfg.levels, cfg.delta, cfg.n_samples) == \
        (50_000, 4, 5e-3, (11,), 0.05, 10_000)
    assert cfg.alphas == PAPER_ALPHAS == (1e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.25, 0.5)


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = preset_config("smoke", seed=3)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(BoundInputError):
        RunConfig.from_dict({**cfg.to_dict(), "lerning_rate": 1.0})


def test_derived_seeds_are_distinct_and_stable():
    seeds = {derive_seed(0, p) for p in ("init", "projection", "train", "sample", "lora")}
    assert len(seeds) == 5
    assert derive_seed(7, "sample") == derive_seed(7, "sample") != derive_seed(8, "sample")


@pytest.mark.parametrize("bad", [dict(delta=1.5), dict(alphas=(0.1, 0.1)), dict(levels=(1,)), dict(n_samples=1),
                                 dict(quant_method="lloyd"), dict(update_scales="rows")])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(BoundInputError):
        preset_config("smoke", **bad)


def test_tokenizer_defaults_and_tokenizer_directories(gpt2_tokenizer_dir):
    def cfg(*argv):
        return config_from_args(bound_parser().parse_args(list(argv)))
    assert cfg().tokenizer == "bytes"
    assert cfg("--model", "gpt2", "--init", "scratch").tokenizer == "gpt2"  # shipped with the package
    c = cfg("--model", "gpt2", "--init", "scratch", "--tokenizer", str(gpt2_tokenizer_dir))
    assert c.tokenizer == "gpt2" and c.tokenizer_dir == str(gpt2_tokenizer_dir.resolve())
    with pytest.raises(BoundInputError):
        cfg("--model", "no-such-model-here")
