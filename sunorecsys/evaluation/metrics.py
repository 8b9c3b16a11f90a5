"""Ranking and catalogue metrics (full-catalogue ranking: no sampled negatives)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the relevant songs found in the first ``k``, in [0, 1] (denominator min(|rel|, k))."""
    if not relevant:
        return 0.0
    hits = sum(1 for s in ranked[:k] if s in relevant)
    return hits / min(len(relevant), k)


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Binary-relevance NDCG@k in [0, 1]."""
    if not relevant:
        return 0.0
    gains = [1.0 / np.log2(i + 2) for i, s in enumerate(ranked[:k]) if s in relevant]
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(relevant), k)))
    return float(sum(gains) / ideal)


def hit_rate_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1 if any of the first ``k`` is relevant, else 0."""
    return float(any(s in relevant for s in ranked[:k]))


def catalogue_coverage(lists: Sequence[Sequence[str]], catalogue_size: int) -> float:
    """Distinct recommended songs / catalogue size, in [0, 1]."""
    if catalogue_size <= 0:
        return 0.0
    return len({s for ranked in lists for s in ranked}) / catalogue_size


def gini_of_exposure(lists: Sequence[Sequence[str]], catalogue: Sequence[str]) -> float:
    """Gini coefficient of how often each catalogue song is shown, in [0, 1] (0 = equal exposure).

    Songs never shown count as zero exposure, so a recommender that shows a few hits to everybody
    scores near 1.
    """
    index = {s: i for i, s in enumerate(catalogue)}
    counts = np.zeros(len(index), np.float64)
    for ranked in lists:
        for s in ranked:
            if s in index:
                counts[index[s]] += 1
    if counts.sum() == 0 or len(counts) < 2:
        return 0.0
    x = np.sort(counts)
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))
