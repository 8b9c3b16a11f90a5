"""User channel: the seeds (or a known listener's history) as a user of an ALS model, plus same-creator songs.

ALS (implicit) learns song factors from the listening log. Seeds become a new user by implicit's
``recalculate_user`` (a least-squares fold-in against the song factors, no refit); a listener seen in
training uses the learned factors. Only songs with listens carry information in their factors, so
ALS ranks within the ``pool`` of warm songs (optionally the ``pool_size`` most listened), which also
bounds query time on big catalogues. Songs by the seeds' creators are proposed beside, each
creator's most listened first.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from sunorecsys.recommenders.base import (
    Candidates,
    best_of,
    csr_from_arrays,
    csr_to_arrays,
    limit_blas_threads,
    normalise_scores,
)


class UserChannel:
    """ALS fold-in (weight ``1 - creator_share``) + same creator (``creator_share``), each scaled to [0, 1]."""
    name = "user"

    # Defaults tuned on the sample catalogue with a validation split before the test period
    # (150 listeners, 10 genres: a low rank suffices); larger catalogues want more factors.
    def __init__(self, factors: int = 8, regularization: float = 0.3, alpha: float = 2.0,
                 iterations: int = 20, creator_share: float = 0.3, songs_per_creator: int = 20,
                 pool_size: int | None = None, random_state: int = 7, num_threads: int = 1) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.creator_share = creator_share
        self.songs_per_creator = songs_per_creator
        self.pool_size = pool_size
        self.random_state = random_state
        self.num_threads = num_threads

    def fit(self, user_items: sp.csr_matrix, creators: np.ndarray) -> UserChannel:
        """``user_items``: users x songs confidences; ``creators``: creator code per song (-1 = unknown)."""
        n_songs = user_items.shape[1]
        listeners = np.bincount(user_items.indices, minlength=n_songs).astype(np.float32)
        self.popularity_ = listeners
        self._fit_creators(np.asarray(creators, np.int64), listeners)
        warm = np.flatnonzero(listeners > 0)
        warm = warm[np.argsort(-listeners[warm], kind="stable")]
        if self.pool_size is not None:
            warm = warm[: self.pool_size]
        self.pool_ = warm.astype(np.int64)
        self.seed_confidence_ = float(user_items.data.mean()) if user_items.nnz else 1.0
        if user_items.nnz == 0 or user_items.shape[0] == 0:
            self.item_factors_ = np.zeros((n_songs, self.factors), np.float32)
            self.user_factors_ = np.zeros((user_items.shape[0], self.factors), np.float32)
        else:
            model = self._model()
            model.fit(sp.csr_matrix(user_items, dtype=np.float32), show_progress=False)
            self.item_factors_ = np.ascontiguousarray(model.item_factors, np.float32)
            self.user_factors_ = np.ascontiguousarray(model.user_factors, np.float32)
        return self

    def _model(self):
        from implicit.cpu.als import AlternatingLeastSquares

        limit_blas_threads()
        return AlternatingLeastSquares(factors=self.factors, regularization=self.regularization,
                                       alpha=self.alpha, iterations=self.iterations,
                                       random_state=self.random_state, num_threads=self.num_threads)

    def _fit_creators(self, creators: np.ndarray, listeners: np.ndarray) -> None:
        known = np.flatnonzero(creators >= 0)
        n_creators = int(creators.max()) + 1 if len(known) else 0
        # rows = creators, each row's songs most listened first (ties: catalogue order)
        order = known[np.lexsort((known, -listeners[known], creators[known]))]
        counts = np.bincount(creators[order], minlength=n_creators)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.creators_ = creators
        self.creator_songs_ = sp.csr_matrix((np.ones(len(order), np.float32), order, indptr),
                                            shape=(n_creators, len(creators)))
        self.creator_songs_.has_sorted_indices = False  # rows are in popularity order, not by column

    def fold_in(self, seed_idx: np.ndarray, seed_weights: np.ndarray | None = None) -> np.ndarray:
        """Factors of a new user who liked ``seed_idx`` (implicit's ``recalculate_user``)."""
        if not hasattr(self, "_fold_model"):
            model = self._model()
            model.item_factors = self.item_factors_
            model.user_factors = self.user_factors_
            self._fold_model = model
        confidence = np.full(len(seed_idx), self.seed_confidence_, np.float32)
        if seed_weights is not None:
            confidence = confidence * np.asarray(seed_weights, np.float32)
        row = sp.csr_matrix((confidence,
                             (np.zeros(len(seed_idx), np.int64), np.asarray(seed_idx, np.int64))),
                            shape=(1, self.item_factors_.shape[0]))
        return np.asarray(self._fold_model.recalculate_user(0, row), np.float32)

    def candidates(self, seed_idx: np.ndarray, n: int, exclude: np.ndarray | None = None,
                   user_row: int | None = None, seed_weights: np.ndarray | None = None) -> Candidates:
        seed_idx = np.asarray(seed_idx, np.int64)
        parts = []
        if len(self.pool_) and (user_row is not None or len(seed_idx)):
            vec = self.user_factors_[user_row] if user_row is not None else self.fold_in(seed_idx, seed_weights)
            als = self._als_top(vec, n, exclude)
            parts.append((als, 1.0 - self.creator_share))
        creator = self._creator_candidates(seed_idx, exclude)
        if len(creator):
            parts.append((creator, self.creator_share))
        if not parts:
            return Candidates.empty()
        cols = np.concatenate([c.idx for c, _ in parts])
        vals = np.concatenate([normalise_scores(c.scores) * w for c, w in parts])
        uniq, inv = np.unique(cols, return_inverse=True)
        return best_of(uniq, np.bincount(inv, weights=vals).astype(np.float32), n, None)

    def _als_top(self, vec: np.ndarray, n: int, exclude: np.ndarray | None) -> Candidates:
        """Top ``n`` of the pool by dot product; exclusions masked in place (no set operations)."""
        if not hasattr(self, "_pool_factors"):  # contiguous copy and song -> pool position, built once
            self._pool_factors = np.ascontiguousarray(self.item_factors_[self.pool_])
            self._pool_pos = np.full(self.item_factors_.shape[0], -1, np.int64)
            self._pool_pos[self.pool_] = np.arange(len(self.pool_))
        scores = self._pool_factors @ vec
        if exclude is not None and len(exclude):
            pos = self._pool_pos[exclude]
            scores[pos[pos >= 0]] = -np.inf
        k = min(n, len(scores))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.isfinite(scores[top]) & (scores[top] > 0)]
        order = np.lexsort((self.pool_[top], -scores[top]))
        return Candidates(self.pool_[top[order]], scores[top[order]].astype(np.float32))

    def _creator_candidates(self, seed_idx: np.ndarray, exclude: np.ndarray | None) -> Candidates:
        if len(seed_idx) == 0 or self.creator_songs_.shape[0] == 0:
            return Candidates.empty()
        seed_creators = self.creators_[seed_idx]
        seed_creators = seed_creators[seed_creators >= 0]
        if len(seed_creators) == 0:
            return Candidates.empty()
        creators, seeds_by = np.unique(seed_creators, return_counts=True)
        idx_parts, val_parts = [], []
        m = self.songs_per_creator
        for c, count in zip(creators, seeds_by):
            songs = self.creator_songs_.indices[self.creator_songs_.indptr[c]:self.creator_songs_.indptr[c + 1]]
            songs = songs[:m + len(seed_idx)]
            # share of the seeds by this creator, most listened songs slightly first
            rank = np.arange(len(songs), dtype=np.float32)
            idx_parts.append(songs)
            val_parts.append(count / len(seed_idx) * (1.0 - 0.5 * rank / max(len(songs), 1)))
        return best_of(np.concatenate(idx_parts).astype(np.int64), np.concatenate(val_parts).astype(np.float32),
                       m * len(creators), exclude)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"item_factors": self.item_factors_, "user_factors": self.user_factors_,
                  "pool": self.pool_, "popularity": self.popularity_, "creators": self.creators_,
                  "seed_confidence": np.asarray([self.seed_confidence_], np.float64)}
        arrays.update(csr_to_arrays("creator_songs", self.creator_songs_))
        return arrays

    @classmethod
    def from_arrays(cls, arrays, params: dict) -> UserChannel:
        channel = cls(**params)
        channel.item_factors_ = arrays["item_factors"]
        channel.user_factors_ = arrays["user_factors"]
        channel.pool_ = arrays["pool"]
        channel.popularity_ = arrays["popularity"]
        channel.creators_ = arrays["creators"]
        channel.seed_confidence_ = float(arrays["seed_confidence"][0])
        channel.creator_songs_ = csr_from_arrays("creator_songs", arrays)
        channel.creator_songs_.has_sorted_indices = False
        return channel

    def params(self) -> dict:
        return {"factors": self.factors, "regularization": self.regularization, "alpha": self.alpha,
                "iterations": self.iterations, "creator_share": self.creator_share,
                "songs_per_creator": self.songs_per_creator, "pool_size": self.pool_size,
                "random_state": self.random_state, "num_threads": self.num_threads}
