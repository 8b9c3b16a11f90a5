"""HybridRecommender and its channels on a small synthetic catalogue built in the test."""

from __future__ import annotations

import numpy as np
import pytest
from recommender_data import synthetic_catalogue

from sunorecsys.recommenders.base import Candidates, normalise_scores
from sunorecsys.recommenders.content import ContentChannel
from sunorecsys.recommenders.fusion import FusionRules, fuse
from sunorecsys.recommenders.hybrid import HybridRecommender


@pytest.fixture(scope="module")
def catalogue():
    return synthetic_catalogue()


@pytest.fixture(scope="module")
def model(catalogue):
    songs, interactions, quality = catalogue
    return HybridRecommender(max_per_creator=None).fit(songs, interactions=interactions, quality_scores=quality)


def test_scores_are_scaled_per_channel_before_the_weights():
    # channel A scores in the thousands, channel B below 1: with equal weights their tops tie
    a = Candidates(np.array([1, 2]), np.array([5000.0, 2500.0], np.float32))
    b = Candidates(np.array([3, 4]), np.array([0.9, 0.45], np.float32))
    rows = fuse({"item_cf": a, "content": b}, {"item_cf": 1.0, "content": 1.0}, quality=np.full(5, 0.9),
                quality_votes=lambda idx: np.full(len(idx), 0.9), creators=np.arange(5),
                exclude=np.array([], np.int64), rules=FusionRules(0.4), n=4)
    scores = {r["idx"]: r["score"] for r in rows}
    assert scores[1] == pytest.approx(scores[3]) and scores[2] == pytest.approx(scores[4])
    assert list(normalise_scores(np.array([-1.0, 0.0, 2.0]))) == [0.0, 0.0, 1.0]


def test_lofi_meets_lofi_in_the_content_channel(catalogue):
    songs, _, _ = catalogue
    channel = ContentChannel().fit(songs)
    seed = int(np.flatnonzero(songs["song_id"] == "lofi-0")[0])
    found = channel.candidates(np.array([seed]), n=50)
    ids = list(songs["song_id"].to_numpy()[found.idx])
    assert "cold-lofi" in ids                       # tagged "lofi", not "lo-fi"
    assert not any(s.startswith("metal") for s in ids[:12])


GUIDE_WEIGHTS = {"item_cf_weight": 0.25, "item_content_weight": 0.30, "prompt_weight": 0.20, "user_weight": 0.20,
                 "quality_weight": 0.10}


def test_seeds_excluded_duplicates_merged_channels_reported(model, catalogue):
    seeds = ["lofi-0", "lofi-1"]
    # the guide's five weights, used as given: several channels speak, their proposals merge
    recs = model.with_settings(**GUIDE_WEIGHTS).recommend(song_ids=seeds, n=10)
    ids = [r["song_id"] for r in recs]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert not set(ids) & set(seeds)
    assert all(s.startswith("lofi") or s == "cold-lofi" for s in ids)
    for r in recs:
        assert r["channels"] and set(r["channel_scores"]) <= set(r["channels"])
        assert 0 <= min(r["channel_scores"].values()) and max(r["channel_scores"].values()) <= 1
    assert [r["score"] for r in recs] == sorted((r["score"] for r in recs), reverse=True)
    assert any(len(r["channels"]) > 1 for r in recs)  # proposals of several channels merged into one row


def test_cold_song_reaches_listeners_through_content_and_prompt(model):
    recs = model.recommend(song_ids=["lofi-0", "lofi-2", "lofi-4"], n=12)
    cold = [r for r in recs if r["song_id"] == "cold-lofi"]
    assert cold, "a song nobody has played must still be recommendable"
    assert "item_cf" not in cold[0]["channels"]
    assert {"content", "prompt"} & set(cold[0]["channels"])


def test_unknown_seeds_and_unknown_song_events_are_reported(model):
    with pytest.warns(UserWarning, match="not in the catalogue"):
        recs = model.recommend(song_ids=["lofi-0", "no-such-song"], n=5)
    assert len(recs) == 5 and model.last_unknown_seeds == ["no-such-song"]
    with pytest.warns(UserWarning):
        assert model.recommend(song_ids=["nope-1", "nope-2"], n=5) == []
    assert model.last_unknown_seeds == ["nope-1", "nope-2"]
    assert model.fit_stats_["unknown_song_events"] == 2       # the ghost song's events, dropped and counted
    assert model.fit_stats_["songs"] == 37


def test_creator_cap_limits_one_creators_songs(model):
    capped = model.with_settings(max_per_creator=1).recommend(song_ids=["jazz-0"], n=10)
    creators = [r["creator"] for r in capped]
    assert len(creators) == len(set(creators))
    uncapped = model.recommend(song_ids=["jazz-0"], n=10)
    assert len({r["creator"] for r in uncapped}) < len(uncapped)


def test_quality_threshold_applies_last_and_unscored_policy(catalogue):
    songs, interactions, quality = catalogue
    quality = dict(quality)
    low = ["lofi-1", "lofi-2", "lofi-3"]
    for s in low:
        quality[s] = 0.1
    del quality["lofi-4"]  # unscored
    base = HybridRecommender(max_per_creator=None).fit(songs, interactions=interactions, quality_scores=quality)
    unfiltered = [r["song_id"] for r in base.with_settings(use_quality_filter=False).recommend(["lofi-0"], n=12)]
    assert set(low) & set(unfiltered)  # they would be recommended...
    recs = base.recommend(song_ids=["lofi-0"], n=12)
    ids = [r["song_id"] for r in recs]
    assert not set(low) & set(ids)     # ...but the threshold removes them
    assert all(r["quality_score"] is None or r["quality_score"] >= 0.4 for r in recs)
    flagged = [r for r in recs if r["song_id"] == "lofi-4"]
    assert flagged and flagged[0]["quality_missing"] and flagged[0]["quality_score"] is None
    dropped = base.with_settings(missing_quality="drop").recommend(song_ids=["lofi-0"], n=12)
    assert "lofi-4" not in {r["song_id"] for r in dropped}


def test_recommend_for_a_listener_skips_what_they_heard(model, catalogue):
    _, interactions, _ = catalogue
    mine = interactions[interactions["user_id"] == "user-3"]
    net = mine.groupby("song_id")["weight"].sum()
    heard = set(net[net > 0].index)            # a play then a skip is not "heard and liked"
    recs = model.recommend(user_id="user-3", n=5)
    assert len(recs) == 5
    ids = {r["song_id"] for r in recs}
    assert not ids & heard
    assert sum(s.startswith("lofi") for s in ids) >= 4  # user-3 listens to lo-fi (3 % 3 == 0)
    # the channels that speak are the ones the learned fusion weighs for user queries
    learned = {c for c, w in model.fusion_weights("user").items() if w > 0}
    assert set().union(*(r["channels"] for r in recs)) <= learned | {"content", "prompt", "quality"}
    guided = model.with_settings(**GUIDE_WEIGHTS).recommend(user_id="user-3", n=5)
    assert "user" in set().union(*(r["channels"] for r in guided))
    with pytest.warns(UserWarning, match="no listening history"):
        assert model.recommend(user_id="stranger", n=5) == []
    assert model.last_unknown_user == "stranger"


def test_quality_channel_alone_is_a_non_personal_baseline(model):
    alone = model.with_settings(item_cf_weight=0, item_content_weight=0, prompt_weight=0, user_weight=0,
                                quality_weight=1.0)
    recs = alone.recommend(song_ids=["jazz-1"], n=5)
    assert len(recs) == 5 and all(r["channels"] == ["quality"] for r in recs)


def test_settings_that_need_a_refit_are_refused(model):
    with pytest.raises(ValueError, match="new fit"):
        model.with_settings(user_params={"factors": 4})
    with pytest.raises(RuntimeError, match="not fitted"):
        HybridRecommender().recommend(song_ids=["x"])


def test_categorical_and_string_logs_give_the_same_matrix(catalogue):
    from sunorecsys.recommenders.base import SongIndex
    from sunorecsys.recommenders.listening_log import build_user_items

    songs, interactions, _ = catalogue
    index = SongIndex(songs["song_id"])
    plain = build_user_items(interactions, index)
    categorical = build_user_items(interactions.astype({"user_id": "category", "song_id": "category"}), index)

    def triples(user_items):
        coo = user_items.matrix.tocoo()
        return sorted(zip(user_items.users[coo.row], coo.col.tolist(), coo.data.tolist()))

    assert triples(plain) == triples(categorical)  # row order may differ (categories are sorted)
    assert plain.stats == categorical.stats
    # skips cancel their play: no pair of the matrix comes from a play-then-skip alone
    assert plain.matrix.data.min() > 0
    assert plain.stats["warm_songs"] == 36  # every catalogue song but the cold one has a positive listen


def test_pruned_posting_lists_keep_the_heaviest_songs():
    import scipy.sparse as sp

    from sunorecsys.recommenders.text_index import prune_postings

    postings = sp.csr_matrix(np.array([[0.1, 0.9, 0.5, 0.7, 0.0], [0.3, 0.0, 0.0, 0.0, 0.2]], np.float32))
    pruned = prune_postings(postings, 2)
    assert sorted(pruned[0].indices) == [1, 3] and sorted(pruned[1].indices) == [0, 4]
    assert prune_postings(postings, None) is postings
