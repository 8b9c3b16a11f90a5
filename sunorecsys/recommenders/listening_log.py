"""The listening log as a users x songs matrix aligned with the catalogue (``SongIndex``).

Only positive engagement counts: the weights of a user's events on a song are summed (play 1,
complete 2, like 4, skip -1 in the sample log) and pairs whose sum is not positive (a play then a
skip) are dropped. Events for songs absent from the catalogue are dropped and counted; songs with
no events stay in the matrix as empty columns (cold items), so every channel shares one index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from sunorecsys.recommenders.base import SongIndex

INTERACTION_COLUMNS = ("user_id", "song_id", "timestamp", "event", "weight")
# Used when a log has no ``weight`` column.
DEFAULT_EVENT_WEIGHTS = {"play": 1.0, "complete": 2.0, "like": 4.0, "skip": -1.0}


@dataclass
class UserItems:
    """``matrix`` is users x songs (float32, positive confidences); ``users`` names its rows.

    ``times`` (int64, aligned with ``matrix.data``) is each pair's first event time in seconds since
    the epoch (0 when the log has no timestamps): how recent a listener's songs are.
    """
    matrix: sp.csr_matrix
    users: pd.Index
    stats: dict = field(default_factory=dict)
    times: np.ndarray | None = None

    def row_of(self, user_id: str) -> int | None:
        pos = self.users.get_indexer([str(user_id)])[0]
        return int(pos) if pos >= 0 else None


def event_weights(interactions: pd.DataFrame) -> np.ndarray:
    """Per-event weight: the ``weight`` column when present and finite, else by event name."""
    by_name = interactions.get("event", pd.Series("play", index=interactions.index)).astype(str).str.lower()
    fallback = by_name.map(DEFAULT_EVENT_WEIGHTS).fillna(1.0).to_numpy(np.float64)
    if "weight" not in interactions:
        return fallback
    w = pd.to_numeric(interactions["weight"], errors="coerce").to_numpy(np.float64)
    return np.where(np.isfinite(w), w, fallback)


def positive_pairs(interactions: pd.DataFrame) -> pd.DataFrame:
    """(user_id, song_id, weight) with the summed weight of each pair, positive pairs only."""
    if interactions is None or len(interactions) == 0:
        return pd.DataFrame({"user_id": pd.Series(dtype=str), "song_id": pd.Series(dtype=str),
                             "weight": pd.Series(dtype=np.float32)})
    frame = pd.DataFrame({"user_id": interactions["user_id"].astype(str).to_numpy(),
                          "song_id": interactions["song_id"].astype(str).to_numpy(),
                          "weight": event_weights(interactions)})
    pairs = frame.groupby(["user_id", "song_id"], sort=False, observed=True)["weight"].sum().reset_index()
    return pairs[pairs["weight"] > 0].reset_index(drop=True)


def _codes(values: pd.Series, index: pd.Index | None) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of ``values``: positions in ``index`` (-1 = absent), or a new index when None.

    Categorical columns (e.g. dictionary-encoded Parquet) are mapped through their categories, so
    millions of events never become millions of Python strings.
    """
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories.astype(str)
        codes = values.cat.codes.to_numpy()
        if index is None:
            return codes.astype(np.int64), pd.Index(cats)
        lookup = index.get_indexer(cats)
        return np.where(codes >= 0, lookup[codes], -1).astype(np.int64), index
    if index is None:
        codes, uniques = pd.factorize(values.astype(str))
        return codes.astype(np.int64), pd.Index(uniques)
    return index.get_indexer(values.astype(str)).astype(np.int64), index


def build_user_items(interactions: pd.DataFrame | None, songs: SongIndex) -> UserItems:
    """Users x songs matrix of positive confidences; stats count rows, unknown-song events, kept pairs."""
    n_events = 0 if interactions is None else len(interactions)
    if n_events == 0:
        return UserItems(sp.csr_matrix((0, len(songs)), dtype=np.float32), pd.Index([], dtype=object),
                         {"events": 0, "unknown_song_events": 0, "pairs": 0, "users": 0, "warm_songs": 0},
                         np.empty(0, np.int64))
    song_pos, _ = _codes(interactions["song_id"], songs.ids)
    user_code, users = _codes(interactions["user_id"], None)
    weights = event_weights(interactions)
    known = (song_pos >= 0) & (user_code >= 0)
    unknown_events = int((song_pos < 0).sum())
    # sum each (user, song) pair's weights; keep positive sums (a play then a skip adds up to 0)
    key = user_code[known] * np.int64(len(songs)) + song_pos[known]
    pairs, inverse = np.unique(key, return_inverse=True)
    total = np.bincount(inverse, weights=weights[known])
    first = np.full(len(pairs), np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first, inverse, event_seconds(interactions)[known])
    positive = total > 0
    pairs, total, first = pairs[positive], total[positive], first[positive]
    rows, cols = pairs // len(songs), pairs % len(songs)
    # drop users left without any positive pair, keeping first-seen order of the rest
    used = np.unique(rows)
    remap = np.full(len(users), -1, np.int64)
    remap[used] = np.arange(len(used))
    # ``pairs`` is sorted by (user code, song): CSR order once the user codes are remapped in order
    new_rows = remap[rows]
    order = np.lexsort((cols, new_rows))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(new_rows, minlength=len(used)))]).astype(np.int64)
    matrix = sp.csr_matrix((total[order].astype(np.float32), cols[order].astype(np.int32), indptr),
                           shape=(len(used), len(songs)), dtype=np.float32)
    times = first[order]
    users = pd.Index(users[used].astype(str))
    stats = {"events": n_events, "unknown_song_events": unknown_events, "pairs": int(matrix.nnz),
             "users": len(users), "warm_songs": int((np.bincount(matrix.indices, minlength=len(songs)) > 0).sum())}
    return UserItems(matrix, users, stats, times)


def event_seconds(interactions: pd.DataFrame) -> np.ndarray:
    """Event times in whole seconds since the epoch (int64); 0 where absent or unparseable."""
    if "timestamp" not in interactions:
        return np.zeros(len(interactions), np.int64)
    times = pd.to_datetime(interactions["timestamp"], utc=True, errors="coerce")
    seconds = times.to_numpy("datetime64[ns]").astype(np.int64) // 1_000_000_000
    return np.where(times.isna().to_numpy(), 0, seconds).astype(np.int64)
