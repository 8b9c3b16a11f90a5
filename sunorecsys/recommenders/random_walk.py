"""RP3beta channel: three-step random walks song -> listener -> song, with a popularity penalty.

RP3beta (Paudel et al. 2016/2017, "Updatable, accurate, diverse, and scalable recommendations for
interactive applications") scores ``W[i, j] = sum_u P(i -> u)^alpha P(u -> j)^alpha / listeners_j ** beta``
on the binarised listening matrix X: a walker leaves song i for one of its listeners, then that
listener's songs, and the arrival song is divided by its own popularity to the power ``beta``
(0 = the plain walk, which ends on hits; larger reaches the tail). With X binary,
``P(i -> u) = 1 / listeners_i`` and ``P(u -> j) = 1 / songs_u``, so
``W = D_i^-alpha (X^T D_u^-alpha X) D_j^-beta``.

Why a channel: the item CF channel's BM25 damps popular songs only through its weighting of the
listeners, and its neighbour lists of seed queries end on the same hubs; RP3beta's explicit
``beta`` moves that trade-off. Measured alone on MovieLens-100K leave-last-10 seed queries (test
split, exploration only, shared machine): alpha 0.6 / beta 0.6 NDCG@10 0.164 with coverage@10
0.477, bare BM25 0.154 / 0.326. The fitted recommender picks beta on its validation split.

In the fusion it raised seed-query accuracy but did not widen the catalogue shown at equal
accuracy: learned (beta 0.6, weight 0.5), seed queries NDCG@10 0.1752 / coverage@10 0.419 on the
test users against 0.1719 / 0.479 without it, because the popularity discount's budget is relative
to the more accurate fusion (validation coverage@10 0.489 against 0.525). With fixed settings the
best point at >= 1.10x bare BM25's NDCG@10 was beta 0.6, weight 1.0, discount 0.15: 0.1694 / 0.520,
the frontier the hubness reduction already reached. So the channel is opt-in
(``HybridRecommender(rp3_weight=None)`` learns it; the default 0.0 leaves it unfitted).

Computation: the ``neighbours`` strongest songs of every row by implicit's ``all_pairs_knn`` (the
C++ kernel of its item-item models, K per row: the same cost and memory as the item CF channel),
run on ``Z = D_u^(-alpha/2) X D_i^-beta``. ``Z^T Z`` is ``D_i^-beta G D_j^-beta`` with
``G = X^T D_u^-alpha X``: row i is ordered as ``G[i, j] listeners_j ** -beta`` (RP3beta's
order), so the kept neighbours are exactly RP3beta's; multiplying row i by
``listeners_i ** (beta - alpha)`` then gives RP3beta's values. No songs x songs product is ever
materialised: at 1 M songs the matrix holds ``neighbours`` values per listened song, like item CF.

Cost measured with ``bench/recommender.py --songs 100000 --events 1000000 --rp3`` against the same
bench without it (one run each, machine shared, load ~4): the channel's own fit 3.1 s (item CF
3.6 s), queries p50 0.16 ms, but the whole fit 204 s against 147 s wall (142 / 110 CPU-s) and peak
RSS 2.06 / 1.71 GB: the validation fit tries the three betas (``BETA_GRID``), each re-asking the
neighbour channels and re-learning the weights of both query kinds. The default fit at 1 M songs /
10 M events already takes ~780 s of the 900 s budget (README), so an opt-in RP3beta at that size
should be given its beta (``rp3_params={"beta": 0.6}``: one variant); it was not run at 1 M.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from sunorecsys.recommenders.base import NeighbourChannel, limit_blas_threads
from sunorecsys.recommenders.sequence import prune_rows

# betas the fitted recommender tries on its validation split (hybrid._learn_fusion)
BETA_GRID: tuple[float, ...] = (0.5, 0.6, 0.7)


def rp3beta_similarity(user_items: sp.csr_matrix, alpha: float, beta: float, neighbours: int,
                       num_threads: int = 1) -> sp.csr_matrix:
    """Songs x songs RP3beta weights (float32 CSR), each row its ``neighbours`` strongest, no diagonal.

    ``user_items``: listeners x songs positives (binarised here); ``alpha`` > 0, ``beta`` >= 0.
    """
    from implicit.nearest_neighbours import all_pairs_knn

    if alpha <= 0 or beta < 0:
        raise ValueError(f"RP3beta needs alpha > 0 and beta >= 0, got alpha={alpha!r}, beta={beta!r}")
    limit_blas_threads()
    n_songs = user_items.shape[1]
    binary = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    binary.data[:] = 1.0
    binary.eliminate_zeros()
    if binary.nnz == 0:
        return sp.csr_matrix((n_songs, n_songs), dtype=np.float32)
    per_user = np.diff(binary.indptr).astype(np.float64)
    listeners = np.bincount(binary.indices, minlength=n_songs).astype(np.float64)
    safe = np.maximum(listeners, 1.0)
    # float64: implicit's kernel takes doubles
    z = sp.csr_matrix(sp.diags(np.maximum(per_user, 1.0) ** (-alpha / 2.0)) @ binary @ sp.diags(safe ** -beta),
                      dtype=np.float64)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        # one more than wanted: a song is usually its own strongest neighbour (dropped below)
        sim = sp.csr_matrix(all_pairs_knn(z, int(neighbours) + 1, show_progress=False,
                                          num_threads=num_threads), dtype=np.float32)
    sim.setdiag(0)
    sim.eliminate_zeros()
    sim = sp.csr_matrix(sp.diags((safe ** (beta - alpha)).astype(np.float32)) @ sim, dtype=np.float32)
    return prune_rows(sim, int(neighbours))   # rows where the diagonal was not among the K + 1


class RP3betaChannel(NeighbourChannel):
    """Random-walk neighbours. ``alpha`` > 0 (walk sharpness), ``beta`` >= 0 (popularity penalty), K = ``neighbours``."""
    name = "rp3"

    def __init__(self, alpha: float = 0.6, beta: float = 0.6, neighbours: int = 200, num_threads: int = 1) -> None:
        self.alpha = alpha
        self.beta = beta
        self.neighbours = neighbours
        self.num_threads = num_threads

    def fit(self, user_items: sp.csr_matrix) -> RP3betaChannel:
        """``user_items``: listeners x songs positive confidences (catalogue-aligned columns)."""
        self.similarity_ = rp3beta_similarity(user_items, self.alpha, self.beta, self.neighbours, self.num_threads)
        return self

    def params(self) -> dict:
        return {"alpha": self.alpha, "beta": self.beta, "neighbours": self.neighbours,
                "num_threads": self.num_threads}
