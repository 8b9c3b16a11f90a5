"""The five README analyst queries, run through run_query on a real warehouse, checked against pandas."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sunorecsys.catalog.song_context import SONG_CONTEXT_COLUMNS
from sunorecsys.paths import DataPaths
from sunorecsys.warehouse.analyst_queries import ANALYST_QUERIES, QUERIES_BY_NAME
from sunorecsys.warehouse.parquet import read_table
from sunorecsys.warehouse.sql import run_query
from sunorecsys.warehouse.views import build_analyst_views

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))  # the benchmark's data generator lives there, not in the library
from synthetic_warehouse import write_synthetic_warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> DataPaths:
    paths = DataPaths(tmp_path_factory.mktemp("wh") / "data")
    write_synthetic_warehouse(paths.warehouse_dir, n_songs=4000, days=6, seed=11)
    build_analyst_views(paths)
    return paths


@pytest.fixture(scope="module")
def frames(warehouse) -> dict[str, pd.DataFrame]:
    # The pandas side answers from the table of record: score tables lose their song-context
    # snapshot and are joined with `songs`, as an analyst without the snapshot would.
    out = {t: read_table(warehouse.warehouse_dir, t)
           for t in ("songs", "quality_scores", "audio_checks", "flamingo_scores")}
    for t in ("quality_scores", "audio_checks"):
        out[t] = out[t].drop(columns=list(SONG_CONTEXT_COLUMNS), errors="ignore")
    return out


def sql_frame(name: str, paths: DataPaths) -> pd.DataFrame:
    df = run_query(QUERIES_BY_NAME[name].sql, paths).to_pandas()
    for col in ("day", "first_day", "last_day"):
        if col in df:  # hive partition values come back as DATE; the files hold 'YYYY-MM-DD'
            df[col] = df[col].astype(str)
    return df


def assert_frames_match(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected) > 0
    for col in expected.columns:
        if pd.api.types.is_float_dtype(expected[col]) or pd.api.types.is_float_dtype(got[col]):
            np.testing.assert_allclose(got[col].to_numpy(float), expected[col].to_numpy(float),
                                       rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=col)
        else:
            assert got[col].tolist() == expected[col].tolist(), col


def test_daily_quality_by_genre_matches_pandas(warehouse, frames):
    m = frames["quality_scores"].merge(frames["songs"][["song_id", "genre"]], on="song_id")
    m = m[m["quality_score"].notna()].assign(genre=lambda d: d["genre"].fillna("(none)"),
                                             below=lambda d: (d["quality_score"] < 0.4).astype(float))
    expected = (m.groupby(["date", "genre"]).agg(songs=("song_id", "size"),
                                                 mean_quality=("quality_score", "mean"),
                                                 share_below_0_4=("below", "mean"))
                .reset_index().rename(columns={"date": "day"}).sort_values(["day", "genre"]))
    assert_frames_match(sql_frame("daily_quality_by_genre", warehouse), expected.reset_index(drop=True))


def test_worst_creators_by_failed_audio_matches_pandas(warehouse, frames):
    m = frames["audio_checks"].merge(frames["songs"][["song_id", "user_id", "handle"]], on="song_id")
    m["is_failed"] = m["hard_fail"].fillna(False).astype(bool) | (m["status"] != "ok")
    g = m.groupby("user_id").agg(handle=("handle", "max"), songs_checked=("song_id", "size"),
                                 failed=("is_failed", "sum")).reset_index()
    g = g[g["songs_checked"] >= 5].assign(failed_share=lambda d: d["failed"] / d["songs_checked"])
    g = g.rename(columns={"user_id": "creator"}).sort_values(
        ["failed_share", "songs_checked", "creator"], ascending=[False, False, True]).head(20)
    got = sql_frame("worst_creators_by_failed_audio", warehouse)
    assert_frames_match(got, g.reset_index(drop=True))
    # The synthetic creators differ in failure rate: the worst fail far more often than average.
    assert got["failed_share"].iloc[0] > 2 * m["is_failed"].mean()


def test_score_drift_by_scorer_version_matches_pandas(warehouse, frames):
    f = frames["flamingo_scores"]
    f = f[f["overall_quality_score"].notna()]
    g = (f.groupby("scorer_version").agg(songs=("song_id", "size"), first_day=("date", "min"),
                                         last_day=("date", "max"),
                                         mean_score=("overall_quality_score", "mean"),
                                         median_score=("overall_quality_score", "median"))
         .reset_index().sort_values(["first_day", "scorer_version"]).reset_index(drop=True))
    g["drift_from_previous"] = g["mean_score"].diff()
    got = sql_frame("score_drift_by_scorer_version", warehouse)
    assert_frames_match(got, g)
    assert len(got) == 2 and got["drift_from_previous"].iloc[1] > 0  # the newer version scores higher


def test_quality_vs_plays_matches_pandas(warehouse, frames):
    m = frames["quality_scores"].merge(frames["songs"][["song_id", "play_count"]], on="song_id")
    m = m[m["quality_score"].notna()]
    m["quality_band"] = np.minimum(np.floor(m["quality_score"] * 10), 9) / 10
    g = (m.groupby("quality_band").agg(songs=("song_id", "size"), mean_plays=("play_count", "mean"),
                                       median_plays=("play_count", "median"))
         .reset_index().sort_values("quality_band").reset_index(drop=True))
    assert_frames_match(sql_frame("quality_vs_plays", warehouse), g)


def test_parse_failure_rate_by_day_matches_pandas(warehouse, frames):
    f = frames["flamingo_scores"].copy()
    answered = f["raw_response"].notna()
    f = f.assign(answered=answered, partial=f["status"] == "partial",
                 unparseable=(f["status"] == "failed") & answered,
                 not_ok=(f["status"] != "ok") & answered)
    g = f.groupby("date").agg(scored=("song_id", "size"), answered=("answered", "sum"),
                              partial=("partial", "sum"), unparseable=("unparseable", "sum"),
                              not_ok=("not_ok", "sum")).reset_index().rename(columns={"date": "day"})
    g["parse_failure_rate"] = g.pop("not_ok") / g["answered"]
    got = sql_frame("parse_failure_rate_by_day", warehouse)
    assert_frames_match(got, g.sort_values("day").reset_index(drop=True))
    assert (got["unparseable"] > 0).any() and (got["partial"] > 0).any()


def test_readme_shows_the_tested_queries_verbatim():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    if "<!-- SQL_SECTION -->" in readme:
        pytest.skip("README's SQL section is not filled in yet")
    normalise = lambda text: re.sub(r"\s+", " ", text).strip()
    missing = [q.name for q in ANALYST_QUERIES if normalise(q.sql) not in normalise(readme)]
    assert not missing, f"README lacks these tested queries (copy them from analyst_queries.py): {missing}"
