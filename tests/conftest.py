"""Shared test fixtures: where the real tokenizer and corpora live (../shared/data)."""
import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is missing: the real tokenizer/corpora live in ../shared/data beside the project")
    return SHARED_DATA


@pytest.fixture(scope="session")
def gpt2_tokenizer_dir(shared_data) -> Path:
    d = shared_data / "gpt2-tokenizer"
    if not (d / "vocab.json").is_file():
        pytest.skip(f"{d} has no vocab.json: the GPT-2 tokenizer files are not available here")
    return d


# Nothing may download at test time: the hub is unreachable here and must not be asked
# (subprocesses started by the tests inherit this).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
