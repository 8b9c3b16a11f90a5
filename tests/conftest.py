"""Shared fixtures. Heavy fixtures are session-scoped: build once, read many times."""

from __future__ import annotations

import os

# Never reach for the hub in tests: weights come from tiny models built offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

from sunorecsys.paths import DataPaths  # noqa: E402


@pytest.fixture
def tmp_data(tmp_path) -> DataPaths:
    """An empty data root for one test."""
    return DataPaths(tmp_path / "data")
