"""Offline evaluation: each channel alone, the fusion, and the fusion with and without the quality filter.

Protocol: a global temporal split of the listening log; the recommender is fit on the events before
the cut only; each test user (known before the cut, with at least one new positive song after it)
asks ``recommend(user_id=..., n=k)``, which seeds from the user's pre-split history and never
returns it; lists are ranked against the full catalogue. Reported per variant: Recall@K, NDCG@K,
HitRate@K, catalogue coverage, Gini of exposure, mean quality of recommended songs, the share
below the quality threshold, the share of unscored songs and, when ground truth is given, the
share of damaged songs. A threshold sweep of the fusion gives the quality/accuracy trade-off plot.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sunorecsys.evaluation.metrics import (
    catalogue_coverage,
    gini_of_exposure,
    hit_rate_at_k,
    ndcg_at_k,
    recall_at_k,
)
from sunorecsys.evaluation.split import relevant_after_split, temporal_split
from sunorecsys.recommenders.fusion import CHANNEL_NAMES

DEFAULT_THRESHOLDS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass
class EvaluationReport:
    table: pd.DataFrame                 # one row per variant
    sweep: pd.DataFrame                 # the fusion across quality thresholds
    plot_path: Path | None
    split_time: pd.Timestamp
    n_users: int
    details: dict = field(default_factory=dict)

    def to_text(self) -> str:
        return self.table.to_string(index=False, float_format=lambda v: f"{v:.4f}")


def score_lists(lists: dict[str, list[str]], relevant: dict[str, set[str]], *, k: int, catalogue: list[str],
                quality: dict[str, float], threshold: float, damaged: set[str] | None = None) -> dict:
    """Metrics of one variant's lists (``{user: ranked song ids}``)."""
    users = list(lists)
    recs = [lists[u] for u in users]
    shown = [s for ranked in recs for s in ranked]
    q = np.array([quality.get(s, np.nan) for s in shown], np.float64)
    scored = q[np.isfinite(q)]
    row = {
        f"recall@{k}": float(np.mean([recall_at_k(lists[u], relevant[u], k) for u in users])) if users else 0.0,
        f"ndcg@{k}": float(np.mean([ndcg_at_k(lists[u], relevant[u], k) for u in users])) if users else 0.0,
        f"hit_rate@{k}": float(np.mean([hit_rate_at_k(lists[u], relevant[u], k) for u in users])) if users else 0.0,
        "coverage": catalogue_coverage(recs, len(catalogue)),
        "gini": gini_of_exposure(recs, catalogue),
        "mean_quality": float(scored.mean()) if len(scored) else float("nan"),
        "share_below_threshold": float((scored < threshold).sum() / len(shown)) if shown else 0.0,
        "share_unscored": float((~np.isfinite(q)).sum() / len(shown)) if shown else 0.0,
        "mean_list_length": float(np.mean([len(r) for r in recs])) if recs else 0.0,
    }
    if damaged is not None:
        row["share_damaged"] = float(sum(s in damaged for s in shown) / len(shown)) if shown else 0.0
    return row


def run_variant(model, users: list[str], k: int) -> dict[str, list[str]]:
    return {u: [r["song_id"] for r in model.recommend(user_id=u, n=k)] for u in users}


def evaluate_fitted(model, relevant: dict[str, set[str]], *, k: int = 10, thresholds=DEFAULT_THRESHOLDS,
                    damaged: set[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table of variants and threshold sweep for a model fitted on the pre-split log."""
    users = sorted(u for u in relevant if model.users_.get_indexer([u])[0] >= 0)
    catalogue = model.songs_.ids.astype(str).tolist()
    quality = model.quality_filter_.scores_
    threshold = model.quality_threshold
    rows = []

    def add(name: str, variant, filtered: bool) -> None:
        lists = run_variant(variant, users, k)
        rows.append({"variant": name, "quality_filter": filtered,
                     **score_lists(lists, relevant, k=k, catalogue=catalogue, quality=quality,
                                   threshold=threshold, damaged=damaged)})

    zero = {f"{c}_weight" if c not in ("content",) else "item_content_weight": 0.0 for c in CHANNEL_NAMES}
    for channel in CHANNEL_NAMES:
        key = "item_content_weight" if channel == "content" else f"{channel}_weight"
        add(channel, model.with_settings(**{**zero, key: 1.0}), model.use_quality_filter)
    add("fusion", model.with_settings(use_quality_filter=False), False)
    add("fusion", model.with_settings(use_quality_filter=True), True)
    table = pd.DataFrame(rows)
    table.insert(2, "users", len(users))

    sweep_rows = []
    for t in thresholds:
        variant = model.with_settings(use_quality_filter=True, quality_threshold=float(t))
        lists = run_variant(variant, users, k)
        sweep_rows.append({"quality_threshold": float(t),
                           **score_lists(lists, relevant, k=k, catalogue=catalogue, quality=quality,
                                         threshold=threshold, damaged=damaged)})
    return table, pd.DataFrame(sweep_rows)


def evaluate_recommender(songs_df: pd.DataFrame, interactions: pd.DataFrame, quality_scores=None, *,
                         quality_scores_file: str | os.PathLike | None = None, k: int = 10,
                         test_fraction: float = 0.2, split_time=None, thresholds=DEFAULT_THRESHOLDS,
                         params: dict | None = None, damaged_song_ids=None,
                         plot_path: str | os.PathLike | None = None) -> EvaluationReport:
    """Split the log in time, fit a ``HybridRecommender(**params)`` on the past, score the future.

    ``quality_scores``: DataFrame (``song_id, quality_score``) or mapping, and/or a guide-format
    ``quality_scores_file``. ``damaged_song_ids`` (ground truth, optional) adds ``share_damaged``.
    ``plot_path`` set -> the trade-off plot is written there (PNG).
    """
    from sunorecsys.recommenders.hybrid import HybridRecommender

    split = temporal_split(interactions, test_fraction=test_fraction, split_time=split_time)
    relevant = relevant_after_split(split)
    model = HybridRecommender(**(params or {})).fit(songs_df, quality_scores_file=quality_scores_file,
                                                    interactions=split.train, quality_scores=quality_scores)
    damaged = set(map(str, damaged_song_ids)) if damaged_song_ids is not None else None
    table, sweep = evaluate_fitted(model, relevant, k=k, thresholds=thresholds, damaged=damaged)
    written = None
    if plot_path is not None:
        from sunorecsys.evaluation.plot import plot_quality_tradeoff

        written = plot_quality_tradeoff(sweep, plot_path, k=k, current_threshold=model.quality_threshold)
    n_users = int(table["users"].iloc[0]) if len(table) else 0
    return EvaluationReport(table, sweep, written, split.split_time, n_users,
                            details={"train_events": len(split.train), "test_events": len(split.test),
                                     "fit_stats": model.fit_stats_, "params": model.get_params()})
