"""The learned fusion: it ignores text channels that are noise, leans on text when the log is tiny,
and is never worse than its best single channel on the validation split it learned from.

Each catalogue is judged twice: on the fit's own validation figures (``fit_stats_["fusion"]``) and
on a held-apart per-user leave-last-k split the fit never saw (the model is fitted on its
training part only).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from recommender_data import clustered_catalogue

from sunorecsys.evaluation import leave_last_k
from sunorecsys.evaluation.compare import paired_bootstrap, score_method
from sunorecsys.recommenders.hybrid import HybridRecommender

ALONE = {"item_cf": "item_cf_weight", "content": "item_content_weight", "prompt": "prompt_weight",
         "user": "user_weight", "ease": "ease_weight", "sequence": "sequence_weight"}


def held_apart(songs, interactions, k=3):
    split = leave_last_k(interactions, k=k, min_train=3)
    model = HybridRecommender(max_per_creator=None).fit(songs, interactions=split.train)
    users = sorted(split.test)
    relevant = [set(split.test[u]) for u in users]

    def ndcg_of(variant):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lists = [[r["song_id"] for r in variant.recommend(user_id=u, n=10)] for u in users]
        return score_method("", lists, relevant, 10, len(songs)).ndcg

    zero = {p: 0.0 for p in ALONE.values()} | {"quality_weight": 0.0}
    alone = {c: ndcg_of(model.with_settings(**{**zero, p: 1.0})) for c, p in ALONE.items()}
    return model, ndcg_of(model), alone


def assert_never_below_best_channel_on_validation(model):
    fusion = model.fit_stats_["fusion"]
    assert fusion["learned"], fusion
    for mode in ("user", "seeds"):
        best_single = max(fusion["single_channel_ndcg@10"][mode].values())
        assert fusion["validation_ndcg@10"][mode] >= best_single - 1e-9, (mode, fusion)


@pytest.fixture(scope="module")
def noise():
    songs, interactions = clustered_catalogue(informative_text=False)
    return held_apart(songs, interactions)


@pytest.fixture(scope="module")
def tiny():
    # 9 listeners with 8-11 songs each, 240 songs: co-listening says little, the tags say the genre
    songs, interactions = clustered_catalogue(n_users=9, listens=(8, 12), seed=11)
    return held_apart(songs, interactions, k=2)


def test_text_that_is_noise_is_learned_away_and_the_fusion_matches_item_cf(noise):
    model, fused, alone = noise
    assert_never_below_best_channel_on_validation(model)
    for mode in ("user", "seeds"):
        w = model.fusion_weights(mode)
        text = w["content"] + w["prompt"]
        assert text <= 0.2 * (text + w["item_cf"] + w["user"] + w["ease"]), (mode, w)
    # held apart: the text channels alone are near chance, the fusion is not below item CF beyond noise
    assert alone["content"].mean() < 0.5 * alone["item_cf"].mean()
    diff, low, high = paired_bootstrap(fused, alone["item_cf"])
    print(f"\nnoise text: fusion {fused.mean():.4f} item_cf {alone['item_cf'].mean():.4f} "
          f"diff {diff:+.4f} ({low:+.4f}..{high:+.4f}); channels { {c: round(v.mean(), 4) for c, v in alone.items()} }")
    assert high >= 0, "the fusion loses to item CF beyond the bootstrap interval"


def test_a_tiny_log_makes_the_fusion_lean_on_content(tiny):
    model, fused, alone = tiny
    assert_never_below_best_channel_on_validation(model)
    w = model.fusion_weights("seeds")
    assert w["content"] + w["prompt"] >= max(w["item_cf"], w["user"], w["ease"]), w
    print(f"\ntiny log: fusion {fused.mean():.4f}; channels { {c: round(v.mean(), 4) for c, v in alone.items()} }; "
          f"weights {model.fit_stats_['fusion']['weights']}")
    best_log = max(alone["item_cf"].mean(), alone["user"].mean(), alone["ease"].mean())
    assert fused.mean() >= best_log


def test_new_songs_stay_reachable_when_text_is_ignored_for_warm_songs():
    # a song nobody has heard, tagged exactly like a seed: the cold floor lets it through
    songs, interactions = clustered_catalogue(informative_text=False)
    seed_row = songs.iloc[0]
    cold = seed_row.to_dict() | {"song_id": "brand-new", "title": "released tonight"}
    refit = HybridRecommender(max_per_creator=None).fit(
        pd.concat([songs, pd.DataFrame([cold])], ignore_index=True), interactions=interactions)
    weights = refit.fusion_weights("seeds")
    assert weights["content"] + weights["prompt"] < max(weights.values())   # text is down-weighted for warm songs
    assert refit.cold_[refit.songs_.lookup(["brand-new"])[0]].all()
    ids = [r["song_id"] for r in refit.recommend(song_ids=[seed_row["song_id"]], n=10)]
    assert "brand-new" in ids
    assert refit.cold_scale >= 0.5


def test_explicit_weights_are_used_as_given(noise):
    model, _, _ = noise
    given = model.with_settings(item_cf_weight=0.25, item_content_weight=0.30, prompt_weight=0.20,
                                user_weight=0.20, quality_weight=0.10)
    assert given.fusion_weights("user") == {"item_cf": 0.25, "content": 0.30, "prompt": 0.20, "user": 0.20,
                                            "quality": 0.10, "ease": 0.0, "sequence": 0.0, "rp3": 0.0}
    partly = model.with_settings(quality_weight=0.10)
    learned = model.fusion_weights("seeds")
    assert partly.fusion_weights("seeds") == {**learned, "quality": 0.10}
    assert np.isfinite(list(learned.values())).all()


def test_hubness_reduction_takes_slots_from_the_songs_in_every_neighbourhood():
    from sunorecsys.recommenders.base import SongIndex
    from sunorecsys.recommenders.hubness import neighbour_density, reduce_hubness
    from sunorecsys.recommenders.item_cf import ItemCFChannel
    from sunorecsys.recommenders.listening_log import build_user_items

    songs, log = clustered_catalogue(seed=7)
    matrix = build_user_items(log, SongIndex(songs["song_id"])).matrix
    raw = ItemCFChannel(neighbours=30).fit(matrix)
    density = neighbour_density(raw.similarity_)
    reduced = ItemCFChannel(neighbours=30).fit(matrix)
    assert reduce_hubness(reduced.similarity_, 0.0) is reduced.similarity_
    reduce_hubness(reduced.similarity_, 0.5)
    # every stored score is divided by the candidate's relative density ** 0.5, nothing else moves
    known = density > 0
    factor = np.ones(len(density))
    factor[known] = (density[known] / np.median(density[known])) ** -0.5
    ratio = reduced.similarity_.toarray()[raw.similarity_.nonzero()] / raw.similarity_.toarray()[raw.similarity_.nonzero()]
    np.testing.assert_allclose(ratio, factor[raw.similarity_.nonzero()[1]], rtol=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        reduce_hubness(reduced.similarity_, 1.5)

    def top_song_share(channel):
        shown = np.concatenate([channel.candidates(np.array([s]), 10).idx for s in range(len(songs))])
        return np.bincount(shown).max() / len(songs), len(np.unique(shown))

    (raw_share, raw_distinct), (hub_share, hub_distinct) = top_song_share(raw), top_song_share(reduced)
    print(f"\nmost shown song in {raw_share:.3f} -> {hub_share:.3f} of seed lists; distinct {raw_distinct} -> {hub_distinct}")
    assert hub_share < raw_share and hub_distinct >= raw_distinct


def test_coverage_knobs_are_learned_on_validation_recorded_and_saved(tmp_path):
    from sunorecsys.recommenders.hubness import HUBNESS_GRID, reduce_hubness

    songs, log = clustered_catalogue(seed=7)
    model = HybridRecommender(max_per_creator=None, hubness="learned").fit(songs, interactions=log)
    fusion = model.fit_stats_["fusion"]
    assert fusion["hubness"] in HUBNESS_GRID and set(fusion["hubness_table"]) == {str(a) for a in HUBNESS_GRID}
    assert fusion["hubness_table"][str(fusion["hubness"])]["feasible"]
    for mode in ("user", "seeds"):
        assert 0 < fusion["validation_coverage@10"][mode] <= 1
        assert fusion["validation_ndcg@10"][mode] >= fusion["accuracy_floor_ndcg@10"][mode] - 1e-9
        assert fusion["validation_ndcg@10"][mode] >= (1 - model.exposure_budget) * \
            fusion["budget_reference_ndcg@10"][mode] - 1e-9
    assert_never_below_best_channel_on_validation(model)

    # a given alpha is used as given: the neighbour matrices are the plain ones, reduced
    plain = HybridRecommender(max_per_creator=None, hubness=0.0).fit(songs, interactions=log)
    given = HybridRecommender(max_per_creator=None, hubness=0.25).fit(songs, interactions=log)
    assert plain.fit_stats_["fusion"]["hubness"] == 0.0 and given.fit_stats_["fusion"]["hubness"] == 0.25
    for name in ("item_cf", "sequence"):
        expected = reduce_hubness(getattr(plain, f"{name}_").similarity_.copy(), 0.25)
        np.testing.assert_allclose(getattr(given, f"{name}_").similarity_.toarray(), expected.toarray(), rtol=1e-6)
    with pytest.raises(ValueError, match="new fit"):
        given.with_settings(hubness=0.0)

    seeds = list(songs["song_id"][:3])
    given.save(tmp_path / "model")
    loaded = HybridRecommender.load(tmp_path / "model")
    assert loaded.hubness_alpha() == 0.25
    assert [r["song_id"] for r in loaded.recommend(song_ids=seeds, n=10)] == \
        [r["song_id"] for r in given.recommend(song_ids=seeds, n=10)]


def test_rank_scores_share_mean_ranks_between_ties_and_rank_each_list_on_its_own():
    """Ties share their mean rank (so no list's order of equal scores decides), and long arrays of
    many lists (the batched recommendations) give each list the scores it gets alone."""
    from sunorecsys.recommenders.fusion import rank_scores

    scores = np.array([0.2, 0.9, 0.5, 0.9, 0.0])
    expected_rank = np.array([3.0, 0.5, 2.0, 0.5, 4.0])  # the two 0.9s share ranks 0 and 1
    assert np.allclose(rank_scores(scores), 1.0 / np.log2(2.0 + expected_rank))
    assert rank_scores(np.array([])).dtype == np.float32

    rng = np.random.default_rng(7)
    query = rng.integers(0, 5, 400)
    long_scores = rng.integers(0, 6, 400).astype(np.float64)
    together = rank_scores(long_scores, query)
    for q in range(5):
        assert np.array_equal(together[query == q], rank_scores(long_scores[query == q]))
