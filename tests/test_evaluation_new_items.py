"""The new-songs protocol: songs first heard last are removed from training and judged as cold songs."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from recommender_data import clustered_catalogue

from sunorecsys.evaluation import new_items_split
from sunorecsys.recommenders.hybrid import HybridRecommender


@pytest.fixture(scope="module")
def catalogue():
    return clustered_catalogue(seed=9)


def test_new_songs_are_the_last_first_heard_and_absent_from_training(catalogue):
    _songs, log = catalogue
    split = new_items_split(log, share=0.1)
    first_seen = log.groupby("song_id")["timestamp"].min()
    heard = len(first_seen)
    assert len(split.new_songs) == round(0.1 * heard)
    new = set(split.new_songs)
    assert first_seen[list(new)].min() == split.cut
    assert (first_seen.drop(list(new)) <= split.cut).all()
    assert not set(split.train["song_id"]) & new
    assert len(split.train) == len(log) - log["song_id"].isin(new).sum()   # nothing else removed
    positives = set(zip(log["user_id"], log["song_id"]))
    assert split.test and all(s in new and (u, s) in positives for u, ss in split.test.items() for s in ss)
    # every judged listener keeps at least 5 songs to be recommended from
    kept = split.train.groupby("user_id")["song_id"].nunique()
    assert (kept[list(split.test)] >= 5).all()
    with pytest.raises(ValueError, match="share"):
        new_items_split(log, share=1.0)


def test_new_songs_are_cold_for_the_recommender_and_still_reachable(catalogue):
    songs, log = catalogue
    split = new_items_split(log, share=0.1)
    model = HybridRecommender(max_per_creator=None).fit(songs, interactions=split.train)
    cold = set(model.songs_.ids[model.cold_])
    assert set(split.new_songs) <= cold
    # the text floor (fusion.py step 3) keeps them reachable: some listener is shown a new song
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shown = {r["song_id"] for u in split.test for r in model.recommend(user_id=u, n=10)}
    assert shown & set(split.new_songs)
    assert isinstance(split.cut, pd.Timestamp)
