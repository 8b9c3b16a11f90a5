"""Shared fixtures. Heavy fixtures are session-scoped: build once, read many times."""

from __future__ import annotations

import os
import signal

# Never reach for the hub in tests: weights come from tiny models built offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from sunorecsys.paths import DataPaths


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
    from sunorecsys.sample.catalogue import generate_sample_catalogue

    root = tmp_path_factory.mktemp("sample") / "data"
    generate_sample_catalogue(root)
    return DataPaths(root)


@pytest.fixture(scope="session")
def tiny_flamingo(tmp_path_factory) -> dict:
    """Tiny offline checkpoints (tests/tiny_models.py), built once: ``{(kind, flavour): Path}`` with
    kind in audioflamingo3 / musicflamingo and flavour 'random' (garbage replies) or 'scripted'
    (always the same parseable JSON reply)."""
    from tiny_models import KINDS, build_scripted_flamingo, build_tiny_flamingo

    root = tmp_path_factory.mktemp("tiny_flamingo")
    out = {}
    for kind in KINDS:
        out[(kind, "random")] = build_tiny_flamingo(root / f"{kind}-random", kind)
        out[(kind, "scripted")] = build_scripted_flamingo(root / f"{kind}-scripted", kind)
    return out


@pytest.fixture(scope="session")
def small_catalogue(tmp_path_factory) -> DataPaths:
    """A 12-song sample catalogue with real audio (the sample generator at a small size; a few seconds).

    Read-only, like sample_data.
    """
    from sunorecsys.sample.catalogue import generate_sample_catalogue

    root = tmp_path_factory.mktemp("small_sample") / "data"
    generate_sample_catalogue(root, n_songs=12, days=2, n_users=5)
    return DataPaths(root)


@pytest.fixture
def sigint_reaches_children():
    """Children started by the test get SIGINT's default action, as from a terminal.

    A pytest started in the background by a non-interactive shell (``cmd &``) has SIGINT ignored,
    and an ignored signal stays ignored across fork+exec: a test sending Ctrl-C to a child would
    then see it carry on. A handled signal is reset to the default at exec, so handle it here.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)
