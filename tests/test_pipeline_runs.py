"""Real Dagster runs (``materialize``) of the assets on a copy of the sample catalogue.

Runs are grouped (each costs about 2 s): ingestion and every songs partition (one range run), the
signal path to quality_scores, empty days, the model assets without weights, the recommender, a
crafted bad partition stopped by the blocking checks (the last good one stays), and two partitions
materialized at the same time.
"""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from pipeline_support import (
    check_evaluations,
    copy_sample,
    materialization_metadata,
    materialize,
    materialize_in_child,
    partitions_with_songs,
    pipeline_resources,
)

from sunorecsys.audio.checks import CHECKS_VERSION
from sunorecsys.warehouse.parquet import partition_path, read_table, write_partition
from sunorecsys_pipeline.versions import version_digest

SIGNAL_PATH = ["audio_checks", "quality_scores"]


@pytest.fixture(scope="module")
def pipeline(request, tmp_path_factory):
    sample = request.getfixturevalue("sample_data")
    paths = copy_sample(sample, tmp_path_factory.mktemp("pipeline") / "data")
    (paths.root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(paths.root / "dagster")) as instance:
        yield paths, instance, pipeline_resources(paths)


@pytest.fixture(scope="module")
def ingested(pipeline):
    """raw_songs, then songs for every partition that has songs."""
    paths, instance, resources = pipeline
    raw = materialize(["raw_songs"], resources, instance)
    days = partitions_with_songs(paths)
    # every day in one run: a partition range, one step (single-run backfill policy)
    songs_run = materialize(["songs"], resources, instance, partition_range=(days[0], days[-1]))
    return raw, days, songs_run


def test_raw_songs_and_every_songs_partition_land_as_parquet(pipeline, ingested):
    paths, _, _ = pipeline
    raw, days, songs_run = ingested
    processed = pd.read_parquet(paths.processed_songs)
    meta = materialization_metadata(raw, "raw_songs")
    assert meta["dagster/row_count"] == len(processed) > 0
    rejected = pd.read_parquet(partition_path(paths.warehouse_dir, "rejected_songs"))
    assert meta["rejected"] == len(rejected)
    assert check_evaluations(raw) == {("raw_songs", "songs_within_partitions"): True}
    assert len(days) >= 10  # the sample spans 14 days
    assert check_evaluations(songs_run) == {("songs", "unique_song_ids"): True}
    materialized = {e.event_specific_data.materialization.partition
                    for e in songs_run.get_asset_materialization_events()}
    all_days = [d.strftime("%Y-%m-%d") for d in pd.date_range(days[0], days[-1])]
    assert materialized == set(all_days)  # one run, every day of the range
    total = 0
    for day in all_days:
        part = pd.read_parquet(partition_path(paths.warehouse_dir, "songs", day))
        assert (part["date"] == day).all()
        assert (part["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d") == day).all()
        total += len(part)
    assert total == len(processed)
    assert set(read_table(paths.warehouse_dir, "songs")["song_id"]) == set(processed["song_id"])


def test_signal_path_scores_every_song_of_a_partition(pipeline, ingested):
    paths, instance, resources = pipeline
    _, days, _ = ingested
    for day in days[:2]:
        result = materialize(SIGNAL_PATH, resources, instance, partition_key=day)
        songs = pd.read_parquet(partition_path(paths.warehouse_dir, "songs", day))
        checks = pd.read_parquet(partition_path(paths.warehouse_dir, "audio_checks", day))
        quality = pd.read_parquet(partition_path(paths.warehouse_dir, "quality_scores", day))
        assert set(checks["song_id"]) == set(songs["song_id"]) == set(quality["song_id"])
        # a score in [0, 1], or unscored with the reason the audio was not there (never 0 for that)
        unheard = quality["unscored_reason"].notna()
        assert quality.loc[~unheard, "quality_score"].between(0, 1).all()
        assert quality.loc[unheard, "quality_score"].isna().all()
        missing = set(checks.loc[checks["status"] == "missing", "song_id"])
        assert set(quality.loc[unheard, "song_id"]) == missing
        assert (quality.loc[unheard, "unscored_reason"] == "audio_unavailable: missing").all()
        assert all(list(s) == ["signal"] for s in quality.loc[~unheard, "sources"])
        # both tables carry the song context analysts slice by, equal to the songs partition
        for table in (checks, quality):
            context = table.set_index("song_id")[["genre", "user_id", "handle", "play_count"]]
            expected = songs.set_index("song_id").loc[context.index, ["genre", "user_id", "handle", "play_count"]]
            pd.testing.assert_frame_equal(context, expected, check_dtype=False)
        # heard audio that hard-fails (broken, silent, clipped ...) scores 0
        hard = set(checks.loc[checks["hard_fail"], "song_id"])
        assert hard and (quality.set_index("song_id").loc[list(hard), "quality_score"] == 0).all()
        meta = materialization_metadata(result, "quality_scores", day)
        assert meta["quality_score"].startswith("![") and "data:image/png;base64," in meta["quality_score"]
        assert "| song_id" in meta["preview"]
        assert all(check_evaluations(result).values()), check_evaluations(result)
        tags = [e.event_specific_data.materialization.tags for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey("audio_checks")]
        assert tags[0]["sunorecsys/scorer_version"] == version_digest(CHECKS_VERSION)


def test_model_assets_without_weights_succeed_with_a_note_and_write_nothing(pipeline, ingested):
    paths, instance, resources = pipeline
    _, days, _ = ingested
    result = materialize(["flamingo_scores", "audiobox_scores"], resources, instance, partition_key=days[0])
    for asset, variable in (("flamingo_scores", "SUNORECSYS_FLAMINGO_MODEL"),
                            ("audiobox_scores", "SUNORECSYS_AUDIOBOX_CHECKPOINT")):
        meta = materialization_metadata(result, asset, days[0])
        assert meta["weights"] == "not configured" and variable in meta["note"]
        assert not partition_path(paths.warehouse_dir, asset, days[0]).exists()


def test_empty_days_write_empty_typed_tables_and_succeed(pipeline, ingested):
    """A day without songs is a normal day for every daily asset (it used to fail on a float64/str
    merge of song_id)."""
    paths, instance, resources = pipeline
    _, days, _ = ingested
    empty = (pd.Timestamp(days[0]) - pd.Timedelta(days=3)).strftime("%Y-%m-%d")
    created = pd.read_parquet(paths.processed_songs)["created_at"]
    assert not (created < pd.Timestamp(days[0], tz="UTC")).any()
    result = materialize(["songs", "audio_checks", "flamingo_scores", "audiobox_scores", "quality_scores"],
                         resources, instance, partition_key=empty)
    assert result.success and all(check_evaluations(result).values())
    for table in ("songs", "audio_checks", "quality_scores"):
        empty_file = pq.read_schema(partition_path(paths.warehouse_dir, table, empty))
        full_file = pq.read_schema(partition_path(paths.warehouse_dir, table, days[0]))
        assert empty_file.remove_metadata() == full_file.remove_metadata(), table
        assert pq.read_metadata(partition_path(paths.warehouse_dir, table, empty)).num_rows == 0


def test_recommender_refit_writes_model_recommendations_evaluation_and_views(pipeline, ingested):
    paths, instance, resources = pipeline
    _, days, _ = ingested
    for day in days[:2]:
        if not partition_path(paths.warehouse_dir, "quality_scores", day).exists():
            materialize(SIGNAL_PATH, resources, instance, partition_key=day)
    result = materialize(["interactions", "music_flamingo_scores_file", "hybrid_recommender",
                          "recommender_evaluation", "analyst_views"], resources, instance)
    scores = json.loads(paths.flamingo_scores_file.read_text())
    quality = read_table(paths.warehouse_dir, "quality_scores")
    # scored songs only: an unscored song is absent (readers apply their missing_quality policy)
    assert set(scores) == set(quality.loc[quality["quality_score"].notna(), "song_id"])
    assert quality["quality_score"].isna().any()  # the sample has songs without audio
    for entry in scores.values():
        assert 0 <= entry["scores"]["overall_quality_score"] <= 1
    assert not list(paths.models_dir.rglob("*.pkl")) and not list(paths.models_dir.rglob("*.pickle"))
    recs = read_table(paths.warehouse_dir, "recommendations")
    assert recs.groupby("seed_song_id")["rank"].max().max() <= 10
    assert not (recs["seed_song_id"] == recs["song_id"]).any()
    evaluation = read_table(paths.warehouse_dir, "evaluation")
    assert len(evaluation) >= 2
    meta = materialization_metadata(result, "recommender_evaluation")
    assert "data:image/png;base64," in meta["trade_off"] and "|" in meta["metrics"]
    rec_meta = materialization_metadata(result, "hybrid_recommender")
    assert rec_meta["fit_seconds"] >= 0 and rec_meta["songs"] == len(read_table(paths.warehouse_dir, "songs"))
    inter_meta = materialization_metadata(result, "interactions")
    assert inter_meta["dagster/row_count"] == len(read_table(paths.warehouse_dir, "interactions"))
    assert paths.warehouse_db.exists()


def test_blocking_checks_stop_a_broken_partition_and_the_last_good_one_stays(pipeline, ingested):
    paths, instance, resources = pipeline
    _, days, _ = ingested
    day = days[-1]
    songs = pd.read_parquet(partition_path(paths.warehouse_dir, "songs", day))
    assert len(songs) >= 3
    materialize(SIGNAL_PATH, resources, instance, partition_key=day)
    good = pd.read_parquet(partition_path(paths.warehouse_dir, "quality_scores", day))
    checks = pd.read_parquet(partition_path(paths.warehouse_dir, "audio_checks", day)).drop(columns="date")
    # crafted: the signal checks lost all but one song, and the model's answers are mostly unparseable
    write_partition(checks.head(1), paths.warehouse_dir, "audio_checks", day)
    flamingo = pd.DataFrame({"song_id": songs["song_id"], "status": "failed",
                             "raw_response": "I am not sure about this one", "error": "no JSON in the answer",
                             "overall_quality_score": float("nan")})
    write_partition(flamingo, paths.warehouse_dir, "flamingo_scores", day)
    try:
        result = materialize(["quality_scores"], resources, instance, partition_key=day, raise_on_error=False)
    finally:
        partition_path(paths.warehouse_dir, "flamingo_scores", day).unlink()
        write_partition(checks, paths.warehouse_dir, "audio_checks", day)
    evaluations = check_evaluations(result)
    assert evaluations[("quality_scores", "songs_accounted_for")] is False
    assert evaluations[("quality_scores", "parse_failure_rate")] is False
    assert not result.success  # blocking: the run stops here, nothing downstream would run
    # written aside, not promoted: the last good partition is still the one readers see
    kept = pd.read_parquet(partition_path(paths.warehouse_dir, "quality_scores", day))
    pd.testing.assert_frame_equal(kept, good)
    aside = pd.read_parquet(partition_path(paths.warehouse_dir / "_rejected", "quality_scores", day))
    assert (aside["unscored_reason"] == "no_source").sum() == len(songs) - 1  # the songs the checks lost
    assert "_rejected" not in read_table(paths.warehouse_dir, "quality_scores")["date"].to_list()


def test_two_partitions_materialized_at_once_both_land_intact(pipeline, ingested):
    paths, instance, _ = pipeline
    _, days, _ = ingested
    pair = days[2:4]
    # two runs in two processes at the same time, sharing the warehouse and the instance storage
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {day: pool.submit(materialize_in_child, instance.get_ref(), str(paths.root),
                                    ["songs", *SIGNAL_PATH], day) for day in pair}
        outcomes = {day: f.result(timeout=600) for day, f in futures.items()}
    for day in pair:
        success, run_id = outcomes[day]
        assert success, run_id
        assert instance.get_run_by_id(run_id).is_success
        songs = pd.read_parquet(partition_path(paths.warehouse_dir, "songs", day))
        quality = pq.read_table(partition_path(paths.warehouse_dir, "quality_scores", day)).to_pandas()
        assert set(quality["song_id"]) == set(songs["song_id"]) and (quality["date"] == day).all()
        assert not list(partition_path(paths.warehouse_dir, "quality_scores", day).parent.glob("*.tmp"))
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("quality_scores"), asset_partitions=[day]), limit=5)
        assert [r.asset_materialization.partition for r in records.records] == [day]


def test_make_demo_runs_the_whole_pipeline_in_two_runs_and_prints_recommendations(small_catalogue, tmp_path):
    """`make demo`'s command, as a user runs it (its own process, Dagster instance in DAGSTER_HOME),
    on a copy of the small sample catalogue (the default one is generated by the demo itself)."""
    import os
    import subprocess
    import sys

    paths = copy_sample(small_catalogue, tmp_path / "data")
    env = {**os.environ, "SUNORECSYS_DATA_DIR": str(paths.root), "DAGSTER_HOME": str(paths.root / "dagster"),
           "SUNORECSYS_FETCH_AUDIO": "0", "HF_HUB_OFFLINE": "1"}
    for name in ("SUNORECSYS_FLAMINGO_MODEL", "SUNORECSYS_AUDIOBOX_CHECKPOINT"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "sunorecsys_pipeline.demo"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout
    assert done.returncode == 0, (out + done.stderr)[-4000:]
    assert "catalogue: using the files in" in out and "FAIL" not in out
    days = partitions_with_songs(paths)
    span = (pd.Timestamp(days[-1]) - pd.Timestamp(days[0])).days + 1
    assert "ok    raw_songs" in out and f"ok    {span} days + refit" in out
    for day in days:
        assert f"        {day}  " in out
    assert out.count("\nrecommendations for ") == 2 and "  1. " in out
    # the two runs are in the instance the UI reads
    with dg.DagsterInstance.from_config(str(paths.root / "dagster")) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and all(r.is_success for r in runs)
    assert len(read_table(paths.warehouse_dir, "quality_scores")) == len(pd.read_parquet(paths.processed_songs))
