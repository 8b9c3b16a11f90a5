"""Each asset check fails on a crafted bad partition and passes on a good one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sunorecsys_pipeline.checks import parse_failure_rate, scored_share, unique_song_ids, values_in_range


def _quality(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame({"song_id": [f"song-{i}" for i in range(n)],
                         "quality_score": np.linspace(0.1, 0.9, n),
                         "technical_score": np.linspace(0.2, 1.0, n)})


def test_unique_song_ids_fails_on_a_duplicate_and_names_it():
    good = _quality()
    assert unique_song_ids(good).passed
    bad = pd.concat([good, good.iloc[[2]]], ignore_index=True)
    result = unique_song_ids(bad)
    assert not result.passed
    assert "song-2" in result.description
    assert result.metadata["duplicate_ids"].value == 1


def test_scores_in_range_fails_on_an_out_of_range_or_infinite_score_and_ignores_missing():
    good = _quality()
    good.loc[1, "quality_score"] = np.nan  # a song with no score is not out of range
    assert values_in_range(good, ["quality_score", "technical_score"], 0, 1, "scores_in_range").passed
    for bad_value in (1.7, -0.01, np.inf):
        bad = _quality()
        bad.loc[3, "technical_score"] = bad_value
        result = values_in_range(bad, ["quality_score", "technical_score"], 0, 1, "scores_in_range")
        assert not result.passed, bad_value
        assert "song-3" in result.description and "technical_score" in result.description


def test_scored_share_fails_below_the_floor_and_names_unscored_songs():
    quality = _quality(10)
    assert scored_share(quality, n_songs=10, floor=0.9).passed
    quality.loc[[0, 4], "quality_score"] = np.nan
    result = scored_share(quality, n_songs=10, floor=0.9)
    assert not result.passed
    assert "8 of 10" in result.description and "song-0" in result.description
    # songs missing from the scores entirely count as unscored too
    assert not scored_share(_quality(5), n_songs=10, floor=0.9).passed
    assert scored_share(_quality(0), n_songs=0, floor=0.9).passed  # an empty day passes


def test_parse_failure_rate_fails_above_the_ceiling_counting_only_answered_songs():
    flamingo = pd.DataFrame({
        "song_id": [f"song-{i}" for i in range(6)],
        "status": ["ok", "ok", "partial", "failed", "failed", "failed"],
        # song-5 failed before the model answered (no audio): not a parse failure
        "raw_response": ['{"a": 1}', "{}", "{}", "I think it is nice", "??", None],
    })
    result = parse_failure_rate(flamingo, ceiling=0.2)
    assert not result.passed
    assert result.metadata["parse_failures"].value == 2
    assert result.metadata["answers"].value == 5
    assert "song-3" in result.description and "song-5" not in result.description
    assert parse_failure_rate(flamingo, ceiling=0.5).passed
    assert parse_failure_rate(None, ceiling=0.0).passed
