"""The guide's scores file entries from the blended quality table."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from sunorecsys.quality.dimensions import DIMENSIONS


def guide_entries(quality_scores_df: pd.DataFrame, flamingo_df: pd.DataFrame | None = None,
                  songs_df: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """``{song_id: {"song_id", "title", "scores": {five dims when Music Flamingo gave them,
    "overall_quality_score": blended score in [0, 1]}, "sources": [...]}}``.

    Songs without any score (quality_score NaN) are left out: the file holds scores, and readers
    treat an absent song as unscored. flamingo_df: the flamingo_scores table; songs_df: for titles.
    """
    titles: dict[str, Any] = {}
    if songs_df is not None and "title" in songs_df.columns:
        titles = dict(zip(songs_df["song_id"].astype(str), songs_df["title"]))
    dims: dict[str, dict[str, float]] = {}
    if flamingo_df is not None and len(flamingo_df):
        ok = flamingo_df[flamingo_df["status"].isin(["ok", "partial"])]
        for row in ok.to_dict("records"):
            dims[str(row["song_id"])] = {d: float(row[d]) for d in DIMENSIONS
                                         if row.get(d) is not None and not math.isnan(float(row[d]))}
    entries: dict[str, dict[str, Any]] = {}
    for row in quality_scores_df.to_dict("records"):
        score = row.get("quality_score")
        if score is None or (isinstance(score, float) and math.isnan(score)):
            continue
        song_id = str(row["song_id"])
        title = titles.get(song_id)
        scores = {**dims.get(song_id, {}), "overall_quality_score": float(score)}
        entries[song_id] = {"song_id": song_id, "title": None if pd.isna(title) else str(title),
                            "scores": scores, "sources": list(row.get("sources") or [])}
    return entries
