"""Item CF: songs listened to by the same people (implicit's BM25 item-item model).

BM25 weighting damps heavy listeners and very popular songs, so co-listening says more than raw
counts. The fitted similarity (songs x songs, K neighbours per song) is kept as a CSR array; a query
sums the seeds' rows. Cold songs have empty rows: they reach users through the text channels.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from sunorecsys.recommenders.base import NeighbourChannel, limit_blas_threads


class ItemCFChannel(NeighbourChannel):
    """Co-listening neighbours. ``neighbours`` = K of implicit's model; K1/B are BM25's parameters."""
    name = "item_cf"

    def __init__(self, neighbours: int = 50, k1: float = 1.2, b: float = 0.75, num_threads: int = 1) -> None:
        self.neighbours = neighbours
        self.k1 = k1
        self.b = b
        self.num_threads = num_threads

    def fit(self, user_items: sp.csr_matrix) -> ItemCFChannel:
        """``user_items``: users x songs positive confidences (catalogue-aligned columns)."""
        from implicit.nearest_neighbours import BM25Recommender

        limit_blas_threads()
        n_songs = user_items.shape[1]
        if user_items.nnz == 0:
            self.similarity_ = sp.csr_matrix((n_songs, n_songs), dtype=np.float32)
            return self
        model = BM25Recommender(K=self.neighbours, K1=self.k1, B=self.b, num_threads=self.num_threads)
        with warnings.catch_warnings():
            # BM25Recommender hands its own weighted COO matrix to all_pairs_knn, which warns about it
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(sp.csr_matrix(user_items, dtype=np.float32), show_progress=False)
        sim = sp.csr_matrix(model.similarity, dtype=np.float32)
        sim = sim - sp.diags(sim.diagonal().astype(np.float32), format="csr")  # a song is not its own neighbour
        sim.eliminate_zeros()
        sim = sp.csr_matrix(sim, dtype=np.float32)
        self.similarity_ = sim
        self.model_ = model  # kept for the benchmark baseline (implicit's own similar_items)
        return self

    def params(self) -> dict:
        return {"neighbours": self.neighbours, "k1": self.k1, "b": self.b, "num_threads": self.num_threads}
