"""Where the data lives.

Everything is under one data root: ``$SUNORECSYS_DATA_DIR`` if set, else ``./data``.
The layout follows ARCHITECTURE.md so that the guide's snippets (which read
``data/processed/songs.parquet`` and ``data/music_flamingo_scores.json``) work unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_data_root() -> Path:
    return Path(os.environ.get("SUNORECSYS_DATA_DIR", "data"))


AUDIO_ROOTS_ENV = "SUNORECSYS_AUDIO_ROOTS"


@dataclass(frozen=True)
class DataPaths:
    root: Path
    # Folders besides ``<root>/audio`` that a song's ``audio_path`` may point into.
    extra_audio_roots: tuple[Path, ...] = ()

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None) -> DataPaths:
        return cls(Path(root) if root is not None else default_data_root())

    @property
    def raw_dir(self) -> Path:
        """Catalogue files (``*.json``, ``*.jsonl``) and ``interactions.{csv,parquet,jsonl}``."""
        return self.root / "raw"

    @property
    def audio_dir(self) -> Path:
        """``<song_id>.<ext>`` audio files; fetched audio is kept here too."""
        return self.root / "audio"

    @property
    def audio_roots(self) -> tuple[Path, ...]:
        """Folders audio may be read from: ``audio_dir``, then the folders listed in
        ``$SUNORECSYS_AUDIO_ROOTS`` (``os.pathsep``-separated, read at call time), then
        ``extra_audio_roots``. A song's ``audio_path`` resolving (symlinks followed) outside all of
        them is refused."""
        listed = [Path(p) for p in os.environ.get(AUDIO_ROOTS_ENV, "").split(os.pathsep) if p.strip()]
        return (self.audio_dir, *listed, *(Path(p) for p in self.extra_audio_roots))

    @property
    def warehouse_dir(self) -> Path:
        """Parquet tables: ``<asset>/date=YYYY-MM-DD/part-0.parquet`` or ``<asset>/part-0.parquet``."""
        return self.root / "warehouse"

    @property
    def processed_songs(self) -> Path:
        """The whole songs table in one file (the path the guide's snippets read)."""
        return self.root / "processed" / "songs.parquet"

    @property
    def rejected_songs(self) -> Path:
        return self.root / "processed" / "rejected_songs.parquet"

    @property
    def flamingo_cache_dir(self) -> Path:
        """The guide's per-song cache: ``music_flamingo_scores/<song_id>.json``."""
        return self.root / "music_flamingo_scores"

    @property
    def signal_cache_dir(self) -> Path:
        """Per-song signal-check rows of ``sunorecsys score --backend signal`` (``<song_id>.json``)."""
        return self.root / "signal_checks"

    @property
    def audiobox_cache_dir(self) -> Path:
        return self.root / "audiobox_scores"

    @property
    def flamingo_scores_file(self) -> Path:
        """The guide's output file."""
        return self.root / "music_flamingo_scores.json"

    @property
    def audiobox_scores_file(self) -> Path:
        return self.root / "audiobox_scores.json"

    @property
    def models_dir(self) -> Path:
        """Fitted recommenders (arrays + JSON manifest, never pickle)."""
        return self.root / "models"

    @property
    def warehouse_db(self) -> Path:
        """Views-only DuckDB file for analysts, rebuilt by the pipeline in one short step."""
        return self.root / "warehouse.duckdb"

    @property
    def sample_ground_truth(self) -> Path:
        """Damage applied by the sample generator. The pipeline never reads it."""
        return self.root / "sample_ground_truth.json"

    def table_dir(self, table: str) -> Path:
        return self.warehouse_dir / table
