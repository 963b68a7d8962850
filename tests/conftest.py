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
