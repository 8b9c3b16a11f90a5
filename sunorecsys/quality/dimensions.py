"""The guide's five quality dimensions and their weights in the overall score."""

from __future__ import annotations

from collections.abc import Mapping

DIMENSION_WEIGHTS: dict[str, float] = {
    "content_usefulness": 0.15,
    "production_quality": 0.30,
    "content_enjoyment": 0.25,
    "production_complexity": 0.10,
    "overall_recommendation_score": 0.20,
}
DIMENSIONS: tuple[str, ...] = tuple(DIMENSION_WEIGHTS)
DESCRIPTIVE_FIELDS: tuple[str, ...] = ("genre", "tempo", "key", "instruments", "production_style", "mood")


def get_overall_quality_score(scores: Mapping[str, float | None]) -> float | None:
    """Weighted mean of the dimensions present (weights renormalised), in [0, 1]; None if none present."""
    present = {k: float(v) for k, v in scores.items() if k in DIMENSION_WEIGHTS and v is not None}
    if not present:
        return None
    total = sum(DIMENSION_WEIGHTS[k] for k in present)
    return sum(DIMENSION_WEIGHTS[k] * v for k, v in present.items()) / total
