"""Blending quality sources: join by song_id, renormalised weights, hard fails, signal fallback, export."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from sunorecsys.quality.blend import combine_quality_scores
from sunorecsys.quality.export import guide_entries
from sunorecsys.quality.scores_file import load_scores, write_scores_file


def _flamingo(rows):
    return pd.DataFrame(rows, columns=["song_id", "status", "overall_quality_score", "production_quality"])


def _audiobox(rows):
    return pd.DataFrame(rows, columns=["song_id", "status", "audiobox_score"])


def _checks(rows):
    return pd.DataFrame(rows, columns=["song_id", "technical_score", "hard_fail"])


FLAMINGO = _flamingo([("a", "ok", 0.8, 0.9), ("b", "partial", 0.5, None), ("c", "failed", None, None),
                      ("e", "ok", 0.9, 0.9)])
AUDIOBOX = _audiobox([("a", "ok", 0.3), ("c", "ok", 0.6), ("d", "failed", None), ("e", "ok", 0.7)])
CHECKS = _checks([("a", 0.9, False), ("b", 0.8, False), ("c", 0.7, False), ("d", 0.4, False),
                  ("e", 0.9, True), ("f", None, False)])


def _by_id(frame):
    return frame.set_index("song_id")


def test_weights_renormalise_over_the_sources_each_song_has():
    out = _by_id(combine_quality_scores(CHECKS, FLAMINGO, AUDIOBOX))
    assert out.loc["a", "quality_score"] == pytest.approx(0.6 * 0.8 + 0.4 * 0.3)
    assert out.loc["a", "sources"] == ["music_flamingo", "audiobox"] and out.loc["a", "coverage"] == pytest.approx(1)
    assert out.loc["b", "quality_score"] == pytest.approx(0.5)  # flamingo alone: weight 0.6 renormalised to 1
    assert out.loc["b", "coverage"] == pytest.approx(0.6)
    assert out.loc["c", "quality_score"] == pytest.approx(0.6)  # failed flamingo row is not a source
    assert out.loc["c", "sources"] == ["audiobox"] and out.loc["c", "coverage"] == pytest.approx(0.4)


def test_signal_stands_in_when_no_model_scored_and_hard_fails_force_zero():
    out = _by_id(combine_quality_scores(CHECKS, FLAMINGO, AUDIOBOX))
    assert out.loc["d", "quality_score"] == pytest.approx(0.4) and out.loc["d", "sources"] == ["signal"]
    assert out.loc["d", "coverage"] == 0
    assert out.loc["e", "quality_score"] == 0.0 and out.loc["e", "hard_fail"]  # models liked it; audio is broken
    assert "signal" in out.loc["e", "sources"]
    assert math.isnan(out.loc["f", "quality_score"]) and out.loc["f", "sources"] == []


def test_shuffled_inputs_give_the_same_result():
    expected = combine_quality_scores(CHECKS, FLAMINGO, AUDIOBOX)
    rng = np.random.default_rng(3)
    for _ in range(5):
        shuffled = [f.iloc[rng.permutation(len(f))].reset_index(drop=True) for f in (CHECKS, FLAMINGO, AUDIOBOX)]
        pd.testing.assert_frame_equal(combine_quality_scores(*shuffled), expected)


def test_custom_weights_and_invalid_weights():
    out = _by_id(combine_quality_scores(flamingo=FLAMINGO, audiobox=AUDIOBOX,
                                        weights={"music_flamingo": 1, "audiobox": 3}))
    assert out.loc["a", "quality_score"] == pytest.approx((0.8 + 3 * 0.3) / 4)
    with pytest.raises(ValueError):
        combine_quality_scores(flamingo=FLAMINGO, weights={"music_flamingo": -1, "audiobox": 1})
    with pytest.raises(ValueError):
        combine_quality_scores(flamingo=FLAMINGO, weights={"clap": 1})


def test_duplicate_song_ids_are_an_error_not_a_guess():
    with pytest.raises(ValueError, match="duplicate song_id"):
        combine_quality_scores(flamingo=pd.concat([FLAMINGO, FLAMINGO.head(1)]))


def test_guide_entries_round_trip_through_the_scores_file(tmp_path):
    blended = combine_quality_scores(CHECKS, FLAMINGO, AUDIOBOX)
    songs = pd.DataFrame({"song_id": list("abcdef"), "title": [f"Song {c}" for c in "abcdef"]})
    entries = guide_entries(blended, flamingo_df=FLAMINGO, songs_df=songs)
    assert set(entries) == {"a", "b", "c", "d", "e"}  # f has no score at all
    assert entries["a"]["title"] == "Song a" and entries["a"]["scores"]["production_quality"] == 0.9
    assert "production_quality" not in entries["c"]["scores"]  # flamingo failed for c
    path = write_scores_file(entries, tmp_path / "scores.json")
    loaded = load_scores(path)
    assert loaded["a"] == pytest.approx(0.6 * 0.8 + 0.4 * 0.3) and loaded["e"] == 0.0
