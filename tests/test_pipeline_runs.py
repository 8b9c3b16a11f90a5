"""Real Dagster runs (``materialize``) of the assets on a copy of the sample catalogue.

Runs are grouped (each costs about 2 s): ingestion and every songs partition, the signal path to
quality_scores, the model assets failing fast without weights, the recommender, a crafted bad
partition stopped by the blocking checks, and two partitions materialized at the same time.
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
    song_runs = {day: materialize(["songs"], resources, instance, partition_key=day) for day in days}
    return raw, days, song_runs


def test_raw_songs_and_every_songs_partition_land_as_parquet(pipeline, ingested):
    paths, _, _ = pipeline
    raw, days, song_runs = ingested
    processed = pd.read_parquet(paths.processed_songs)
    meta = materialization_metadata(raw, "raw_songs")
    assert meta["dagster/row_count"] == len(processed) > 0
    rejected = pd.read_parquet(partition_path(paths.warehouse_dir, "rejected_songs"))
    assert meta["rejected"] == len(rejected)
    assert len(days) >= 10  # the sample spans 14 days
    total = 0
    for day, result in song_runs.items():
        part = pd.read_parquet(partition_path(paths.warehouse_dir, "songs", day))
        assert (part["date"] == day).all()
        assert (part["created_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%d") == day).all()
        assert materialization_metadata(result, "songs", day)["dagster/row_count"] == len(part)
        assert check_evaluations(result) == {("songs", "unique_song_ids"): True}
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
        assert quality["quality_score"].between(0, 1).all()
        assert all(list(s) == ["signal"] for s in quality["sources"])
        # both tables carry the song context analysts slice by, equal to the songs partition
        for table in (checks, quality):
            context = table.set_index("song_id")[["genre", "user_id", "handle", "play_count"]]
            expected = songs.set_index("song_id").loc[context.index, ["genre", "user_id", "handle", "play_count"]]
            pd.testing.assert_frame_equal(context, expected, check_dtype=False)
        # hard-failed audio scores 0
        hard = set(checks.loc[checks["hard_fail"], "song_id"])
        assert (quality.set_index("song_id").loc[list(hard), "quality_score"] == 0).all()
        meta = materialization_metadata(result, "quality_scores", day)
        assert meta["quality_score"].startswith("![") and "data:image/png;base64," in meta["quality_score"]
        assert "| song_id" in meta["preview"]
        assert all(check_evaluations(result).values()), check_evaluations(result)
        tags = [e.event_specific_data.materialization.tags for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey("audio_checks")]
        assert tags[0]["sunorecsys/scorer_version"] == version_digest(CHECKS_VERSION)


def test_model_assets_fail_fast_with_the_library_message_when_weights_are_missing(pipeline, ingested):
    paths, instance, resources = pipeline
    _, days, _ = ingested
    result = materialize(["flamingo_scores", "audiobox_scores"], resources, instance,
                         partition_key=days[0], raise_on_error=False)
    assert not result.success
    failures = {e.step_key: e.step_failure_data.user_failure_data.description
                for e in result.all_events if e.is_step_failure}
    assert set(failures) == {"flamingo_scores", "audiobox_scores"}
    assert "no-flamingo-weights" in failures["flamingo_scores"]
    assert "never downloads" in failures["audiobox_scores"]
    # a missing checkpoint is not retried (no GPU time burnt on a configuration error)
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert not partition_path(paths.warehouse_dir, "flamingo_scores", days[0]).exists()


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
    assert set(scores) == set(quality["song_id"])
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


def test_blocking_checks_stop_a_partition_with_low_coverage_and_unparseable_answers(pipeline, ingested):
    paths, instance, resources = pipeline
    _, days, _ = ingested
    day = days[-1]
    songs = pd.read_parquet(partition_path(paths.warehouse_dir, "songs", day))
    assert len(songs) >= 3
    materialize(["audio_checks"], resources, instance, partition_key=day)
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
    evaluations = check_evaluations(result)
    assert evaluations[("quality_scores", "scored_share")] is False
    assert evaluations[("quality_scores", "parse_failure_rate")] is False
    assert not result.success  # blocking: the run stops here, nothing downstream would run


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
