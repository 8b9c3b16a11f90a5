"""Bare baselines on the same split as the hybrid: implicit's BM25 item-item and ALS, and EASE.

Each is used as its library (or paper) gives it, with nothing of the hybrid's: a report that shows
the fusion beside them tells whether the fusion is worth its complexity. Every baseline answers the
two query kinds of the hybrid: by a known listener (``recommend_users``) and by seed songs
(``recommend_seeds``, the seeds as a new listener). Inputs and outputs are catalogue row numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from sunorecsys.recommenders.base import limit_blas_threads
from sunorecsys.recommenders.ease import ease_weights


def _seed_rows(seed_lists: list[np.ndarray], n_items: int) -> sp.csr_matrix:
    lengths = [len(s) for s in seed_lists]
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    indices = np.concatenate(seed_lists).astype(np.int32) if sum(lengths) else np.empty(0, np.int32)
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=(len(seed_lists), n_items))


class ImplicitBaseline:
    """An implicit model (``BM25Recommender`` or ``AlternatingLeastSquares``) used as shipped."""

    def __init__(self, name: str, model, fold_in: bool) -> None:
        self.name = name
        self.model = model
        self.fold_in = fold_in   # ALS needs ``recalculate_user`` for seeds; item-item does not

    def fit(self, user_items: sp.csr_matrix) -> ImplicitBaseline:
        limit_blas_threads()
        self.user_items_ = sp.csr_matrix(user_items, dtype=np.float32)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            self.model.fit(self.user_items_, show_progress=False)
        return self

    def recommend_users(self, rows: np.ndarray, n: int) -> list[np.ndarray]:
        rows = np.asarray(rows, np.int64)
        ids, _ = self.model.recommend(rows, self.user_items_[rows], N=n, filter_already_liked_items=True)
        return [r[r >= 0].astype(np.int64) for r in np.atleast_2d(ids)]

    def recommend_seeds(self, seed_lists: list[np.ndarray], n: int) -> list[np.ndarray]:
        rows = _seed_rows(seed_lists, self.user_items_.shape[1])
        users = np.arange(len(seed_lists))
        ids, _ = self.model.recommend(users, rows, N=n, filter_already_liked_items=True,
                                      recalculate_user=self.fold_in)
        return [r[r >= 0].astype(np.int64) for r in np.atleast_2d(ids)]


def bm25_baseline(neighbours: int = 100) -> ImplicitBaseline:
    from implicit.nearest_neighbours import BM25Recommender

    return ImplicitBaseline(f"bare BM25 item-item (K={neighbours})", BM25Recommender(K=neighbours, num_threads=1),
                            fold_in=False)


def als_baseline(factors: int = 64, iterations: int = 15, random_state: int = 7) -> ImplicitBaseline:
    from implicit.cpu.als import AlternatingLeastSquares

    limit_blas_threads()
    model = AlternatingLeastSquares(factors=factors, iterations=iterations, random_state=random_state,
                                    num_threads=1)
    return ImplicitBaseline(f"bare ALS ({factors} factors, {iterations} it.)", model, fold_in=True)


class EaseBaseline:
    """EASE over every item (binary, closed form, ``l2`` = lambda).

    Solved over the listened items only: an item nobody listened to has an all-zero column in X, so
    its row and column of X^T X + lambda I are zero but for lambda on the diagonal; the inverse is
    block diagonal and every EASE weight to or from that item is exactly 0. Solving the listened
    block alone gives the same weights (up to rounding) at a fraction of the n^3 cost and n^2
    memory: a 20,000-song catalogue with 90 listened songs took minutes and ~10 GB solved whole.
    Scores of the unlistened items stay 0, as in the full solve.
    """

    def __init__(self, l2: float = 200.0) -> None:
        self.l2 = l2
        self.name = f"EASE (closed form, lambda={l2:g})"

    def fit(self, user_items: sp.csr_matrix) -> EaseBaseline:
        self.user_items_ = sp.csr_matrix(user_items, dtype=np.float32)
        self.warm_ = np.flatnonzero(np.bincount(self.user_items_.indices, minlength=self.user_items_.shape[1]) > 0)
        self.weights_ = ease_weights(self.user_items_[:, self.warm_], self.l2)
        return self

    def _top(self, rows: sp.csr_matrix, n: int) -> list[np.ndarray]:
        binary = rows.copy()
        binary.data[:] = 1.0
        warm_scores = np.asarray(binary[:, self.warm_] @ self.weights_)
        out = []
        for i in range(rows.shape[0]):
            s = np.zeros(rows.shape[1], np.float32)   # one row at a time: users x catalogue stays unbuilt
            s[self.warm_] = warm_scores[i]
            s[rows.indices[rows.indptr[i]:rows.indptr[i + 1]]] = -np.inf
            top = np.argpartition(-s, n - 1)[:n]
            out.append(top[np.argsort(-s[top], kind="stable")].astype(np.int64))
        return out

    def recommend_users(self, rows: np.ndarray, n: int) -> list[np.ndarray]:
        return self._top(self.user_items_[np.asarray(rows, np.int64)], n)

    def recommend_seeds(self, seed_lists: list[np.ndarray], n: int) -> list[np.ndarray]:
        return self._top(_seed_rows(seed_lists, self.user_items_.shape[1]), n)
