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


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory) -> DataPaths:
    """The default sample catalogue (200 songs, real audio, listening log), generated once per session.

    Read-only: copy it (``shutil.copytree(sample_data.root, ...)``) before writing anything.
    Ground truth of the damage is at ``sample_data.sample_ground_truth``.
    """
    from sunorecsys.catalog.sample import generate_sample_catalogue

    root = tmp_path_factory.mktemp("sample") / "data"
    generate_sample_catalogue(root)
    return DataPaths(root)
