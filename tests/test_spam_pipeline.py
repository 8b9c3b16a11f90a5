"""The spam_flags asset in a real Dagster run on the small sample catalogue with its spam cohort off:
Parquet partition, metadata with counts and examples, the DuckDB view, and the recommender's policy."""

from __future__ import annotations

import dagster as dg
import duckdb
import pandas as pd
from pipeline_support import (
    copy_sample,
    materialization_metadata,
    materialize,
    partitions_with_songs,
    pipeline_resources,
)

from sunorecsys.recommenders.hybrid import HybridRecommender
from sunorecsys.warehouse.parquet import partition_path
from sunorecsys.warehouse.views import build_analyst_views


def test_spam_flags_materializes_as_a_partition_with_counts_and_a_duckdb_view(small_catalogue, tmp_path):
    paths = copy_sample(small_catalogue, tmp_path / "data")
    (paths.root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(paths.root / "dagster")) as instance:
        resources = pipeline_resources(paths)
        materialize(["raw_songs"], resources, instance)
        days = partitions_with_songs(paths)
        for day in days:
            materialize(["songs"], resources, instance, partition_key=day)
        result = materialize(["audio_checks", "spam_flags"], resources, instance, partition_key=days[0])
    assert result.success
    meta = materialization_metadata(result, "spam_flags", days[0])
    part = pd.read_parquet(partition_path(paths.warehouse_dir, "spam_flags", days[0]))
    songs_day = pd.read_parquet(partition_path(paths.warehouse_dir, "songs", days[0]))
    assert sorted(part["song_id"]) == sorted(songs_day["song_id"])
    assert (part["date"] == days[0]).all() and not part["flagged"].any()
    assert meta["dagster/row_count"] == len(part) and meta["flagged"] == 0
    # the whole catalogue went into the index, not only the day's songs
    assert meta["fingerprinted"] + meta["flagged_in_catalogue"] >= len(songs_day)
    assert "_(none)_" in meta["reasons"] and "no rows" in meta["examples"]
    built = build_analyst_views(paths)
    assert "spam_flags" in built["views"]
    con = duckdb.connect(built["db_path"], read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM spam_flags").fetchall()[0][0] == len(part)
    finally:
        con.close()


def test_spam_flags_backfills_a_range_in_one_run_like_day_by_day(small_catalogue, tmp_path):
    """A backfill range is one run that judges the catalogue once and writes every day of it; the
    partitions equal those of one run per day."""
    tables = {}
    for mode in ("range", "daily"):
        paths = copy_sample(small_catalogue, tmp_path / mode)
        (paths.root / "dagster").mkdir()
        with dg.instance_for_test(temp_dir=str(paths.root / "dagster")) as instance:
            resources = pipeline_resources(paths)
            materialize(["raw_songs"], resources, instance)
            days = partitions_with_songs(paths)[:3]
            for day in days:
                materialize(["songs"], resources, instance, partition_key=day)
            if mode == "range":
                result = materialize(["spam_flags"], resources, instance, partition_range=(days[0], days[-1]))
                runs = {result.run_id}
            else:
                runs = {materialize(["spam_flags"], resources, instance, partition_key=day).run_id for day in days}
            assert len(runs) == (1 if mode == "range" else len(days))
            events = instance.fetch_materializations(dg.AssetKey("spam_flags"), limit=100).records
            assert sorted(e.partition_key for e in events) == sorted(days)
        tables[mode] = {day: pd.read_parquet(partition_path(paths.warehouse_dir, "spam_flags", day))
                        .sort_values("song_id", ignore_index=True)
                        for day in days}
        assert all(len(tables[mode][day]) for day in days)
    for day, frame in tables["daily"].items():
        pd.testing.assert_frame_equal(tables["range"][day], frame, check_like=True)


def test_spam_policy_excludes_demotes_or_keeps_flagged_songs(small_catalogue):
    songs = pd.read_json(small_catalogue.raw_dir / "all_songs.json")
    frame = pd.DataFrame({"song_id": songs["id"], "title": songs["title"], "user_id": songs["user_id"],
                          "tags": songs["metadata"].map(lambda m: m["tags"].split(", ")),
                          "genre": "pop", "prompt": songs["metadata"].map(lambda m: m["prompt"])})
    events = pd.read_csv(small_catalogue.raw_dir / "interactions.csv")
    seed = frame["song_id"].iloc[0]
    kept = HybridRecommender(spam_policy="keep", max_per_creator=None).fit(frame, interactions=events)
    plain = [r["song_id"] for r in kept.recommend([seed], n=5)]
    flags = pd.DataFrame({"song_id": plain[:2], "flagged": [True, True]})
    model = HybridRecommender(max_per_creator=None).fit(frame, interactions=events, spam_flags=flags)
    excluded = [r["song_id"] for r in model.recommend([seed], n=5)]
    assert not set(plain[:2]) & set(excluded) and len(excluded) == 5
    demoted = [r["song_id"] for r in model.with_settings(spam_policy="demote").recommend([seed], n=len(frame))]
    assert set(demoted[-2:]) == set(plain[:2]) and not set(plain[:2]) & set(demoted[:-2])
    assert [r["song_id"] for r in model.with_settings(spam_policy="keep").recommend([seed], n=5)] == plain
    from sunorecsys.evaluation.spam_exposure import spam_exposure

    exposure = spam_exposure(model, [seed], k=5)
    assert exposure["flagged_recommendations"] == 2 and exposure["recommendations"] == 5
