"""The guide's ``QualityFilter``: keep songs whose quality score reaches a threshold.

Scores come from a guide-format scores file (``quality_scores_file``, usually
``data/music_flamingo_scores.json`` written by the pipeline: the blended quality score), from a
mapping / DataFrame given directly (``quality_scores``), or are computed on the fly with Music
Flamingo (``use_music_flamingo=True``: the scorer's per-song cache is read first, the model is
loaded only for uncached songs).

Songs without a score follow ``missing_quality``: "keep" (default; they are listed in
``unscored_`` so callers can flag them) or "drop". Industry practice for AI-generated catalogues
is to keep low-quality songs in the catalogue but out of algorithmic recommendation: this filter
only decides what may be recommended.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from sunorecsys.recommenders.fusion import MISSING_QUALITY_POLICIES

DEFAULT_MUSIC_FLAMINGO_MODEL_ID = "nvidia/music-flamingo-hf"


def scores_from_frame(frame: pd.DataFrame) -> dict[str, float]:
    """``{song_id: score}`` from a quality table (``quality_score`` or ``overall_quality_score`` column)."""
    column = next((c for c in ("quality_score", "overall_quality_score") if c in frame), None)
    if column is None:
        raise ValueError("quality scores table needs a 'quality_score' or 'overall_quality_score' column; "
                         f"got {list(frame.columns)}")
    values = pd.to_numeric(frame[column], errors="coerce")
    ok = values.notna()
    return dict(zip(frame.loc[ok, "song_id"].astype(str), values[ok].astype(float)))


def as_score_mapping(quality_scores) -> dict[str, float]:
    """Accept a DataFrame, a mapping ``{song_id: score}`` or guide entries ``{song_id: {"scores": ...}}``."""
    if quality_scores is None:
        return {}
    if isinstance(quality_scores, pd.DataFrame):
        return scores_from_frame(quality_scores)
    out: dict[str, float] = {}
    for song_id, value in dict(quality_scores).items():
        if isinstance(value, Mapping):
            value = value.get("scores", value).get("overall_quality_score")
        if value is not None and np.isfinite(float(value)):
            out[str(song_id)] = float(value)
    return out


class QualityFilter:
    """Threshold filter over quality scores in [0, 1].

    Parameters are only stored here; ``fit`` reads or computes the scores.
    """

    def __init__(self, quality_threshold: float = 0.4, quality_scores_file: str | os.PathLike | None = None,
                 use_music_flamingo: bool = False,
                 music_flamingo_model_id: str = DEFAULT_MUSIC_FLAMINGO_MODEL_ID, device: str | None = None,
                 quality_scores=None, missing_quality: str = "keep", cache_dir: str | os.PathLike | None = None,
                 data_dir: str | os.PathLike | None = None) -> None:
        self.quality_threshold = quality_threshold
        self.quality_scores_file = quality_scores_file
        self.use_music_flamingo = use_music_flamingo
        self.music_flamingo_model_id = music_flamingo_model_id
        self.device = device
        self.quality_scores = quality_scores
        self.missing_quality = missing_quality
        self.cache_dir = cache_dir
        self.data_dir = data_dir

    def fit(self, songs_df: pd.DataFrame | None = None) -> QualityFilter:
        """Collect scores for ``songs_df`` (sources merged; later ones win: given < file < Music Flamingo)."""
        if self.missing_quality not in MISSING_QUALITY_POLICIES:
            raise ValueError(f"missing_quality must be one of {MISSING_QUALITY_POLICIES}")
        scores = as_score_mapping(self.quality_scores)
        if self.quality_scores_file is not None:
            from sunorecsys.quality.scores_file import load_scores

            scores.update(load_scores(self.quality_scores_file))
        self.failures_: dict[str, str] = {}
        if self.use_music_flamingo:
            if songs_df is None:
                raise ValueError("use_music_flamingo=True needs songs_df to score")
            scores.update(self._score_with_music_flamingo(songs_df))
        if songs_df is not None:
            catalogue = songs_df["song_id"].astype(str).tolist()
            self.catalogue_: set[str] | None = set(catalogue)
            self.unscored_ = sorted(s for s in catalogue if s not in scores)
        else:
            self.catalogue_ = None
            self.unscored_ = []
        self.last_unknown_ids_: list[str] = []
        self.scores_ = scores
        return self

    def _score_with_music_flamingo(self, songs_df: pd.DataFrame) -> dict[str, float]:
        from sunorecsys.paths import DataPaths
        try:  # the guide's import path (a re-export); the scorer itself lives in sunorecsys.quality
            from sunorecsys.utils.music_flamingo_quality import MusicFlamingoQualityScorer
        except ImportError:
            from sunorecsys.quality.flamingo import MusicFlamingoQualityScorer

        paths = DataPaths.from_env(self.data_dir)
        scorer = MusicFlamingoQualityScorer(model_id=self.music_flamingo_model_id, device=self.device, paths=paths)
        cache_dir = self.cache_dir if self.cache_dir is not None else paths.flamingo_cache_dir
        results = scorer.score_songs(songs_df, cache_dir=cache_dir, progress=False)
        self.scorer_version_ = scorer.version
        out = {}
        for r in results:
            if r.overall_quality_score is not None and r.status != "failed":
                out[str(r.song_id)] = float(r.overall_quality_score)
            else:
                self.failures_[str(r.song_id)] = r.error or r.status
        return out

    def _check_fitted(self) -> None:
        if not hasattr(self, "scores_"):
            raise RuntimeError("QualityFilter is not fitted: call fit(songs_df) first")

    def get_quality_score(self, song_id: str) -> float | None:
        """The song's score in [0, 1], or None when it has none."""
        self._check_fitted()
        return self.scores_.get(str(song_id))

    def is_acceptable(self, song_id: str) -> bool:
        score = self.get_quality_score(song_id)
        if score is None:
            return self.missing_quality == "keep"
        return score >= self.quality_threshold

    def filter(self, song_ids: Iterable[str]) -> list[str]:
        """The ids that may be recommended, in input order.

        Ids absent from the catalogue given to ``fit`` are dropped and listed in ``last_unknown_ids_``
        (a song that does not exist cannot be recommended); catalogue songs without a score follow
        ``missing_quality``.
        """
        self._check_fitted()
        song_ids = [str(s) for s in song_ids]
        if self.catalogue_ is not None:
            self.last_unknown_ids_ = [s for s in song_ids if s not in self.catalogue_]
            song_ids = [s for s in song_ids if s in self.catalogue_]
        return [s for s in song_ids if self.is_acceptable(s)]

    def quality_array(self, song_ids) -> np.ndarray:
        """Scores aligned with ``song_ids`` (float32, NaN when unscored)."""
        self._check_fitted()
        return np.asarray([self.scores_.get(str(s), np.nan) for s in song_ids], np.float32)
