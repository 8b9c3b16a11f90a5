"""QualityFilter: thresholds, the unscored-song policy, sources of scores."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from sunorecsys.quality.scores_file import write_scores_file
from sunorecsys.recommenders.quality_filter import QualityFilter

SONGS = pd.DataFrame({"song_id": ["good", "bad", "edge", "unscored"], "title": ["G", "B", "E", "U"]})


@pytest.fixture
def scores_file(tmp_path):
    entries = {sid: {"song_id": sid, "title": sid.upper(), "scores": {"overall_quality_score": q}}
               for sid, q in (("good", 0.9), ("bad", 0.1), ("edge", 0.4))}
    return write_scores_file(entries, tmp_path / "music_flamingo_scores.json")


def test_threshold_keeps_scores_at_or_above_it_in_input_order(scores_file):
    qf = QualityFilter(quality_threshold=0.4, quality_scores_file=scores_file).fit(SONGS)
    assert qf.filter(["edge", "bad", "good"]) == ["edge", "good"]
    assert qf.get_quality_score("bad") == pytest.approx(0.1)
    assert QualityFilter(quality_threshold=0.41, quality_scores_file=scores_file).fit(SONGS).filter(
        ["edge", "good"]) == ["good"]


def test_unscored_songs_follow_the_policy_and_unknown_ids_are_reported(scores_file):
    keep = QualityFilter(quality_scores_file=scores_file).fit(SONGS)
    assert keep.unscored_ == ["unscored"]
    assert keep.filter(["unscored", "ghost", "good"]) == ["unscored", "good"]
    assert keep.last_unknown_ids_ == ["ghost"]
    drop = QualityFilter(quality_scores_file=scores_file, missing_quality="drop").fit(SONGS)
    assert drop.filter(["unscored", "good"]) == ["good"]
    with pytest.raises(ValueError, match="missing_quality"):
        QualityFilter(missing_quality="maybe").fit(SONGS)


def test_scores_from_a_table_and_errors_name_the_file(tmp_path):
    table = pd.DataFrame({"song_id": ["good", "bad"], "quality_score": [0.7, float("nan")]})
    qf = QualityFilter(quality_scores=table).fit(SONGS)
    assert qf.get_quality_score("good") == pytest.approx(0.7) and qf.get_quality_score("bad") is None
    with pytest.raises(FileNotFoundError, match="nope.json"):
        QualityFilter(quality_scores_file=tmp_path / "nope.json").fit(SONGS)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json"):
        QualityFilter(quality_scores_file=broken).fit(SONGS)
    with pytest.raises(RuntimeError, match="not fitted"):
        QualityFilter().filter(["good"])
    json.loads(json.dumps(qf.scores_))  # plain floats, serialisable


def test_music_flamingo_on_the_fly_is_cache_first(small_catalogue, tiny_flamingo, tmp_path, monkeypatch):
    """The on-the-fly path really scores (scripted tiny checkpoint) and then reuses the guide's cache."""
    import shutil

    from sunorecsys.catalog.ingest import find_catalogue_files, read_catalogue

    songs = read_catalogue(find_catalogue_files(small_catalogue.raw_dir)).songs.head(3)
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_flamingo[("audioflamingo3", "scripted")], model_dir)
    cache = tmp_path / "cache"
    monkeypatch.setenv("SUNORECSYS_DATA_DIR", str(small_catalogue.root))
    kwargs = {"quality_threshold": 0.4, "use_music_flamingo": True, "music_flamingo_model_id": str(model_dir),
              "device": "cpu", "cache_dir": cache}
    first = QualityFilter(**kwargs).fit(songs)
    scored = {s: first.get_quality_score(s) for s in songs["song_id"]}
    playable = [s for s, v in scored.items() if v is not None]
    assert playable, scored
    assert {p.stem for p in cache.glob("*.json")} >= set(playable)
    # weights gone: every song comes from the cache, so no model is needed at all
    shutil.rmtree(model_dir)
    second = QualityFilter(**kwargs).fit(songs)
    assert {s: second.get_quality_score(s) for s in songs["song_id"]} == scored
