"""The RP3beta channel (``random_walk.py``) on a slice of a real log (MovieLens-100K from the recbole wheel)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from sunorecsys.evaluation.public_logs import movielens_100k
from sunorecsys.recommenders.base import SongIndex
from sunorecsys.recommenders.batch import recommend_seeds
from sunorecsys.recommenders.hybrid import HybridRecommender
from sunorecsys.recommenders.listening_log import build_user_items
from sunorecsys.recommenders.random_walk import BETA_GRID, RP3betaChannel, rp3beta_similarity


@pytest.fixture(scope="module")
def movielens_slice(tmp_path_factory):
    """The first 300 listeners of MovieLens-100K: songs, their log, and the listening matrix."""
    songs, events = movielens_100k(tmp_path_factory.mktemp("recbole"))
    listeners = sorted(events["user_id"].unique())[:300]
    events = events[events["user_id"].isin(listeners)].reset_index(drop=True)
    ui = build_user_items(events, SongIndex(songs["song_id"]))
    return songs, events, ui.matrix


def walk_by_definition(matrix: sp.csr_matrix, alpha: float, beta: float) -> np.ndarray:
    """RP3beta as Paudel et al. write it, dense: P(i->u)^alpha P(u->j)^alpha / listeners_j^beta, no diagonal."""
    x = (matrix.toarray() > 0).astype(np.float64)
    listeners, per_user = x.sum(axis=0), x.sum(axis=1)
    song_to_user = (x / np.maximum(listeners, 1.0)).T ** alpha          # songs x listeners
    user_to_song = (x / np.maximum(per_user, 1.0)[:, None]) ** alpha    # listeners x songs
    w = song_to_user @ user_to_song / np.maximum(listeners, 1.0)[None, :] ** beta
    np.fill_diagonal(w, 0.0)
    return w


def test_rp3beta_keeps_each_songs_strongest_walks_with_the_definitions_values(movielens_slice):
    _, _, matrix = movielens_slice
    alpha, beta, k = 0.6, 0.6, 30
    reference = walk_by_definition(matrix, alpha, beta)
    sim = rp3beta_similarity(matrix, alpha, beta, k)
    assert sim.shape == reference.shape and sim.dtype == np.float32
    assert np.diff(sim.indptr).max() == k and (sim.diagonal() == 0).all()
    # every stored value is the definition's
    rows = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
    np.testing.assert_allclose(sim.data, reference[rows, sim.indices], rtol=1e-4)
    # and a row keeps the K strongest: its weakest kept value is the K-th largest of the definition
    for i in np.flatnonzero(np.diff(sim.indptr) == k)[:200]:
        kth = np.sort(reference[i])[::-1][k - 1]
        assert sim[i].data.min() == pytest.approx(kth, rel=1e-4)


def test_a_larger_beta_walks_to_less_listened_songs(movielens_slice):
    _, _, matrix = movielens_slice
    listeners = np.bincount(matrix.indices, minlength=matrix.shape[1])
    mean_listeners = {}
    for beta in (0.0, 0.5, 0.8):
        sim = rp3beta_similarity(matrix, 0.6, beta, 20)
        mean_listeners[beta] = listeners[sim.indices].mean()
    assert mean_listeners[0.0] > mean_listeners[0.5] > mean_listeners[0.8]


def test_rp3beta_refuses_bad_parameters_and_an_empty_log_gives_an_empty_channel(movielens_slice):
    _, _, matrix = movielens_slice
    with pytest.raises(ValueError, match="alpha > 0 and beta >= 0"):
        rp3beta_similarity(matrix, 0.0, 0.5, 10)
    with pytest.raises(ValueError, match="alpha > 0 and beta >= 0"):
        rp3beta_similarity(matrix, 0.6, -0.1, 10)
    empty = RP3betaChannel().fit(sp.csr_matrix(matrix.shape, dtype=np.float32))
    assert empty.similarity_.nnz == 0 and len(empty.candidates(np.array([0, 1]), 10)) == 0


def test_the_fitted_recommender_learns_beta_on_validation_and_saves_the_channel(movielens_slice, tmp_path):
    songs, events, _ = movielens_slice
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = HybridRecommender(rp3_weight=None).fit(songs, interactions=events)   # off by default
    fusion = model.fit_stats_["fusion"]
    assert fusion["rp3_beta"] in BETA_GRID and model.rp3_.beta == fusion["rp3_beta"]
    assert set(fusion["rp3_table"]) == {str(b) for b in BETA_GRID}
    assert fusion["rp3_table"][str(fusion["rp3_beta"])]["feasible"]
    assert model.fit_stats_["channel_sizes"]["rp3_beta"] == fusion["rp3_beta"]
    # the channel answers seed queries with songs the seed's listeners took up
    seed = model.songs_.lookup(["m50"])[0]
    cand = model.rp3_.candidates(seed, 10, seed)
    assert len(cand) == 10 and seed[0] not in cand.idx
    # given weights: the guide's five alone leave it off; an explicit weight turns it on
    guide = {"item_cf_weight": 0.3, "item_content_weight": 0.2, "prompt_weight": 0.1, "user_weight": 0.2,
             "quality_weight": 0.1}
    assert model.with_settings(**guide).fusion_weights("seeds")["rp3"] == 0.0
    only = model.with_settings(**{**guide, "item_cf_weight": 0.0, "item_content_weight": 0.0, "prompt_weight": 0.0,
                                  "user_weight": 0.0, "quality_weight": 0.0, "rp3_weight": 1.0},
                               exposure=0.0, use_quality_filter=False, max_per_creator=None)
    rows = only.recommend(song_ids=["m50"], n=5)
    assert [r["song_id"] for r in rows] == list(model.songs_.ids[cand.idx[:5]])
    assert all(r["channels"] == ["rp3"] for r in rows)
    assert not hasattr(HybridRecommender().fit(songs, interactions=events), "rp3_")
    # saved and loaded: the same matrix, the same lists, and the batched rows equal recommend()
    model.save(tmp_path / "model")
    loaded = HybridRecommender.load(tmp_path / "model")
    assert (loaded.rp3_.similarity_ != model.rp3_.similarity_).nnz == 0
    assert loaded.rp3_.params() == model.rp3_.params()
    seeds = ["m50", "m100", "m181"]
    for s in seeds:
        assert loaded.recommend(song_ids=[s], n=10) == model.recommend(song_ids=[s], n=10)
    only_loaded = loaded.with_settings(**{k: getattr(only, k) for k in (*guide, "rp3_weight", "exposure",
                                                                          "use_quality_filter", "max_per_creator")})
    table = recommend_seeds(only_loaded, seeds, 5)
    for s in seeds:
        assert table[table["seed_song_id"] == s]["song_id"].tolist() == \
            [r["song_id"] for r in only_loaded.recommend(song_ids=[s], n=5)]
