"""Scoring ranked lists per listener and comparing two methods with a paired bootstrap.

Every method is judged on the same listeners, so the difference of two methods is taken listener
by listener and resampled (paired bootstrap): much tighter than two separate intervals, and the
right question ("is the fusion better than the best bare baseline on these listeners?").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sunorecsys.evaluation.metrics import ndcg_at_k, recall_at_k


@dataclass(frozen=True)
class MethodScores:
    """Per-listener NDCG@k and recall@k (same listener order for every method) and the lists' coverage."""
    name: str
    ndcg: np.ndarray
    recall: np.ndarray
    coverage: float          # distinct songs shown / catalogue size, in [0, 1]

    @property
    def mean_ndcg(self) -> float:
        return float(self.ndcg.mean()) if len(self.ndcg) else 0.0


def score_method(name: str, lists: Sequence[Sequence], relevant: Sequence[set], k: int,
                 catalogue_size: int) -> MethodScores:
    """``lists[i]`` and ``relevant[i]`` belong to listener ``i`` (song ids or row numbers alike)."""
    ndcg = np.array([ndcg_at_k(list(r), rel, k) for r, rel in zip(lists, relevant)], np.float64)
    recall = np.array([recall_at_k(list(r), rel, k) for r, rel in zip(lists, relevant)], np.float64)
    shown = {s for r in lists for s in list(r)[:k]}
    return MethodScores(name, ndcg, recall, len(shown) / max(catalogue_size, 1))


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``a - b`` over listeners and its percentile bootstrap interval (``level``)."""
    diff = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if len(diff) == 0:
        return 0.0, 0.0, 0.0
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    return float(diff.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))
