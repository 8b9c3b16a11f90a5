"""Seed recommendations in blocks (sunorecsys/recommenders/batch.py) equal recommend() per seed.

On a real public log (MovieLens-100K from the recbole wheel, the items as songs): some songs made
cold (their events removed: the text floor), some flagged as spam, some unscored (the missing
quality policy), creators so the per-creator cap bites. The batched rows must be the same as one
``recommend(song_ids=[seed])`` per seed: songs, ranks, scores, quality and channels, for the
fitted (learned) fusion and for other settings of the same fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sunorecsys.evaluation.public_logs import movielens_100k
from sunorecsys.recommenders.batch import COLUMNS, recommend_seeds
from sunorecsys.recommenders.hybrid import HybridRecommender


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    songs, events = movielens_100k(tmp_path_factory.mktemp("recbole"))
    rng = np.random.default_rng(3)
    songs = songs.assign(user_id=[f"c{i % 40}" for i in range(len(songs))])
    cold = set(songs["song_id"].sample(60, random_state=1))
    events = events[~events["song_id"].isin(cold)].reset_index(drop=True)
    scored = songs["song_id"].sample(frac=0.8, random_state=2)
    quality = pd.DataFrame({"song_id": scored, "quality_score": rng.uniform(0.0, 1.0, len(scored))})
    flags = pd.DataFrame({"song_id": songs["song_id"].sample(30, random_state=4), "flagged": True})
    model = HybridRecommender(validation_users=300).fit(songs, interactions=events, quality_scores=quality,
                                                         spam_flags=flags)
    return model, songs, sorted(cold), set(flags["song_id"])


def one_by_one(model, seeds: list[str], n: int) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        for rank, rec in enumerate(model.recommend(song_ids=[seed], n=n), start=1):
            rows.append({"seed_song_id": seed, "rank": rank, "song_id": rec["song_id"], "score": rec["score"],
                         "quality_score": rec["quality_score"], "channels": list(rec["channels"])})
    return pd.DataFrame(rows, columns=COLUMNS)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.reset_index(drop=True).copy()
    out["channels"] = out["channels"].map("+".join)
    out["quality_score"] = out["quality_score"].astype("float64")
    out["rank"] = out["rank"].astype("int64")
    return out


def seeds_of(songs: pd.DataFrame, cold: list[str], flagged: set[str], k: int = 150) -> list[str]:
    """Warm seeds, every cold seed and some flagged ones (a flagged seed still gets a list)."""
    warm = songs["song_id"].sample(k, random_state=5).tolist()
    return list(dict.fromkeys(warm + cold + sorted(flagged)[:10]))


def test_blocks_equal_recommend_per_seed_on_a_real_log(fitted):
    model, songs, cold, flagged = fitted
    seeds = seeds_of(songs, cold, flagged)
    expected = one_by_one(model, seeds, 10)
    got = recommend_seeds(model, seeds, 10, block=64)
    pd.testing.assert_frame_equal(comparable(got), comparable(expected), check_exact=True)
    # the cases the test is meant to exercise did happen
    assert model.fit_stats_["fusion"]["learned"]
    assert not set(got["song_id"]) & flagged
    assert got.groupby("seed_song_id").size().eq(10).all()
    assert got["quality_score"].isna().any()
    assert got["channels"].map(lambda c: c == ["quality"]).any() or cold


@pytest.mark.parametrize("settings", [
    {"use_quality_filter": True, "quality_threshold": 0.6, "missing_quality": "drop", "max_per_creator": 1},
    {"use_quality_filter": False, "max_per_creator": None, "spam_policy": "keep"},
    {"item_cf_weight": 0.0, "item_content_weight": 1.0, "prompt_weight": 0.0, "user_weight": 0.0,
     "quality_weight": 0.0, "exposure": 0.5},
    {"spam_policy": "demote"},
])
def test_blocks_equal_recommend_with_other_settings(fitted, settings):
    model, songs, cold, flagged = fitted
    variant = model.with_settings(**settings)
    seeds = seeds_of(songs, cold, flagged, k=40)
    pd.testing.assert_frame_equal(comparable(recommend_seeds(variant, seeds, 7, block=16)),
                                  comparable(one_by_one(variant, seeds, 7)), check_exact=True)


def test_unknown_seed_is_refused_and_empty_input_gives_an_empty_table(fitted):
    model, songs, _, _ = fitted
    with pytest.raises(KeyError, match="not in the catalogue"):
        recommend_seeds(model, [songs["song_id"].iloc[0], "no-such-song"], 5)
    empty = recommend_seeds(model, [], 5)
    assert list(empty.columns) == COLUMNS and len(empty) == 0
