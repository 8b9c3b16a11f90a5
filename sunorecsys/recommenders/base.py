"""What every recommendation channel shares: the catalogue index, the channel protocol, score scaling.

A channel is fitted on catalogue-aligned data (row ``i`` of every matrix is song ``i`` of the
``SongIndex``) and answers ``candidates(seed_idx, n, exclude)`` with song indices and raw scores.
Raw scores of different channels live on different scales (BM25 similarity sums, cosine
similarities, ALS dot products), so the fusion never adds them raw: ``normalise_scores`` maps
each channel's list to [0, 1] first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

# implicit warns (and slows down badly) when BLAS runs its own threads under implicit's threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def limit_blas_threads() -> None:
    """Pin BLAS to one thread, as implicit asks; safe to call many times."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # threadpoolctl comes with scikit-learn; be tolerant anyway
        return
    threadpool_limits(1, "blas")


@dataclass(frozen=True)
class Candidates:
    """Song indices (into the ``SongIndex``) and their raw channel scores, best first."""
    idx: np.ndarray      # int64
    scores: np.ndarray   # float32, same length, raw scale of the channel

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.empty(0, np.int64), np.empty(0, np.float32))

    def __len__(self) -> int:
        return len(self.idx)


@runtime_checkable
class Channel(Protocol):
    """One source of candidates. ``fit`` returns self; state ends in ``_``; arrays persist without pickle."""
    name: str

    def candidates(self, seed_idx: np.ndarray, n: int, exclude: np.ndarray | None = None,
                   user_row: int | None = None) -> Candidates: ...

    def to_arrays(self) -> dict[str, np.ndarray]: ...


class SongIndex:
    """Song id <-> row number of every channel matrix (the catalogue order, fixed at fit time)."""

    def __init__(self, song_ids) -> None:
        ids = pd.Index(pd.Series(song_ids, dtype="string").astype(str))
        if ids.has_duplicates:
            dup = ids[ids.duplicated()].unique()[:5].tolist()
            raise ValueError(f"duplicate song_id in the songs table: {dup}")
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, song_ids) -> tuple[np.ndarray, list[str]]:
        """Indices of the known ids (input order kept) and the list of unknown ids."""
        wanted = [str(s) for s in song_ids]
        if not wanted:  # a listener's query without seeds: no index look-up to pay
            return np.empty(0, np.int64), []
        pos = self.ids.get_indexer(wanted)
        unknown = [s for s, p in zip(wanted, pos) if p < 0]
        return pos[pos >= 0].astype(np.int64), unknown

    def id_of(self, idx: np.ndarray) -> np.ndarray:
        return self.ids.values[np.asarray(idx, dtype=np.int64)]


def normalise_scores(scores: np.ndarray) -> np.ndarray:
    """Map one channel's raw scores to [0, 1]: negatives clipped to 0, then divided by the maximum.

    Max-scaling (rather than min-max) keeps a weak channel weak: a list whose best item barely
    matches still scores 1 at its top, but its tail keeps its relative distance, and the
    weakest candidate is not forced to 0. An all-zero list stays zero.
    """
    s = np.clip(np.asarray(scores, dtype=np.float32), 0.0, None)
    top = float(s.max()) if len(s) else 0.0
    return s / top if top > 0 else s


def top_n(scores: np.ndarray, n: int, valid: np.ndarray | None = None) -> np.ndarray:
    """Indices of the ``n`` largest positive scores, best first (ties: lower index first)."""
    cand = np.flatnonzero(scores > 0) if valid is None else valid[scores[valid] > 0]
    if len(cand) > n:
        part = np.argpartition(-scores[cand], n - 1)[:n]
        cand = cand[part]
    order = np.lexsort((cand, -scores[cand]))
    return cand[order].astype(np.int64)


def sparse_row_sum(matrix: sp.csr_matrix, rows: np.ndarray,
                   row_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Column ids and summed values of ``sum_r w_r * matrix[r]`` without touching other rows."""
    starts, ends = matrix.indptr[rows], matrix.indptr[rows + 1]
    lengths = (ends - starts).astype(np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    # positions of every stored value of the chosen rows, without a Python loop per value
    offsets = np.repeat(starts.astype(np.int64) - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    take = np.arange(total, dtype=np.int64) + offsets
    cols = matrix.indices[take]
    vals = matrix.data[take].astype(np.float32)
    if row_weights is not None:
        vals = vals * np.repeat(np.asarray(row_weights, np.float32), lengths)
    if total > matrix.shape[1] // 16:
        # long posting lists: one dense pass over the columns beats sorting the postings
        dense = np.bincount(cols, weights=vals, minlength=matrix.shape[1])
        uniq = np.flatnonzero(dense)
        return uniq.astype(np.int64), dense[uniq].astype(np.float32)
    uniq, inv = np.unique(cols, return_inverse=True)
    return uniq.astype(np.int64), np.bincount(inv, weights=vals).astype(np.float32)


def best_of(cols: np.ndarray, vals: np.ndarray, n: int, exclude: np.ndarray | None) -> Candidates:
    """Top ``n`` of a sparse score vector, dropping ``exclude`` (seeds, heard songs)."""
    if exclude is not None and len(exclude) and len(cols):
        keep = ~np.isin(cols, exclude)
        cols, vals = cols[keep], vals[keep]
    keep = vals > 0
    cols, vals = cols[keep], vals[keep]
    if len(cols) > n:
        part = np.argpartition(-vals, n - 1)[:n]
        cols, vals = cols[part], vals[part]
    order = np.lexsort((cols, -vals))
    return Candidates(cols[order].astype(np.int64), vals[order].astype(np.float32))


def csr_to_arrays(prefix: str, m: sp.spmatrix) -> dict[str, np.ndarray]:
    m = sp.csr_matrix(m)
    return {f"{prefix}_data": m.data, f"{prefix}_indices": m.indices, f"{prefix}_indptr": m.indptr,
            f"{prefix}_shape": np.asarray(m.shape, np.int64)}


def csr_from_arrays(prefix: str, arrays) -> sp.csr_matrix:
    shape = tuple(int(x) for x in arrays[f"{prefix}_shape"])
    return sp.csr_matrix((arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
                         shape=shape)


class NeighbourChannel:
    """A channel that is one song x song similarity matrix (``similarity_``, CSR): a query's
    candidates are the seeds' rows summed (weighted), and the model file holds the matrix.
    Subclasses set ``name``, fit ``similarity_`` and give ``params()`` (the constructor's keywords)."""

    similarity_: sp.csr_matrix

    def params(self) -> dict:
        raise NotImplementedError

    def candidates(self, seed_idx: np.ndarray, n: int, exclude: np.ndarray | None = None,
                   user_row: int | None = None, seed_weights: np.ndarray | None = None) -> Candidates:
        if len(seed_idx) == 0:
            return Candidates.empty()
        cols, vals = sparse_row_sum(self.similarity_, np.asarray(seed_idx, np.int64), seed_weights)
        return best_of(cols, vals, n, exclude)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return csr_to_arrays("similarity", self.similarity_)

    @classmethod
    def from_arrays(cls, arrays, params: dict):
        channel = cls(**params)
        channel.similarity_ = csr_from_arrays("similarity", arrays)
        return channel
