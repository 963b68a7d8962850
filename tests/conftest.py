"""Shared fixtures: the benchmark data folder (skip cleanly when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from toolgym.data import shared_data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared benchmark data folder; tests that need it skip with the reason when it is absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("benchmark data not found: set TOOLGYM_DATA_DIR to the project's shared/data folder")
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Keep torch to one thread for a module (`pytestmark = pytest.mark.usefixtures(...)`): see
    tests/tiny_model_fixture.py for why."""
    from tiny_model_fixture import single_torch_thread

    with single_torch_thread():
        yield


@pytest.fixture(scope="module")
def engine(one_torch_thread):
    """An HF engine over the session's tiny chat model (batch size 8)."""
    from tiny_model_fixture import tiny_model_path

    from toolgym.agents.hf_engine import HFEngine

    return HFEngine.load(tiny_model_path(), batch_size=8)
