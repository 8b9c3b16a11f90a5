"""Resumable scoring runs shared by the guide's script and ``sunorecsys score``.

A run reads the songs, scores them cache-first, and writes the guide's scores file atomically at
the end and every ``write_every_s`` seconds in between (and on Ctrl-C). Finished songs survive a
kill in the per-song cache, which the next run reads back instead of scoring again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from sunorecsys.paths import DataPaths
from sunorecsys.quality.base import ScoreResult
from sunorecsys.quality.blend import combine_quality_scores
from sunorecsys.quality.export import guide_entries
from sunorecsys.quality.results import results_to_frame
from sunorecsys.quality.scores_file import write_scores_file


def load_songs(source: str | os.PathLike | list | None, paths: DataPaths) -> tuple[pd.DataFrame, int]:
    """Songs to score and the number of rejected catalogue records.

    ``source``: catalogue file(s)/folder (raw Suno JSON, read by the catalogue's own reader), or a
    ``.parquet`` songs table; None: the processed songs table if present, else the raw folder.
    """
    from sunorecsys.catalog.ingest import find_catalogue_files, read_catalogue

    if source is None:
        if paths.processed_songs.is_file():
            return pd.read_parquet(paths.processed_songs), 0
        source = find_catalogue_files(paths.raw_dir)
        if not source:
            raise FileNotFoundError(f"no catalogue files in {paths.raw_dir} and no {paths.processed_songs}")
    if not isinstance(source, list) and str(source).endswith(".parquet"):
        return pd.read_parquet(source), 0
    result = read_catalogue(source)
    return result.songs, len(result.rejected)


def write_flamingo_output(results: list[ScoreResult], songs: pd.DataFrame, output: str | os.PathLike) -> int:
    """Write the guide's scores file for these results (atomic); returns the number of entries."""
    frame = results_to_frame(results)
    blended = combine_quality_scores(flamingo=frame)
    entries = guide_entries(blended, flamingo_df=frame, songs_df=songs)
    write_scores_file(entries, output)
    return len(entries)


def run_flamingo_scoring(scorer: Any, songs: pd.DataFrame, *, output: str | os.PathLike,
                         cache_dir: str | os.PathLike | None, paths: DataPaths, limit: int | None = None,
                         progress: bool = True, write_every_s: float = 60.0) -> dict[str, Any]:
    """Score ``songs`` (first ``limit``) with a MusicFlamingoQualityScorer, writing ``output``.

    Returns the run summary (songs, cached, scored, failed, model_loaded, entries_written, ...).
    On KeyboardInterrupt the output is written for what finished, then the interrupt propagates.
    """
    if limit is not None:
        songs = songs.head(limit)
    latest: list[ScoreResult] = []
    last_write = time.monotonic()

    def on_batch(done: list[ScoreResult]) -> None:
        nonlocal latest, last_write
        latest = done
        if time.monotonic() - last_write >= write_every_s:
            write_flamingo_output(done, songs, output)
            last_write = time.monotonic()

    try:
        results = scorer.score_songs(songs, cache_dir=cache_dir, progress=progress, paths=paths,
                                     on_batch=on_batch)
    except KeyboardInterrupt:
        if latest:
            write_flamingo_output(latest, songs, output)
        raise
    summary = dict(scorer.last_run)
    summary["entries_written"] = write_flamingo_output(results, songs, output)
    summary["output"] = str(Path(output))
    summary["scorer_version"] = scorer.version
    failures: dict[str, int] = {}
    for r in results:
        if r.status == "failed":
            key = (r.error or "unknown").split(":")[0]
            failures[key] = failures.get(key, 0) + 1
    summary["failure_reasons"] = failures
    return summary
