"""Scorer results as the ``flamingo_scores`` table (one row per song, failures included)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from sunorecsys.quality.base import ScoreResult
from sunorecsys.quality.dimensions import DESCRIPTIVE_FIELDS, DIMENSIONS

FLAMINGO_COLUMNS: list[str] = [
    "song_id", "status", *DIMENSIONS, "overall_quality_score", *DESCRIPTIVE_FIELDS, "missing_dimensions",
    "raw_response", "error", "model_id", "prompt_version", "scorer_version", "audio_sha256", "cached",
]


def results_to_frame(results: Iterable[ScoreResult]) -> pd.DataFrame:
    """The flamingo_scores table: dimensions and overall in [0, 1] (NaN when absent or failed),
    descriptive fields as text, ``missing_dimensions`` a list of names, provenance columns."""
    rows = []
    for r in results:
        fields = r.fields or {}
        row = {"song_id": r.song_id, "status": r.status, "overall_quality_score": r.overall_quality_score,
               "raw_response": r.raw_response, "error": r.error, "scorer_version": r.scorer_version,
               "audio_sha256": r.audio_sha256, "cached": bool(r.cached),
               "model_id": fields.get("model_id"), "prompt_version": fields.get("prompt_version"),
               "missing_dimensions": [d for d in DIMENSIONS if d not in (r.scores or {})]}
        for dim in DIMENSIONS:
            row[dim] = (r.scores or {}).get(dim)
        for name in DESCRIPTIVE_FIELDS:
            value = fields.get(name)
            row[name] = None if value is None else str(value)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=FLAMINGO_COLUMNS)
    for col in (*DIMENSIONS, "overall_quality_score"):
        frame[col] = frame[col].astype("float64")
    frame["cached"] = frame["cached"].astype(bool)
    for col in ("song_id", "status", *DESCRIPTIVE_FIELDS, "raw_response", "error", "model_id",
                "prompt_version", "scorer_version", "audio_sha256"):
        frame[col] = frame[col].astype(object)
    return frame
