"""Saving and loading the recommender: arrays and JSON only, same answers after a round trip."""

from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pytest
from recommender_data import synthetic_catalogue

from sunorecsys.recommenders.hybrid import HybridRecommender


@pytest.fixture(scope="module")
def fitted():
    songs, interactions, quality = synthetic_catalogue()
    del quality["jazz-3"]
    return HybridRecommender(item_cf_weight=0.4, quality_threshold=0.5).fit(
        songs, interactions=interactions, quality_scores=quality)


def test_round_trip_gives_the_same_recommendations(fitted, tmp_path):
    saved = fitted.save(tmp_path / "hybrid")
    loaded = HybridRecommender.load(saved)
    for seeds, user in ((["lofi-0", "jazz-2"], None), (["metal-5"], None), (None, "user-4")):
        assert loaded.recommend(song_ids=seeds, n=10, user_id=user) == fitted.recommend(
            song_ids=seeds, n=10, user_id=user)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.quality_filter_.get_quality_score("jazz-3") is None
    assert loaded.quality_filter_.get_quality_score("jazz-4") == pytest.approx(0.8)


def test_saved_model_holds_no_pickle_and_a_manifest(fitted, tmp_path):
    saved = fitted.save(tmp_path / "hybrid")
    names = sorted(p.name for p in saved.iterdir())
    assert all(n.endswith((".npz", ".parquet", ".json")) for n in names), names
    for npz in saved.glob("*.npz"):
        with np.load(npz, allow_pickle=False) as data:  # raises if any member needed pickle
            assert all(data[k].dtype.kind != "O" for k in data.files)
    manifest = json.loads((saved / "manifest.json").read_text())
    assert manifest["weights"]["item_cf"] == 0.4
    assert manifest["versions"]["implicit"] and manifest["versions"]["numpy"]
    assert len(manifest["data_fingerprint"]) == 64
    assert manifest["fit_stats"]["unknown_song_events"] == 2 and manifest["fitted_at"]
    # same data -> same fingerprint; a refit on other data -> another one
    again = fitted.save(tmp_path / "again")
    assert json.loads((again / "manifest.json").read_text())["data_fingerprint"] == manifest["data_fingerprint"]
    songs, interactions, quality = synthetic_catalogue(seed=4)
    other = HybridRecommender().fit(songs, interactions=interactions, quality_scores=quality).save(tmp_path / "o")
    assert json.loads((other / "manifest.json").read_text())["data_fingerprint"] != manifest["data_fingerprint"]


def test_a_tampered_file_with_a_pickled_object_is_refused(fitted, tmp_path):
    saved = fitted.save(tmp_path / "hybrid")
    # replace one array by an object array (which numpy can only store by pickling)
    path = saved / "quality.npz"
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["quality"] = np.array([{"boom": 1}] * 3, dtype=object)
    np.savez(path, **arrays)
    assert zipfile.is_zipfile(path)
    with pytest.raises(ValueError, match="sha256"):      # the manifest's checksum notices first
        HybridRecommender.load(saved)
    manifest = json.loads((saved / "manifest.json").read_text())
    manifest["files"]["quality.npz"] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                        "bytes": path.stat().st_size}
    (saved / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="allow_pickle"):  # and numpy refuses to unpickle it
        HybridRecommender.load(saved)


def test_saving_over_an_existing_model_replaces_it_whole(fitted, tmp_path):
    target = tmp_path / "hybrid"
    fitted.save(target)
    (target / "stale.npz").write_bytes(b"old")
    fitted.with_settings(user_weight=0.9).save(target)
    assert not (target / "stale.npz").exists()
    assert HybridRecommender.load(target).user_weight == 0.9
    with pytest.raises(FileNotFoundError, match="manifest"):
        HybridRecommender.load(tmp_path / "nothing-here")


def test_persistence_does_not_import_the_hybrid_module():
    # hybrid -> persistence only (save/load); persistence is handed the class, so there is no circle
    import ast
    import inspect

    from sunorecsys.recommenders import persistence

    tree = ast.parse(inspect.getsource(persistence))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert "sunorecsys.recommenders.hybrid" not in imported
    assert not any(m and m.startswith("sunorecsys.evaluation") for m in imported)
