"""Sparse TF-IDF over word and character n-grams, searched at query time (no dense similarities).

Character n-grams within word boundaries (``analyzer='char_wb'``) let "lo-fi" meet "lofi" and work in
any script (lyrics and prompts come in many languages); the word block keeps whole-token matches
strong. Each block is L2-normalised and the two are concatenated with equal weight, so a row's dot
product with another row is a cosine similarity in [0, 1].

A query sums the seeds' rows, keeps its ``query_terms`` heaviest terms (idf already favours
rare, short posting lists) and walks those terms' posting lists (the transposed matrix), which
costs a few milliseconds even over a million songs.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sunorecsys.recommenders.base import Candidates, best_of, csr_from_arrays, csr_to_arrays, sparse_row_sum

_JOINERS = re.compile(r"[-_'.’]+")


def _fold_joiners(text: str) -> str:
    """'Lo-Fi' -> 'lofi', "rock'n'roll" -> 'rocknroll': spelling variants share character n-grams."""
    return _JOINERS.sub("", text.lower())


def _pruned_tfidf(counts: sp.csr_matrix, max_df: float, min_df: int, max_features: int | None) -> sp.csr_matrix:
    """sklearn's TfidfVectorizer(sublinear_tf=True, smooth_idf=True, norm='l2') on a docs x terms count matrix.

    Terms in more than ``max_df`` (share) or fewer than ``min_df`` (count) documents are dropped,
    then the ``max_features`` most frequent; an empty vocabulary gives a 0-column block.
    """
    counts = sp.csr_matrix(counts, dtype=np.float64)
    n_docs = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    keep = (df >= min_df) & (df <= (max_df * n_docs if isinstance(max_df, float) else max_df))
    if max_features is not None and keep.sum() > max_features:
        total = np.asarray(counts.sum(axis=0)).ravel()
        kept = np.flatnonzero(keep)
        keep[:] = False
        keep[kept[np.argsort(-total[kept], kind="stable")[:max_features]]] = True
    cols = np.flatnonzero(keep)
    if len(cols) == 0:
        return sp.csr_matrix((n_docs, 0), dtype=np.float32)
    block = counts[:, cols]
    block.data = 1.0 + np.log(block.data)                           # sublinear tf
    idf = np.log((1.0 + n_docs) / (1.0 + df[cols])) + 1.0           # smooth idf
    block = sp.csr_matrix(block @ sp.diags(idf), dtype=np.float64)
    # imported here: loading a fitted model and answering queries need no sklearn (~1 s of imports)
    from sklearn.preprocessing import normalize

    return normalize(block, norm="l2", copy=False).astype(np.float32)


def tfidf_matrix(texts: list[str], *, char_ngrams: tuple[int, int] = (3, 5), max_df: float = 0.5,
                 min_df: int = 1, max_features: int | None = None) -> sp.csr_matrix:
    """Rows = texts; L2-normalised word block + char_wb block, scaled so a row has norm 1 (float32).

    The same matrix as two sklearn ``TfidfVectorizer``s (word tokens; ``char_wb`` n-grams of the
    joiner-folded text), computed faster on big catalogues: each distinct text is tokenised once,
    and the character n-grams of each distinct whitespace token once (a ``char_wb`` document is the
    sum of its tokens' padded n-grams), so the cost follows the vocabulary, not the catalogue.
    """
    from sklearn.feature_extraction.text import CountVectorizer

    texts = [t if isinstance(t, str) else "" for t in texts]
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object))
    uniques = list(uniques)
    blocks = []
    try:
        words = CountVectorizer(lowercase=True, token_pattern=r"(?u)\b\w+\b", dtype=np.float64)
        blocks.append(words.fit_transform(uniques)[codes])
    except ValueError:  # no word at all
        blocks.append(sp.csr_matrix((len(texts), 0)))
    try:
        tokens = CountVectorizer(lowercase=False, preprocessor=_fold_joiners, token_pattern=r"(?u)\S+",
                                 dtype=np.float64)
        doc_tokens = tokens.fit_transform(uniques)
        vocab = sorted(tokens.vocabulary_, key=tokens.vocabulary_.get)
        grams = CountVectorizer(analyzer="char_wb", ngram_range=tuple(char_ngrams), lowercase=False,
                                preprocessor=lambda x: x, dtype=np.float64)
        blocks.append(sp.csr_matrix(doc_tokens @ grams.fit_transform(vocab))[codes])
    except ValueError:
        blocks.append(sp.csr_matrix((len(texts), 0)))
    matrix = sp.hstack([_pruned_tfidf(b, max_df, min_df, max_features) for b in blocks], format="csr",
                       dtype=np.float32)
    if matrix.shape[1] == 0:
        # every song shares the same text (or has none): the text tells songs apart by nothing, so the
        # channel has no terms and proposes nothing (sklearn's normalize refuses a 0-column matrix)
        return matrix
    from sklearn.preprocessing import normalize

    return normalize(matrix, norm="l2", copy=False).astype(np.float32)


def prune_postings(postings: sp.csr_matrix, max_postings: int | None) -> sp.csr_matrix:
    """Keep each term's ``max_postings`` heaviest songs (static index pruning; None = keep all).

    Bounds query time on big catalogues where a common n-gram lists hundreds of thousands of songs.
    Ties are broken by a fixed hash of the song index, not by catalogue order, so pruning does not
    favour old songs. Deterministic: a loaded model prunes exactly as the fitted one did.
    """
    if max_postings is None:
        return postings
    lengths = np.diff(postings.indptr)
    long_terms = np.flatnonzero(lengths > max_postings)
    if len(long_terms) == 0:
        return postings
    keep = np.ones(postings.nnz, bool)
    for t in long_terms:
        start, end = postings.indptr[t], postings.indptr[t + 1]
        cols = postings.indices[start:end].astype(np.uint64)
        jitter = ((cols * np.uint64(2654435761)) % np.uint64(1000003)).astype(np.float64) * 1e-12
        order = np.argsort(-(postings.data[start:end] + jitter), kind="stable")
        keep[start + order[max_postings:]] = False
    rows = np.repeat(np.arange(postings.shape[0]), lengths)[keep]
    return sp.csr_matrix((postings.data[keep], (rows, postings.indices[keep])), shape=postings.shape,
                         dtype=np.float32)


class TextSimilarityChannel:
    """Cosine similarity of TF-IDF rows; subclasses say which text a song contributes."""
    name = "text"

    def __init__(self, query_terms: int = 64, max_df: float = 0.5, min_df: int = 1,
                 char_ngrams: tuple[int, int] = (3, 5), max_postings: int | None = None) -> None:
        self.query_terms = query_terms
        self.max_postings = max_postings
        self.max_df = max_df
        self.min_df = min_df
        self.char_ngrams = tuple(char_ngrams)

    def song_texts(self, songs) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, songs) -> TextSimilarityChannel:
        """``songs``: the songs DataFrame in catalogue (``SongIndex``) order."""
        matrix = tfidf_matrix(self.song_texts(songs), char_ngrams=self.char_ngrams, max_df=self.max_df,
                              min_df=self.min_df)
        self._set_matrix(matrix)
        return self

    def _set_matrix(self, matrix: sp.csr_matrix) -> None:
        self.matrix_ = matrix
        self.postings_ = prune_postings(matrix.T.tocsr(), self.max_postings)  # terms x songs

    def candidates(self, seed_idx: np.ndarray, n: int, exclude: np.ndarray | None = None,
                   user_row: int | None = None, seed_weights: np.ndarray | None = None) -> Candidates:
        if len(seed_idx) == 0 or self.matrix_.shape[1] == 0:
            return Candidates.empty()
        cols, vals = sparse_row_sum(self.postings_, *self.query(seed_idx, seed_weights))
        return best_of(cols, vals, n, exclude)

    def query(self, seed_idx: np.ndarray, seed_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The seeds' query: their strongest ``query_terms`` terms and weights, divided by the seeds' total weight."""
        terms, weights = sparse_row_sum(self.matrix_, np.asarray(seed_idx, np.int64), seed_weights)
        if len(terms) > self.query_terms:
            keep = np.argpartition(-weights, self.query_terms - 1)[: self.query_terms]
            terms, weights = terms[keep], weights[keep]
        total = float(np.sum(seed_weights)) if seed_weights is not None else float(len(seed_idx))
        return terms, weights / max(total, 1e-9)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return csr_to_arrays("tfidf", self.matrix_)

    @classmethod
    def from_arrays(cls, arrays, params: dict) -> TextSimilarityChannel:
        channel = cls(**params)
        channel._set_matrix(csr_from_arrays("tfidf", arrays))
        return channel

    def params(self) -> dict:
        return {"query_terms": self.query_terms, "max_postings": self.max_postings, "max_df": self.max_df, "min_df": self.min_df,
                "char_ngrams": list(self.char_ngrams)}
