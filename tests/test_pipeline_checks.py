"""Each asset check fails on a crafted bad partition and passes on a good one."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pandas as pd

from sunorecsys_pipeline.checks import parse_failure_rate, unique_song_ids, values_in_range


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


def _with_reasons(reasons: list[str | None]) -> pd.DataFrame:
    scored = [r is None for r in reasons]
    return pd.DataFrame({"song_id": [f"song-{i}" for i in range(len(reasons))],
                         "quality_score": [0.5 if s else np.nan for s in scored],
                         "unscored_reason": reasons})


def test_songs_accounted_for_fails_on_a_lost_song_or_one_without_a_reason_and_passes_unscored_with_reason():
    from sunorecsys_pipeline.checks import songs_accounted_for

    outage = _with_reasons([None, "audio_unavailable: fetch_failed", "audio_unavailable: host_down"])
    ids = list(outage["song_id"])
    assert songs_accounted_for(outage, ids).passed  # unscored with a reason is not lost
    lost = songs_accounted_for(outage.iloc[:2], ids)
    assert not lost.passed and "song-2" in lost.description
    silent = outage.assign(unscored_reason=[None, None, "audio_unavailable: host_down"])
    result = songs_accounted_for(silent, ids)
    assert not result.passed and "song-1" in result.description
    assert songs_accounted_for(_with_reasons([]), []).passed  # an empty day
    # no source at all: the signal checks lost the song (heard audio always gets a signal score)
    assert not songs_accounted_for(_with_reasons([None, "no_source"]), ["song-0", "song-1"]).passed


def test_heard_share_warns_below_the_floor_naming_reason_counts():
    from sunorecsys_pipeline.checks import heard_share

    quality = _with_reasons([None] * 6 + ["audio_unavailable: fetch_failed"] * 3 + ["audio_unavailable: host_down"])
    result = heard_share(quality, floor=0.9)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "6 of 10" in result.description
    assert "audio_unavailable: fetch_failed (3)" in result.description
    assert "audio_unavailable: host_down (1)" in result.description
    assert heard_share(quality, floor=0.5).passed
    # "no_source" (no scorer covered a heard song) is not an outage
    assert heard_share(_with_reasons([None, "no_source"]), floor=1.0).passed
    assert heard_share(_with_reasons([]), floor=0.9).passed


def test_combine_fails_when_one_day_fails_and_names_it():
    from sunorecsys_pipeline.checks import combine

    good = unique_song_ids(_quality())
    bad = unique_song_ids(pd.concat([_quality(), _quality().iloc[[1]]]))
    merged = combine([("2026-11-01", good), ("2026-11-02", bad), ("2026-11-03", good)])
    assert not merged.passed and "2026-11-02" in merged.description and "2026-11-01" not in merged.description
    assert merged.metadata["days_failed"].value == 1 and merged.metadata["duplicate_ids"].value == 1
    assert combine([("a", good), ("b", good)]).passed
