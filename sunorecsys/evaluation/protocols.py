"""Per-user leave-last-k split: every listener with enough history is judged on their newest songs.

The global temporal split (``split.py``) has no look-ahead but keeps only the listeners active on
both sides of one cut (109 of 943 on MovieLens-100K); leave-last-k keeps every listener with
``k + min_train`` positive songs, at the price of letting a listener's test period overlap other
listeners' training events. Reports show both.

Positive pairs only (summed weight > 0, as ``listening_log``); a pair's time is its first
positive event. A listener's cut is the time of their k-th newest new song: their events from the
cut on are removed from training (no look-ahead inside one listener's own history).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sunorecsys.recommenders.listening_log import event_weights


@dataclass(frozen=True)
class LeaveLastKSplit:
    train: pd.DataFrame                    # the log minus each judged listener's newest songs
    test: dict[str, list[str]]             # listener -> their k newest songs, newest last
    seeds: dict[str, list[str]]            # listener -> their ``n_seeds`` newest training songs, newest last
    k: int


def _pair_times(interactions: pd.DataFrame) -> pd.DataFrame:
    """(user_id, song_id, time, weight): first event time and summed weight of every pair."""
    frame = pd.DataFrame({"user_id": interactions["user_id"].astype(str).to_numpy(),
                          "song_id": interactions["song_id"].astype(str).to_numpy(),
                          "time": pd.to_datetime(interactions["timestamp"], utc=True).to_numpy(),
                          "weight": event_weights(interactions),
                          "order": np.arange(len(interactions))})
    return (frame.groupby(["user_id", "song_id"], sort=False, observed=True)
            .agg(time=("time", "min"), weight=("weight", "sum"), order=("order", "min")).reset_index())


def leave_last_k(interactions: pd.DataFrame, k: int = 10, min_train: int = 5, n_seeds: int = 5,
                 max_users: int | None = None, seed: int = 0) -> LeaveLastKSplit:
    """Hold out each listener's ``k`` newest positive songs (listeners with >= ``k + min_train`` of them).

    ``max_users`` samples that many judged listeners (reproducibly, ``seed``); the others keep their
    whole history in training. Ties in time are broken by the log's order (the later row is newer).
    """
    if k < 1 or min_train < 1:
        raise ValueError("k and min_train must be >= 1")
    if "timestamp" not in interactions:
        raise ValueError("leave-last-k needs a 'timestamp' column")
    pairs = _pair_times(interactions)
    pairs = pairs[pairs["weight"] > 0].sort_values(["user_id", "time", "order"], kind="stable")
    counts = pairs.groupby("user_id", sort=False).size()
    judged = counts.index[counts >= k + min_train].astype(str)
    if max_users is not None and len(judged) > max_users:
        rng = np.random.default_rng(seed)
        judged = pd.Index(sorted(rng.choice(judged.to_numpy(), size=max_users, replace=False)))
    mine = pairs[pairs["user_id"].isin(judged)]
    position = mine.groupby("user_id", sort=False).cumcount(ascending=False)   # 0 = newest
    held = mine[position.to_numpy() < k]
    kept = mine[position.to_numpy() >= k]
    cut = held.groupby("user_id", sort=False)["time"].min()
    test = {u: g["song_id"].tolist() for u, g in held.groupby("user_id", sort=False)}
    seeds = {u: g["song_id"].tolist()[-n_seeds:] for u, g in kept.groupby("user_id", sort=False)}
    # remove the judged listeners' events from their cut on (later plays of old songs included)
    times = pd.to_datetime(interactions["timestamp"], utc=True)
    if cut.empty:  # no listener with enough history (a small or new log): nothing is held out
        drop = np.zeros(len(interactions), dtype=bool)
    else:
        user_cut = interactions["user_id"].astype(str).map(cut)
        drop = user_cut.notna().to_numpy() & (times >= user_cut).to_numpy()
    # a held-out pair's events before the cut (e.g. a skip) would leak the song: drop them too
    held_keys = set(zip(held["user_id"], held["song_id"]))
    keys = zip(interactions["user_id"].astype(str), interactions["song_id"].astype(str))
    drop |= np.fromiter((key in held_keys for key in keys), bool, count=len(interactions))
    train = interactions[~drop].reset_index(drop=True)
    return LeaveLastKSplit(train, test, seeds, k)


@dataclass(frozen=True)
class NewItemsSplit:
    train: pd.DataFrame                    # the log without any event of the new songs
    test: dict[str, list[str]]             # listener -> their positive new songs
    new_songs: list[str]                   # songs first seen in the test period (cold in ``train``)
    cut: pd.Timestamp                      # first time of the test period


def new_items_split(interactions: pd.DataFrame, share: float = 0.1, min_train: int = 5) -> NewItemsSplit:
    """Songs first heard in the newest ``share`` of the catalogue's songs (by first event) become new.

    The cold-start question: would the recommender show a song nobody has heard yet to the listeners
    who later take it up? Every event of the new songs is removed from training (they are cold at
    fit time, as songs added last night are); a listener is judged on their positive new songs when
    they keep ``min_train`` positive songs in training. Bare log-only baselines score 0 here by
    construction; compare with a random ranking (expected recall@k = k / unheard songs).
    """
    if not 0 < share < 1:
        raise ValueError("share must be in (0, 1)")
    if "timestamp" not in interactions:
        raise ValueError("the new-items split needs a 'timestamp' column")
    pairs = _pair_times(interactions)
    first_seen = pairs.groupby("song_id", sort=False)["time"].min().sort_values(kind="stable")
    n_new = max(round(share * len(first_seen)), 1)
    new = first_seen.index[-n_new:].astype(str)
    cut = first_seen.iloc[-n_new]
    is_new = interactions["song_id"].astype(str).isin(set(new)).to_numpy()
    train = interactions[~is_new].reset_index(drop=True)
    positives = pairs[(pairs["weight"] > 0)]
    kept = positives[~positives["song_id"].isin(set(new))].groupby("user_id").size()
    held = positives[positives["song_id"].isin(set(new))]
    judged = set(kept.index[kept >= min_train].astype(str))
    test = {u: g["song_id"].tolist() for u, g in held.groupby("user_id", sort=True) if u in judged}
    return NewItemsSplit(train, test, list(new), pd.Timestamp(cut))
