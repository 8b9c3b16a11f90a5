"""The recommender's inputs from a data root: songs, listening log, quality scores.

Used by the ``sunorecsys recommend`` / ``evaluate`` commands and by the pipeline's assets, so both
read the same files the same way. Quality scores come from the guide-format scores file when it
exists (what the pipeline publishes), else from the warehouse ``quality_scores`` table, else none
(every song unscored: kept and flagged by the default policy).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from sunorecsys.paths import DataPaths

MODEL_NAME = "hybrid"


@dataclass
class TrainingInputs:
    songs: pd.DataFrame
    interactions: pd.DataFrame
    interaction_stats: dict
    quality_scores: dict[str, float] | None
    quality_source: str           # "scores_file", "warehouse", or "none"


def model_dir(paths: DataPaths):
    """Where the fitted hybrid recommender is saved: ``<models_dir>/hybrid``."""
    return paths.models_dir / MODEL_NAME


def load_quality_scores(paths: DataPaths) -> tuple[dict[str, float] | None, str]:
    from sunorecsys.quality.scores_file import load_scores
    from sunorecsys.recommenders.quality_filter import scores_from_frame

    if paths.flamingo_scores_file.exists():
        return load_scores(paths.flamingo_scores_file), "scores_file"
    from sunorecsys.warehouse.parquet import read_table

    table = read_table(paths.warehouse_dir, "quality_scores")
    if len(table) and "quality_score" in table:
        return scores_from_frame(table), "warehouse"
    return None, "none"


def load_training_inputs(paths: DataPaths) -> TrainingInputs:
    """Read ``processed/songs.parquet``, the listening log and the quality scores under ``paths``."""
    from sunorecsys.catalog.interactions import read_interactions

    if not paths.processed_songs.exists():
        raise FileNotFoundError(f"no songs table at {paths.processed_songs}: run `sunorecsys ingest` first")
    songs = pd.read_parquet(paths.processed_songs)
    interactions, stats = read_interactions(paths, known_song_ids=set(songs["song_id"].astype(str)))
    quality, source = load_quality_scores(paths)
    return TrainingInputs(songs, interactions, stats, quality, source)


def fit_from_paths(paths: DataPaths, **params):
    """A ``HybridRecommender(**params)`` fitted on the data root's songs, log and quality scores."""
    from sunorecsys.recommenders.hybrid import HybridRecommender

    inputs = load_training_inputs(paths)
    return HybridRecommender(**params).fit(inputs.songs, interactions=inputs.interactions,
                                           quality_scores=inputs.quality_scores)


def load_or_fit(paths: DataPaths):
    """(model, how): the saved model when ``<models_dir>/hybrid`` holds one, else a fresh fit."""
    from sunorecsys.recommenders.hybrid import HybridRecommender

    saved = model_dir(paths)
    if (saved / "manifest.json").exists():
        return HybridRecommender.load(saved), f"loaded {saved}"
    return fit_from_paths(paths), "fitted from " + str(paths.root)
