"""Pipeline outputs for the recommender tests, computed once per session from ``sample_data``.

The quality scores file is produced by the pipeline code path (run_audio_checks ->
combine_quality_scores -> guide_entries -> write_scores_file), never written by hand, and the
songs table by the real ingest (read_catalogue + write_songs). ``work_dir`` is a cwd for the guide's
snippets: ``data/processed/songs.parquet``, ``data/music_flamingo_scores.json``,
``data/raw/interactions.csv`` and ``data/audio`` (a link to the sample's audio) under it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sunorecsys.paths import DataPaths

_CACHE: dict[str, "PipelineOutputs"] = {}


@dataclass(frozen=True)
class PipelineOutputs:
    work_dir: Path                 # cwd for the guide's snippets
    paths: DataPaths               # work_dir / "data"
    songs: pd.DataFrame            # as read back from data/processed/songs.parquet
    interactions: pd.DataFrame
    audio_checks: pd.DataFrame
    quality: pd.DataFrame          # combine_quality_scores output
    scores_file: Path
    damaged: frozenset[str]        # ground truth: songs the generator damaged
    ground_truth: dict


def pipeline_outputs(sample_data: DataPaths, tmp_root: Path) -> PipelineOutputs:
    key = str(sample_data.root)
    if key in _CACHE:
        return _CACHE[key]
    from sunorecsys.audio.checks import run_audio_checks
    from sunorecsys.catalog.ingest import find_catalogue_files, read_catalogue, write_songs
    from sunorecsys.catalog.interactions import read_interactions
    from sunorecsys.quality.blend import combine_quality_scores
    from sunorecsys.quality.export import guide_entries
    from sunorecsys.quality.scores_file import write_scores_file

    work = Path(tmp_root) / "guide_cwd"
    paths = DataPaths(work / "data")
    paths.raw_dir.mkdir(parents=True, exist_ok=True)
    for f in sample_data.raw_dir.iterdir():
        shutil.copy2(f, paths.raw_dir / f.name)
    os.symlink(sample_data.audio_dir.resolve(), paths.audio_dir)
    result = read_catalogue(find_catalogue_files(paths.raw_dir))
    write_songs(result, paths)
    songs = pd.read_parquet(paths.processed_songs)
    checks = run_audio_checks(songs, sample_data, workers=2, fetch=False)
    quality = combine_quality_scores(audio_checks=checks)
    scores_file = write_scores_file(guide_entries(quality, songs_df=songs), paths.flamingo_scores_file)
    interactions, _ = read_interactions(paths, known_song_ids=set(songs["song_id"]))
    truth = json.loads(sample_data.sample_ground_truth.read_text())
    damaged = frozenset(s for s, v in truth.items() if v.get("damage"))
    out = PipelineOutputs(work, paths, songs, interactions, checks, quality, scores_file, damaged, truth)
    _CACHE[key] = out
    return out
