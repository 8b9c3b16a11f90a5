"""Quality channel: the blended quality score of a song, in [0, 1], as one more vote in the fusion.

It scores every candidate the other channels propose (weight ``quality_weight``) and, alone,
proposes the best-scored songs (most listened first among equals), a non-personal baseline.
Songs without a score get the catalogue median as their vote (neither rewarded nor punished) and
are flagged; whether they may be recommended at all is the fusion's missing-quality policy.
"""

from __future__ import annotations

import numpy as np

from sunorecsys.recommenders.base import Candidates


class QualityChannel:
    name = "quality"

    def fit(self, quality: np.ndarray, popularity: np.ndarray | None = None) -> QualityChannel:
        """``quality``: per song (catalogue order), NaN when unscored."""
        quality = np.asarray(quality, np.float32)
        self.quality_ = quality
        scored = quality[np.isfinite(quality)]
        self.neutral_ = float(np.median(scored)) if len(scored) else 0.5
        pop = np.zeros(len(quality), np.float32) if popularity is None else np.asarray(popularity, np.float32)
        votes = self.votes(np.arange(len(quality)))
        # a bounded precomputed ranking: the channel alone never scans the catalogue per query
        self.ranking_ = np.lexsort((-pop, -votes))[:5000].astype(np.int64)
        return self

    def votes(self, idx: np.ndarray) -> np.ndarray:
        q = self.quality_[idx]
        return np.where(np.isfinite(q), q, self.neutral_).astype(np.float32)

    def candidates(self, seed_idx: np.ndarray, n: int, exclude: np.ndarray | None = None,
                   user_row: int | None = None, seed_weights: np.ndarray | None = None) -> Candidates:
        ranking = self.ranking_
        if exclude is not None and len(exclude):
            ranking = ranking[~np.isin(ranking, exclude)]
        ranking = ranking[:n]
        return Candidates(ranking, self.votes(ranking))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"quality": self.quality_, "ranking": self.ranking_,
                "neutral": np.asarray([self.neutral_], np.float64)}

    @classmethod
    def from_arrays(cls, arrays, params: dict) -> QualityChannel:
        channel = cls()
        channel.quality_ = arrays["quality"]
        channel.ranking_ = arrays["ranking"]
        channel.neutral_ = float(arrays["neutral"][0])
        return channel

    def params(self) -> dict:
        return {}
