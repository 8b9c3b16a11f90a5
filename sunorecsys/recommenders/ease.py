"""EASE channel (Steck 2019): a closed-form item-item model, the strongest bare model on MovieLens-100K.

EASE solves one dense least-squares problem over the items: weights = -P / diag(P) with
P = (X^T X + lambda I)^-1 on the binarised listening matrix X, zero diagonal. It is dense in the
number of items (n^2 floats, an n^3 solve): up to ``max_items`` listened songs (default 5,000:
100 MB of weights, ~15 s per solve on the shared 2 cores; 10,000 took 125 s and 2.4 GB at peak,
and it is fitted twice, validation then everything) it covers every listened song. Above that the
recommender switches it off (``HybridRecommender._fit_log_channels``): a head-only EASE would
leave most listened songs out of its lists, and the sequence and item CF channels are sparse
and scale. The channel class itself still fits the ``max_items`` most listened songs when asked.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sunorecsys.recommenders.base import Candidates, best_of, limit_blas_threads

DEFAULT_MAX_ITEMS = 5_000


def ease_weights(user_items: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE weights over the columns of ``user_items`` (binarised): items x items, float32, zero diagonal."""
    limit_blas_threads()
    binary = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    gram = (binary.T @ binary).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = precision / (-np.diag(precision))
    weights[np.diag_indices_from(weights)] = 0.0
    return weights.astype(np.float32)


def ease_l2_rule(user_items: sp.csr_matrix) -> float:
    """lambda = 4 x the mean number of listeners of a listened song, in [10, 1000].

    Checked on MovieLens-100K leave-last-10 (54 listeners per item -> 216; NDCG@10 is flat from
    200 to 500 there and 3 % lower at 50): lambda has to grow with the counts in X^T X.
    """
    warm = int((np.diff(sp.csc_matrix(user_items).indptr) > 0).sum())
    mean_listeners = user_items.nnz / max(warm, 1)
    return float(np.clip(4.0 * mean_listeners, 10.0, 1000.0))


class EaseChannel:
    """EASE over the ``max_items`` most listened songs; ``l2`` None = ``ease_l2_rule``."""
    name = "ease"

    def __init__(self, l2: float | None = None, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self.l2 = l2
        self.max_items = max_items

    def fit(self, user_items: sp.csr_matrix) -> EaseChannel:
        n_songs = user_items.shape[1]
        listeners = np.bincount(user_items.indices, minlength=n_songs)
        warm = np.flatnonzero(listeners > 0)
        warm = warm[np.argsort(-listeners[warm], kind="stable")][: self.max_items]
        self.pool_ = np.sort(warm).astype(np.int64)
        self.l2_ = float(self.l2) if self.l2 is not None else ease_l2_rule(user_items)
        if len(self.pool_) == 0:
            self.weights_ = np.zeros((0, 0), np.float32)
        else:
            self.weights_ = ease_weights(sp.csr_matrix(user_items)[:, self.pool_], self.l2_)
        self._index()
        return self

    def _index(self) -> None:
        self.pool_pos_ = np.full(self.n_songs_hint(), -1, np.int64)
        self.pool_pos_[self.pool_] = np.arange(len(self.pool_))

    def n_songs_hint(self) -> int:
        return int(self.pool_.max()) + 1 if len(self.pool_) else 0

    def candidates(self, seed_idx: np.ndarray, n: int, exclude: np.ndarray | None = None,
                   user_row: int | None = None, seed_weights: np.ndarray | None = None) -> Candidates:
        seed_idx = np.asarray(seed_idx, np.int64)
        pos = np.full(len(seed_idx), -1, np.int64)
        inside = seed_idx < len(self.pool_pos_)
        pos[inside] = self.pool_pos_[seed_idx[inside]]
        known = pos >= 0
        if not known.any():
            return Candidates.empty()
        w = np.ones(len(seed_idx), np.float32) if seed_weights is None else np.asarray(seed_weights, np.float32)
        scores = w[known] @ self.weights_[pos[known]]
        return best_of(self.pool_, scores.astype(np.float32), n, exclude)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"pool": self.pool_, "weights": self.weights_, "l2": np.asarray([self.l2_], np.float64)}

    @classmethod
    def from_arrays(cls, arrays, params: dict) -> EaseChannel:
        channel = cls(**params)
        channel.pool_ = arrays["pool"]
        channel.weights_ = arrays["weights"]
        channel.l2_ = float(arrays["l2"][0])
        channel._index()
        return channel

    def params(self) -> dict:
        return {"l2": self.l2, "max_items": self.max_items}
